package awsproxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// emulatorConfig is the SDK configuration of the emulator (AWS_ENDPOINT_URL; run the tests
// under scripts/with-emulator.sh). Without it the test is skipped, except under CI=true, where
// it fails: a suite that silently skips its integration tests proves nothing. Its HTTP client
// is the test's own, so that no idle connection outlives the test (goleak).
func emulatorConfig(t *testing.T) aws.Config {
	t.Helper()
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("integration test needs AWS_ENDPOINT_URL (scripts/with-emulator.sh), and CI=true forbids skipping it")
		}
		t.Skip("integration test: set AWS_ENDPOINT_URL (or run under scripts/with-emulator.sh)")
	}
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPClient = &http.Client{Transport: tr} // plain http to loopback: no CA bundle needed
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return cfg
}

// startProxy starts a proxy in front of the emulator, closed at the end of the test after
// checking that its counts add up.
func startProxy(t *testing.T, p Profile) (*Proxy, aws.Config) {
	t.Helper()
	cfg := emulatorConfig(t)
	px, err := Start(os.Getenv("AWS_ENDPOINT_URL"), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := px.Close(); err != nil {
			t.Error(err)
		}
		checkCounts(t, px.Counts())
	})
	return px, cfg
}

func checkCounts(t *testing.T, c Counts) {
	t.Helper()
	if c.Total() != c.Forwarded+c.Throttled+c.ServerErrors+c.Abandoned {
		t.Errorf("counts do not add up: total %d != forwarded %d + throttled %d + 500 %d + abandoned %d (%+v)",
			c.Total(), c.Forwarded, c.Throttled, c.ServerErrors, c.Abandoned, c)
	}
}

// through returns SNS and SQS clients that go through the proxy; opts apply to both.
func through(px *Proxy, cfg aws.Config, opts ...func(*aws.Config)) (*sns.Client, *sqs.Client) {
	cfg = cfg.Copy()
	cfg.BaseEndpoint = aws.String(px.URL())
	for _, o := range opts {
		o(&cfg)
	}
	return sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
}

// noRetries makes the first error the caller's.
func noRetries(cfg *aws.Config) { cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} } }

type fixture struct {
	topicArn, queueURL, queueArn string
}

// provision sets up what the adapter's provision does (topic, queue, policy, raw-delivery
// subscription) through the given clients, and removes it at the end of the test directly on
// the emulator, whatever the proxy's profile is by then.
func provision(t *testing.T, cfg aws.Config, snsClient *sns.Client, sqsClient *sqs.Client, visibility time.Duration) fixture {
	t.Helper()
	ctx := context.Background()
	name := "awsproxy-test-" + randomHex(6)
	var f fixture
	directSNS, directSQS := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	t.Cleanup(func() {
		if f.queueURL != "" {
			if _, err := directSQS.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &f.queueURL}); err != nil {
				t.Error(err)
			}
		}
		if f.topicArn != "" {
			if _, err := directSNS.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: &f.topicArn}); err != nil {
				t.Error(err)
			}
		}
	})

	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	f.topicArn = *topic.TopicArn
	queue, err := sqsClient.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &name, Attributes: map[string]string{
		"VisibilityTimeout": strconv.Itoa(int(visibility.Seconds())),
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.queueURL = *queue.QueueUrl
	attrs, err := sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &f.queueURL, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.queueArn = attrs.Attributes["QueueArn"]
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__owner_statement",`+
		`"Effect":"Allow","Principal":"*","Action":"SQS:SendMessage","Resource":%q,"Condition":{"ArnEquals":{"aws:SourceArn":%q}}}]}`,
		f.queueArn, f.topicArn)
	if _, err := sqsClient.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl: &f.queueURL, Attributes: map[string]string{"Policy": policy},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := snsClient.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: &f.topicArn, Protocol: aws.String("sqs"), Endpoint: &f.queueArn,
		Attributes: map[string]string{"RawMessageDelivery": "true"}, ReturnSubscriptionArn: true,
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func publish(t *testing.T, c *sns.Client, topicArn string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if _, err := c.Publish(context.Background(), &sns.PublishInput{TopicArn: &topicArn, Message: aws.String(b)}); err != nil {
			t.Fatalf("publish %q: %v", b, err)
		}
	}
}

func receive(t *testing.T, c *sqs.Client, queueURL string, wait int32) []sqstypes.Message {
	t.Helper()
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: &queueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return out.Messages
}

func deleteAll(t *testing.T, c *sqs.Client, queueURL string, msgs []sqstypes.Message) {
	t.Helper()
	if len(msgs) == 0 {
		return
	}
	var entries []sqstypes.DeleteMessageBatchRequestEntry
	for _, m := range msgs {
		entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: m.MessageId, ReceiptHandle: m.ReceiptHandle})
	}
	out, err := c.DeleteMessageBatch(context.Background(), &sqs.DeleteMessageBatchInput{QueueUrl: &queueURL, Entries: entries})
	if err != nil || len(out.Failed) > 0 {
		t.Fatalf("delete: %v %+v", err, out)
	}
}

func bodies(msgs []sqstypes.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, aws.ToString(m.Body))
	}
	return out
}

// TestPassThrough: with the zero profile the SDKs work unchanged through the proxy, queues
// created through it have the proxy's address in their URL (fauxqs builds it from the Host
// header), so the requests for them come back to the proxy, and a queue created directly on the
// emulator has its URL rewritten to the proxy's port.
func TestPassThrough(t *testing.T) {
	px, cfg := startProxy(t, Profile{})
	snsClient, sqsClient := through(px, cfg, noRetries)
	f := provision(t, cfg, snsClient, sqsClient, 30*time.Second)
	proxyPort := mustPort(t, px.URL())
	if got := mustPort(t, f.queueURL); got != proxyPort {
		t.Errorf("queue URL %s: port %s, want the proxy's %s", f.queueURL, got, proxyPort)
	}

	ctx := context.Background()
	if _, err := snsClient.Publish(ctx, &sns.PublishInput{
		TopicArn: &f.topicArn, Message: aws.String("3"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"nsp":  {DataType: aws.String("String"), StringValue: aws.String("/")},
			"data": {DataType: aws.String("Binary"), BinaryValue: []byte{0x81, 0xa1, 'a', 1}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	msgs := receive(t, sqsClient, f.queueURL, 2) // the SDK checks MD5OfBody and MD5OfMessageAttributes
	if len(msgs) != 1 || aws.ToString(msgs[0].Body) != "3" ||
		aws.ToString(msgs[0].MessageAttributes["nsp"].StringValue) != "/" ||
		string(msgs[0].MessageAttributes["data"].BinaryValue) != "\x81\xa1a\x01" {
		t.Fatalf("received %+v", msgs)
	}
	deleteAll(t, sqsClient, f.queueURL, msgs)

	c := px.Counts()
	for action, want := range map[string]int64{
		"CreateTopic": 1, "CreateQueue": 1, "GetQueueAttributes": 1, "SetQueueAttributes": 1,
		"Subscribe": 1, "Publish": 1, "ReceiveMessage": 1, "DeleteMessageBatch": 1,
	} {
		if c.Requests[action] != want {
			t.Errorf("Requests[%s] = %d, want %d (%v)", action, c.Requests[action], want, c.Requests)
		}
	}
	if c.Forwarded != 8 || c.Delivered != 1 || c.Throttled+c.ServerErrors+c.Reordered+c.HeldBack != 0 {
		t.Errorf("counts %+v", c)
	}

	// A queue created directly on the emulator carries the emulator's port: the proxy points
	// its URL at itself in GetQueueUrl and ListQueues responses.
	direct := sqs.NewFromConfig(cfg)
	name := "awsproxy-direct-" + randomHex(6)
	created, err := direct.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = direct.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: created.QueueUrl}) })
	if mustPort(t, *created.QueueUrl) == proxyPort {
		t.Fatalf("direct queue URL %s already has the proxy's port", *created.QueueUrl)
	}
	got, err := sqsClient.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: &name})
	if err != nil {
		t.Fatal(err)
	}
	listed, err := sqsClient.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: &name})
	if err != nil {
		t.Fatal(err)
	}
	if mustPort(t, *got.QueueUrl) != proxyPort || len(listed.QueueUrls) != 1 || mustPort(t, listed.QueueUrls[0]) != proxyPort {
		t.Errorf("GetQueueUrl %s, ListQueues %v: want the proxy's port %s", *got.QueueUrl, listed.QueueUrls, proxyPort)
	}
	if n := px.Counts().URLsRewritten; n != 2 {
		t.Errorf("URLsRewritten = %d, want 2", n)
	}
}

func mustPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// TestLatency: every request takes at least the base latency, and at most base + jitter plus
// the emulator's own time (bounded loosely: the machine is shared).
func TestLatency(t *testing.T) {
	const base, jitter = 40 * time.Millisecond, 20 * time.Millisecond
	px, cfg := startProxy(t, Profile{Latency: base, Jitter: jitter, Seed: 1})
	snsClient, sqsClient := through(px, cfg, noRetries)
	ctx := context.Background()
	var durations []time.Duration
	for i := range 6 {
		start := time.Now()
		var err error
		if i%2 == 0 {
			_, err = snsClient.ListTopics(ctx, &sns.ListTopicsInput{})
		} else {
			_, err = sqsClient.ListQueues(ctx, &sqs.ListQueuesInput{})
		}
		if err != nil {
			t.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	for _, d := range durations {
		if d < base {
			t.Errorf("a request took %v, less than the latency %v (all: %v)", d, base, durations)
		}
	}
	if slices.Min(durations) > base+jitter+time.Second {
		t.Errorf("requests took %v: far more than the latency", durations)
	}
}

// TestReorder: with Reorder, receives come back in another order than sent, and nothing is lost.
func TestReorder(t *testing.T) {
	px, cfg := startProxy(t, Profile{})
	snsClient, sqsClient := through(px, cfg, noRetries)
	f := provision(t, cfg, snsClient, sqsClient, 30*time.Second)
	px.SetProfile(Profile{Reorder: true, Seed: 42})

	const rounds, perRound = 3, 6
	seen := map[string]int{}
	reordered := 0
	for r := range rounds {
		var sent []string
		for i := range perRound {
			sent = append(sent, fmt.Sprintf("r%d-%d", r, i))
		}
		publish(t, snsClient, f.topicArn, sent...) // one at a time: the emulator keeps that order
		var got []string
		for len(got) < perRound {
			msgs := receive(t, sqsClient, f.queueURL, 1)
			if len(msgs) == 0 {
				t.Fatalf("round %d: got %v of %v", r, got, sent)
			}
			b := bodies(msgs)
			if !slices.IsSortedFunc(b, func(x, y string) int { return slices.Index(sent, x) - slices.Index(sent, y) }) {
				reordered++
			}
			got = append(got, b...)
			deleteAll(t, sqsClient, f.queueURL, msgs)
		}
		for _, b := range got {
			seen[b]++
		}
		t.Logf("round %d: received %v", r, got)
	}
	for r := range rounds {
		for i := range perRound {
			if b := fmt.Sprintf("r%d-%d", r, i); seen[b] != 1 {
				t.Errorf("%s received %d times", b, seen[b])
			}
		}
	}
	if c := px.Counts(); reordered == 0 || c.Reordered != int64(reordered) || c.Delivered != rounds*perRound {
		t.Errorf("%d receives out of order; counts %+v", reordered, c)
	}
}

// TestHoldBack: a held-back message is not lost: it stays in flight and the queue redelivers it
// after its visibility timeout, as AWS sometimes does.
func TestHoldBack(t *testing.T) {
	const visibility = time.Second
	px, cfg := startProxy(t, Profile{})
	snsClient, sqsClient := through(px, cfg, noRetries)
	f := provision(t, cfg, snsClient, sqsClient, visibility)
	publish(t, snsClient, f.topicArn, "held")

	px.SetProfile(Profile{HoldBack: 1})
	start := time.Now()
	if msgs := receive(t, sqsClient, f.queueURL, 1); len(msgs) != 0 {
		t.Fatalf("received %v, want it held back", bodies(msgs))
	}
	if c := px.Counts(); c.HeldBack != 1 || c.Delivered != 0 {
		t.Fatalf("counts %+v", c)
	}

	px.SetProfile(Profile{})
	if msgs := receive(t, sqsClient, f.queueURL, 0); len(msgs) != 0 {
		t.Fatalf("received %v before the visibility timeout", bodies(msgs))
	}
	msgs := receive(t, sqsClient, f.queueURL, 5)
	elapsed := time.Since(start)
	if len(msgs) != 1 || aws.ToString(msgs[0].Body) != "held" {
		t.Fatalf("received %v, want the held-back message", bodies(msgs))
	}
	if elapsed < visibility-100*time.Millisecond {
		t.Errorf("redelivered after %v, before the visibility timeout %v", elapsed, visibility)
	}
	if n := msgs[0].Attributes["ApproximateReceiveCount"]; n != "2" {
		t.Errorf("ApproximateReceiveCount = %q, want 2 (one receive held back, one delivered)", n)
	}
	deleteAll(t, sqsClient, f.queueURL, msgs)
	if c := px.Counts(); c.HeldBack != 1 || c.Delivered != 1 {
		t.Errorf("counts %+v", c)
	}
}

// TestThrottle: the Go SDK reads the proxy's throttling errors as SNS's Throttling and SQS's
// RequestThrottled, on the data-path actions only unless FaultActions says otherwise.
func TestThrottle(t *testing.T) {
	px, cfg := startProxy(t, Profile{Throttle: 1})
	snsClient, sqsClient := through(px, cfg, noRetries)
	f := provision(t, cfg, snsClient, sqsClient, 30*time.Second) // provisioning is never faulted by default
	ctx := context.Background()

	_, err := snsClient.Publish(ctx, &sns.PublishInput{TopicArn: &f.topicArn, Message: aws.String("x")})
	wantAPIError(t, "Publish", err, "Throttling", http.StatusBadRequest, smithy.FaultUnknown)
	_, err = snsClient.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: &f.topicArn,
		PublishBatchRequestEntries: []snstypes.PublishBatchRequestEntry{{Id: aws.String("1"), Message: aws.String("x")}}})
	wantAPIError(t, "PublishBatch", err, "Throttling", http.StatusBadRequest, smithy.FaultUnknown)

	_, err = sqsClient.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &f.queueURL, WaitTimeSeconds: 1})
	wantAPIError(t, "ReceiveMessage", err, "RequestThrottled", http.StatusBadRequest, smithy.FaultClient)
	var throttled *sqstypes.RequestThrottled
	if !errors.As(err, &throttled) {
		t.Errorf("ReceiveMessage: %T is not a *types.RequestThrottled", err)
	}
	_, err = sqsClient.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &f.queueURL,
		Entries: []sqstypes.DeleteMessageBatchRequestEntry{{Id: aws.String("1"), ReceiptHandle: aws.String("h")}}})
	wantAPIError(t, "DeleteMessageBatch", err, "RequestThrottled", http.StatusBadRequest, smithy.FaultClient)

	// FaultActions picks the actions.
	px.SetProfile(Profile{Throttle: 1, FaultActions: []string{"GetQueueAttributes"}})
	_, err = sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &f.queueURL})
	wantAPIError(t, "GetQueueAttributes", err, "RequestThrottled", http.StatusBadRequest, smithy.FaultClient)
	publish(t, snsClient, f.topicArn, "not throttled")

	if c := px.Counts(); c.Throttled != 5 || c.ServerErrors != 0 {
		t.Errorf("counts %+v", c)
	}
}

// TestServerError: HTTP 500 with a body the Go SDK reads as a server fault.
func TestServerError(t *testing.T) {
	px, cfg := startProxy(t, Profile{ServerError: 1})
	snsClient, sqsClient := through(px, cfg, noRetries)
	f := provision(t, cfg, snsClient, sqsClient, 30*time.Second)
	ctx := context.Background()

	_, err := snsClient.Publish(ctx, &sns.PublishInput{TopicArn: &f.topicArn, Message: aws.String("x")})
	wantAPIError(t, "Publish", err, "InternalError", http.StatusInternalServerError, smithy.FaultServer)
	_, err = sqsClient.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &f.queueURL, WaitTimeSeconds: 1})
	wantAPIError(t, "ReceiveMessage", err, "InternalFailure", http.StatusInternalServerError, smithy.FaultServer)
	if c := px.Counts(); c.ServerErrors != 2 || c.Throttled != 0 {
		t.Errorf("counts %+v", c)
	}
}

func wantAPIError(t *testing.T, op string, err error, code string, status int, fault smithy.ErrorFault) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("%s: error %v is not a smithy.APIError", op, err)
		return
	}
	if apiErr.ErrorCode() != code || apiErr.ErrorFault() != fault {
		t.Errorf("%s: code %q fault %v, want %q %v (%v)", op, apiErr.ErrorCode(), apiErr.ErrorFault(), code, fault, err)
	}
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != status {
		t.Errorf("%s: want HTTP %d: %v", op, status, err)
	}
}

// TestRetryerRetriesFaults: the SDK's standard retryer (with its default retryable errors)
// retries the proxy's throttling and 500s, so a caller with retries sees no error and loses no
// message.
func TestRetryerRetriesFaults(t *testing.T) {
	px, cfg := startProxy(t, Profile{})
	snsClient, sqsClient := through(px, cfg, func(c *aws.Config) {
		c.Retryer = func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 10                   // 3 by default: 1 in 8 calls would fail at 50%
				o.MaxBackoff = 20 * time.Millisecond // keep the test short
			})
		}
	})
	f := provision(t, cfg, snsClient, sqsClient, 30*time.Second)
	// Sequential requests and a fixed seed: the same faults on every run.
	px.SetProfile(Profile{Throttle: 0.3, ServerError: 0.2, Seed: 7})

	const n = 10
	var sent []string
	for i := range n {
		sent = append(sent, fmt.Sprintf("m%d", i))
	}
	publish(t, snsClient, f.topicArn, sent...)
	var got []string
	for deadline := time.Now().Add(5 * time.Second); len(got) < n && time.Now().Before(deadline); {
		msgs := receive(t, sqsClient, f.queueURL, 1)
		got = append(got, bodies(msgs)...)
		deleteAll(t, sqsClient, f.queueURL, msgs)
	}
	slices.Sort(got)
	slices.Sort(sent)
	if !slices.Equal(got, sent) {
		t.Errorf("received %v, want %v", got, sent)
	}
	c := px.Counts()
	if c.Throttled == 0 || c.ServerErrors == 0 || c.Requests["Publish"] <= n {
		t.Errorf("no retries happened: %+v", c)
	}
	t.Logf("counts %+v", c)
}

// TestLongPollCancel: latency is added to long polls too, and a long poll ends upstream when
// its client leaves or the proxy closes.
func TestLongPollCancel(t *testing.T) {
	px, cfg := startProxy(t, Profile{})
	snsClient, sqsClient := through(px, cfg, noRetries)
	f := provision(t, cfg, snsClient, sqsClient, 30*time.Second)
	px.SetProfile(Profile{Latency: 50 * time.Millisecond})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := sqsClient.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &f.queueURL, WaitTimeSeconds: 20})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("long poll: %v, want the client's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the client waited %v", d)
	}
	// The proxy cancels its upstream request: the long poll ends there too.
	for deadline := time.Now().Add(2 * time.Second); px.Counts().UpstreamErrors != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the upstream long poll was not cancelled: %+v", px.Counts())
		}
	}

	// Close ends a long poll in flight at once.
	done := make(chan error, 1)
	go func() {
		_, err := sqsClient.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &f.queueURL, WaitTimeSeconds: 20})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // past the latency: the poll is upstream
	start = time.Now()
	if err := px.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("the long poll succeeded after Close")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a long poll in flight", d)
	}
	if c := px.Counts(); c.UpstreamErrors != 2 || c.Requests["ReceiveMessage"] != 2 {
		t.Errorf("counts %+v", c)
	}
}

// TestSetProfileConcurrent: profiles change while requests run (for the race detector), and
// the counts still add up.
func TestSetProfileConcurrent(t *testing.T) {
	px, cfg := startProxy(t, Profile{})
	snsClient, sqsClient := through(px, cfg, noRetries)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 10 {
				// Errors are expected: faults apply to these actions.
				if i%2 == 0 {
					_, _ = snsClient.Publish(context.Background(), &sns.PublishInput{
						TopicArn: aws.String("arn:aws:sns:us-east-1:000000000000:awsproxy-none"), Message: aws.String("x")})
				} else {
					_, _ = sqsClient.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
						QueueUrl: aws.String(px.URL() + "/000000000000/awsproxy-none")})
				}
			}
		})
	}
	for i := range 20 {
		px.SetProfile(Profile{Latency: time.Duration(i%3) * time.Millisecond, Jitter: time.Millisecond,
			Reorder: i%2 == 0, HoldBack: 0.1, Throttle: 0.3, ServerError: 0.1, Seed: uint64(i % 4)})
		_ = px.Profile()
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	if c := px.Counts(); c.Total() != 40 {
		t.Errorf("counts %+v", c)
	}
}
