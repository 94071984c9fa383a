package sqsadapter

// Unit tests of failure paths the emulator cannot produce, with fakes of the AWS clients. The
// behaviour they check on success is covered by the integration tests against the emulator.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// fakeAWS implements SNSAPI and SQSAPI, records the actions called, and fails those in fail.
type fakeAWS struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]error // action => error to return

	// receive answers ReceiveMessage; nil blocks until the context ends, like an idle long poll.
	receive func(ctx context.Context) (*sqs.ReceiveMessageOutput, error)
	// publishBatch answers PublishBatch when set.
	publishBatch func(*sns.PublishBatchInput) *sns.PublishBatchOutput
	deleted      [][]sqstypes.DeleteMessageBatchRequestEntry
	published    []string // bodies, in order
	sent         []*sqs.SendMessageInput
}

var (
	_ SNSAPI = (*fakeAWS)(nil)
	_ SQSAPI = (*fakeAWS)(nil)
)

func (f *fakeAWS) call(action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, action)
	return f.fail[action]
}

func (f *fakeAWS) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == action {
			n++
		}
	}
	return n
}

func (f *fakeAWS) CreateTopic(_ context.Context, in *sns.CreateTopicInput, _ ...func(*sns.Options)) (*sns.CreateTopicOutput, error) {
	if err := f.call("CreateTopic"); err != nil {
		return nil, err
	}
	return &sns.CreateTopicOutput{TopicArn: aws.String("arn:aws:sns:us-east-1:000000000000:" + *in.Name)}, nil
}

func (f *fakeAWS) Subscribe(context.Context, *sns.SubscribeInput, ...func(*sns.Options)) (*sns.SubscribeOutput, error) {
	if err := f.call("Subscribe"); err != nil {
		return nil, err
	}
	return &sns.SubscribeOutput{SubscriptionArn: aws.String("arn:sub")}, nil
}

func (f *fakeAWS) Unsubscribe(context.Context, *sns.UnsubscribeInput, ...func(*sns.Options)) (*sns.UnsubscribeOutput, error) {
	return &sns.UnsubscribeOutput{}, f.call("Unsubscribe")
}

func (f *fakeAWS) GetSubscriptionAttributes(context.Context, *sns.GetSubscriptionAttributesInput, ...func(*sns.Options)) (*sns.GetSubscriptionAttributesOutput, error) {
	return &sns.GetSubscriptionAttributesOutput{}, f.call("GetSubscriptionAttributes")
}

func (f *fakeAWS) ListSubscriptionsByTopic(context.Context, *sns.ListSubscriptionsByTopicInput, ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error) {
	return &sns.ListSubscriptionsByTopicOutput{}, f.call("ListSubscriptionsByTopic")
}

func (f *fakeAWS) SetTopicAttributes(context.Context, *sns.SetTopicAttributesInput, ...func(*sns.Options)) (*sns.SetTopicAttributesOutput, error) {
	return &sns.SetTopicAttributesOutput{}, f.call("SetTopicAttributes")
}

func (f *fakeAWS) GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return &sqs.GetQueueUrlOutput{}, f.call("GetQueueUrl")
}

func (f *fakeAWS) ListQueueTags(context.Context, *sqs.ListQueueTagsInput, ...func(*sqs.Options)) (*sqs.ListQueueTagsOutput, error) {
	return &sqs.ListQueueTagsOutput{}, f.call("ListQueueTags")
}

func (f *fakeAWS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if err := f.call("Publish"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.published = append(f.published, *in.Message)
	f.mu.Unlock()
	return &sns.PublishOutput{}, nil
}

func (f *fakeAWS) PublishBatch(_ context.Context, in *sns.PublishBatchInput, _ ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	if err := f.call("PublishBatch"); err != nil {
		return nil, err
	}
	if f.publishBatch != nil {
		return f.publishBatch(in), nil
	}
	out := &sns.PublishBatchOutput{}
	f.mu.Lock()
	for _, e := range in.PublishBatchRequestEntries {
		f.published = append(f.published, *e.Message)
		out.Successful = append(out.Successful, snstypes.PublishBatchResultEntry{Id: e.Id})
	}
	f.mu.Unlock()
	return out, nil
}

func (f *fakeAWS) CreateQueue(_ context.Context, in *sqs.CreateQueueInput, _ ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error) {
	if err := f.call("CreateQueue"); err != nil {
		return nil, err
	}
	return &sqs.CreateQueueOutput{QueueUrl: aws.String("http://fake/000000000000/" + *in.QueueName)}, nil
}

func (f *fakeAWS) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	if err := f.call("GetQueueAttributes"); err != nil {
		return nil, err
	}
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{"QueueArn": "arn:aws:sqs:us-east-1:000000000000:q"}}, nil
}

func (f *fakeAWS) SetQueueAttributes(context.Context, *sqs.SetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error) {
	return &sqs.SetQueueAttributesOutput{}, f.call("SetQueueAttributes")
}

func (f *fakeAWS) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if err := f.call("ReceiveMessage"); err != nil {
		return nil, err
	}
	if f.receive != nil {
		return f.receive(ctx)
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (f *fakeAWS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if err := f.call("DeleteMessageBatch"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.deleted = append(f.deleted, in.Entries)
	f.mu.Unlock()
	return &sqs.DeleteMessageBatchOutput{}, nil
}

func (f *fakeAWS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if err := f.call("SendMessage"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.sent = append(f.sent, in)
	f.mu.Unlock()
	return &sqs.SendMessageOutput{}, nil
}

func (f *fakeAWS) DeleteQueue(context.Context, *sqs.DeleteQueueInput, ...func(*sqs.Options)) (*sqs.DeleteQueueOutput, error) {
	return &sqs.DeleteQueueOutput{}, f.call("DeleteQueue")
}

// errorSink collects what the adapter hands to Options.OnError.
type errorSink struct {
	ch chan error
}

func newErrorSink() *errorSink { return &errorSink{ch: make(chan error, 100)} }

func (s *errorSink) onError(err error) { s.ch <- err }

func (s *errorSink) next(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no error reported")
	}
	return nil
}

// fakeServer starts a Go Socket.IO server (no HTTP) whose adapter talks to f.
func fakeServer(t *testing.T, f *fakeAWS, sink *errorSink) (*socket.Server, *AdapterBuilder) {
	return fakeServerWith(t, f, f, sink, nil)
}

// fakeServerWith is fakeServer with clients of the test's own; heartbeats are hourly, so that
// only what the test does is published. tweak, if set, changes the options.
func fakeServerWith(t *testing.T, snsClient SNSAPI, sqsClient SQSAPI, sink *errorSink, tweak func(*Options)) (*socket.Server, *AdapterBuilder) {
	t.Helper()
	o := &Options{Logger: testLogger(t), HeartbeatInterval: time.Hour, HeartbeatTimeout: 2 * time.Hour}
	if sink != nil {
		o.OnError = sink.onError
	}
	if tweak != nil {
		tweak(o)
	}
	b := NewAdapterBuilder(snsClient, sqsClient, o)
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(b)
	io := socket.NewServer(nil, opts)
	t.Cleanup(func() { io.Close(nil) })
	return io, b
}

func apiError(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: code + " for the test"}
}

func TestInitRejectsInvalidOptionsBeforeAnyAWSCall(t *testing.T) {
	long := strings.Repeat("p", 64)
	tags := map[string]string{}
	for i := range 51 {
		tags[strings.Repeat("k", i+1)] = "v"
	}
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"upstream's documented topic name", Options{TopicName: "socket.io"}, `TopicName "socket.io"`},
		{"queue prefix too long", Options{QueuePrefix: long}, "at most 63"},
		{"queue prefix with a dot", Options{QueuePrefix: "my.app"}, `QueuePrefix "my.app"`},
		{"QueueName breaks the rules", Options{QueueName: func(id string) string { return "q/" + id }}, `QueueName returned "q/`},
		{"too many topic tags", Options{TopicTags: tags}, "TopicTags: at most 50 tags"},
		{"empty queue tag key", Options{QueueTags: map[string]string{"": "v"}}, "QueueTags: tag key"},
		{"heartbeat timeout not above interval", Options{HeartbeatInterval: time.Second, HeartbeatTimeout: time.Second}, "must be longer than HeartbeatInterval"},
		{"negative timeout", Options{RequestTimeout: -time.Second}, "RequestTimeout is negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeAWS{}
			c.opts.Logger = testLogger(t)
			b := NewAdapterBuilder(f, f, &c.opts)
			err := b.Init(context.Background())
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalidOptions containing %q", err, c.want)
			}
			if len(f.calls) != 0 {
				t.Fatalf("AWS calls %v before the options were checked", f.calls)
			}
		})
	}
}

func TestInitFailureNamesTheActionAndRemovesWhatItCreated(t *testing.T) {
	cases := []struct {
		action, op  string
		wantRemoved []string
	}{
		{"CreateTopic", "sns:CreateTopic", nil},
		{"CreateQueue", "sqs:CreateQueue", nil},
		{"GetQueueAttributes", "sqs:GetQueueAttributes", []string{"DeleteQueue"}},
		{"SetQueueAttributes", "sqs:SetQueueAttributes", []string{"DeleteQueue"}},
		{"Subscribe", "sns:Subscribe", []string{"DeleteQueue"}},
	}
	for _, c := range cases {
		t.Run(c.action, func(t *testing.T) {
			f := &fakeAWS{fail: map[string]error{c.action: apiError("AccessDenied")}}
			_, b := fakeServer(t, f, nil)
			err := b.Init(context.Background())
			var opErr *OpError
			if !errors.As(err, &opErr) || opErr.Op != c.op {
				t.Fatalf("err = %v, want an *OpError for %s", err, c.op)
			}
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
				t.Fatalf("errors.As does not reach the AWS error: %v", err)
			}
			if !strings.Contains(err.Error(), c.op) {
				t.Fatalf("message %q does not name %s", err, c.op)
			}
			for _, action := range []string{"DeleteQueue", "Unsubscribe"} {
				want := 0
				for _, r := range c.wantRemoved {
					if r == action {
						want = 1
					}
				}
				if got := f.count(action); got != want {
					t.Fatalf("%s called %d times, want %d (calls %v)", action, got, want, f.calls)
				}
			}
			// Init may be tried again once the cause is fixed.
			f.mu.Lock()
			f.fail = nil
			f.mu.Unlock()
			if err := b.Init(context.Background()); err != nil {
				t.Fatalf("second Init: %v", err)
			}
		})
	}
}

func TestInitUnreachableEndpointFailsWithinTheDeadline(t *testing.T) {
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  aws.AnonymousCredentials{},
		BaseEndpoint: aws.String("http://127.0.0.1:1"), // nothing listens on port 1
	}
	b := NewAdapterBuilder(sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg), &Options{Logger: testLogger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := b.Init(ctx)
	var opErr *OpError
	if !errors.As(err, &opErr) || opErr.Op != "sns:CreateTopic" {
		t.Fatalf("err = %v, want an *OpError for sns:CreateTopic", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Init took %v past a 2 s deadline", d)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("Close after a failed Init: %v", err)
	}
}

func TestPublishFailureIsReportedWithTheAWSError(t *testing.T) {
	f := &fakeAWS{fail: map[string]error{"Publish": apiError("AuthorizationError")}}
	sink := newErrorSink()
	_, b := fakeServer(t, f, sink)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := sink.next(t) // the server's INITIAL_HEARTBEAT for "/"
	var opErr *OpError
	var apiErr smithy.APIError
	if !errors.As(err, &opErr) || opErr.Op != "sns:Publish" || !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AuthorizationError" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "INITIAL_HEARTBEAT") || !strings.Contains(err.Error(), `"/"`) {
		t.Fatalf("%q does not say which message failed", err)
	}
	if got := b.Stats().PublishFailures; got != 1 {
		t.Fatalf("PublishFailures = %d", got)
	}
	if n := f.count("Publish"); n != 1 {
		t.Fatalf("%d attempts: an authorization error cannot succeed by retrying", n)
	}
}

// flakyPublish throttles the first failFirst publishes.
type flakyPublish struct {
	*fakeAWS
	failFirst int
	attempts  atomic.Int32
}

func (f *flakyPublish) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if int(f.attempts.Add(1)) <= f.failFirst {
		return nil, &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded", Fault: smithy.FaultClient}
	}
	return f.fakeAWS.Publish(ctx, in, o...)
}

func TestThrottledPublishIsRetriedAndReportedOnce(t *testing.T) {
	f := &flakyPublish{fakeAWS: &fakeAWS{}, failFirst: 3}
	sink := newErrorSink()
	_, b := fakeServerWith(t, f, f.fakeAWS, sink, nil)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sink.next(t); !strings.Contains(err.Error(), "Throttling") {
		t.Fatalf("err = %v", err)
	}
	eventually(t, 5*time.Second, func() bool { return b.Stats().Published == 1 }, "the heartbeat is published after the throttling")
	if s := b.Stats(); s.PublishFailures != 0 || f.attempts.Load() != 4 {
		t.Fatalf("stats %+v after %d attempts", s, f.attempts.Load())
	}
	select {
	case err := <-sink.ch:
		t.Fatalf("a second report for one streak: %v", err)
	default:
	}
}

func TestMessagesBeforeInitWaitAndLeaveBatched(t *testing.T) {
	f := &fakeAWS{}
	f.publishBatch = func(in *sns.PublishBatchInput) *sns.PublishBatchOutput {
		out := &sns.PublishBatchOutput{}
		for i, e := range in.PublishBatchRequestEntries {
			if i == 2 && *e.Message == "3" { // the second broadcast, each time it is tried
				out.Failed = append(out.Failed, snstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InvalidParameter"),
					Message: aws.String("boom"), SenderFault: true})
				continue
			}
			out.Successful = append(out.Successful, snstypes.PublishBatchResultEntry{Id: e.Id})
		}
		return out
	}
	sink := newErrorSink()
	io, b := fakeServer(t, f, sink)
	for range 4 {
		io.Emit("before-init")
	}
	if n := len(f.calls); n != 0 {
		t.Fatalf("AWS called before Init: %v", f.calls)
	}
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := sink.next(t)
	// Entry 2 is the second broadcast (entry 0 is the INITIAL_HEARTBEAT).
	if !strings.Contains(err.Error(), "BROADCAST") || !strings.Contains(err.Error(), "InvalidParameter") || !strings.Contains(err.Error(), "sns:PublishBatch") {
		t.Fatalf("err = %v", err)
	}
	if f.count("PublishBatch") != 1 || f.count("Publish") != 0 {
		t.Fatalf("calls %v, want one PublishBatch for the five queued messages", f.calls)
	}
	if s := b.Stats(); s.Published != 4 || s.PublishFailures != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// A broadcast over the SNS limit in a cluster of Go servers only (here, this one) leaves in
// parts, each published alone; TestWhoGetsParts covers what cannot be split.
func TestOversizeBroadcastLeavesInParts(t *testing.T) {
	f := &fakeAWS{}
	sink := newErrorSink()
	io, b := fakeServer(t, f, sink)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	io.Emit("big", make([]byte, 300*1024))
	eventually(t, 5*time.Second, func() bool { return f.count("Publish") == 3 }, "the heartbeat and two parts are published")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.published, []string{"1", "103", "103"}) {
		t.Fatalf("published %v", f.published)
	}
	if s := b.Stats(); s.MessagesSplit != 1 || s.PartsSent != 2 || s.TooLarge != 0 {
		t.Fatalf("stats %+v", s)
	}
	select {
	case err := <-sink.ch:
		t.Fatalf("reported %v", err)
	default:
	}
}

func TestReceiveFailuresAreReportedOncePerStreakWithBackoff(t *testing.T) {
	var attempts atomic.Int32
	recovered := make(chan struct{})
	f := &fakeAWS{}
	f.receive = func(ctx context.Context) (*sqs.ReceiveMessageOutput, error) {
		switch n := attempts.Add(1); {
		case n <= 5:
			return nil, apiError("ServiceUnavailable")
		case n == 6:
			close(recovered)
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	sink := newErrorSink()
	_, b := fakeServer(t, f, sink)
	start := time.Now()
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := sink.next(t)
	var opErr *OpError
	if !errors.As(err, &opErr) || opErr.Op != "sqs:ReceiveMessage" {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-recovered:
	case <-time.After(10 * time.Second):
		t.Fatal("polling did not resume")
	}
	// Five failures back off 50-100, 100-200, 200-400, 400-800 ms before the sixth attempt.
	if d := time.Since(start); d < 750*time.Millisecond {
		t.Fatalf("six attempts in %v: no backoff", d)
	}
	select {
	case err := <-sink.ch:
		t.Fatalf("a second report for the same streak: %v", err)
	default:
	}
}

func TestMalformedMessagesAreDroppedCountedAndDeleted(t *testing.T) {
	str := func(s string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
	}
	bin := func(b []byte) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("Binary"), BinaryValue: b}
	}
	batch := []sqstypes.Message{
		{MessageId: aws.String("m1"), Body: aws.String("not a type")},
		{MessageId: aws.String("m2"), Body: aws.String("3"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"nsp": str("/"), "uid": str("x"), "data": bin([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})}}, // hostile length
		{MessageId: aws.String("m3"), Body: aws.String("3"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"nsp": str("/"), "uid": str("x"), "data": bin([]byte{0x81, 0xa4, 'o', 'p', 't', 's', 0x05})}}, // wrong shape
		{MessageId: aws.String("m4"), Body: aws.String("9"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"nsp": str("/"), "uid": str("x"), "data": bin([]byte{0x81, 0xa6, 'p', 'a', 'c', 'k', 'e', 't', 0x90})}}, // no event name
		{MessageId: aws.String("m5"), Body: aws.String("2")}, // no attributes
	}
	served := make(chan struct{})
	var once sync.Once
	f := &fakeAWS{}
	f.receive = func(ctx context.Context) (*sqs.ReceiveMessageOutput, error) {
		first := false
		once.Do(func() { first = true; close(served) })
		if first {
			return &sqs.ReceiveMessageOutput{Messages: batch}, nil
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	_, b := fakeServer(t, f, nil)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-served
	eventually(t, 5*time.Second, func() bool { return f.count("DeleteMessageBatch") == 1 }, "the batch is deleted")
	if s := b.Stats(); s.Malformed != 5 || s.Received != 5 {
		t.Fatalf("stats %+v", s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.deleted[0]) != 5 {
		t.Fatalf("deleted %d of 5", len(f.deleted[0]))
	}
}

func TestCloseIsIdempotentAndRemovesTheQueueOnce(t *testing.T) {
	f := &fakeAWS{}
	io, b := fakeServer(t, f, nil)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	io.Close(nil) // closes "/", the last namespace, so the builder
	for range 2 {
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if f.count("DeleteQueue") != 1 || f.count("Unsubscribe") != 1 {
		t.Fatalf("calls %v", f.calls)
	}
	if err := b.Init(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Init after Close: %v", err)
	}
	// ADAPTER_CLOSE left before the queue went.
	f.mu.Lock()
	defer f.mu.Unlock()
	if last := f.published[len(f.published)-1]; last != "13" {
		t.Fatalf("published %v, want ADAPTER_CLOSE last", f.published)
	}
}

// blockedPublish holds every Publish and PublishBatch until release is closed, like an SNS
// that stopped answering.
type blockedPublish struct {
	*fakeAWS
	release chan struct{}
}

func (f *blockedPublish) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	<-f.release
	return f.fakeAWS.Publish(ctx, in, o...)
}

func (f *blockedPublish) PublishBatch(ctx context.Context, in *sns.PublishBatchInput, o ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	<-f.release
	return f.fakeAWS.PublishBatch(ctx, in, o...)
}

func TestFullPublishBufferDropsAndReportsWithoutBlocking(t *testing.T) {
	f := &blockedPublish{fakeAWS: &fakeAWS{}, release: make(chan struct{})}
	sink := newErrorSink()
	io, b := fakeServerWith(t, f, f.fakeAWS, sink, func(o *Options) { o.PublishBufferSize = 3 })
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return b.publishBacklog() == 0 }, "the heartbeat is in flight")
	start := time.Now()
	for range 10 {
		io.Emit("ev")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("10 emits took %v with SNS not answering", d)
	}
	if err := sink.next(t); !errors.Is(err, ErrPublishBufferFull) || !strings.Contains(err.Error(), "BROADCAST") {
		t.Fatalf("err = %v", err)
	}
	close(f.release)
	// The heartbeat in flight, three broadcasts buffered, seven dropped and each reported.
	eventually(t, 5*time.Second, func() bool { return b.Stats().Published == 4 }, "the buffered messages are published")
	if s := b.Stats(); s.PublishDropped != 7 {
		t.Fatalf("stats %+v", s)
	}
	// The streak of drops was reported once, not once per dropped message.
	select {
	case err := <-sink.ch:
		t.Fatalf("reported again: %v", err)
	default:
	}
}
