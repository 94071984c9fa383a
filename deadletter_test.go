package sqsadapter

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Garbage sent straight to a live node's queue, a payload of the wrong shape and a handler that
// panics all end up in the dead-letter queue, each with its original body and attributes and
// the reason it was dropped.
func TestDroppedMessagesGoToTheDeadLetterQueue(t *testing.T) {
	_, sqsClient := awsClients(t)
	ctx := context.Background()
	dlq, err := sqsClient.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(testsupport.UniqueName("sqsadapter-test-dlq"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = sqsClient.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: dlq.QueueUrl})
	})
	opts := testOptions(t)
	opts.DeadLetterQueueURL = *dlq.QueueUrl
	n := startNode(t, opts)
	_ = n.io.Sockets().On("boom", func(...any) { panic("boom in a handler") })

	garbage := garbageMessages()
	want := make([]string, len(garbage))
	for i, g := range garbage {
		want[i] = deadLetterMalformed // not a cluster message
		if _, err := wire.FromSQS(g.MessageBody, g.MessageAttributes); err == nil {
			want[i] = deadLetterWrongPayload // its data cannot be decoded
		}
	}
	str := func(s string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
	}
	wrongShape := sqsMessage(t, "w", &wire.Message{Type: wire.Broadcast, Nsp: "/", UID: "wrongshape1"}, nil)
	wrongShape.MessageAttributes["data"] = sqstypes.MessageAttributeValue{DataType: aws.String("Binary"),
		BinaryValue: []byte{0x81, 0xa4, 'o', 'p', 't', 's', 0x05}}
	panics := serverSideEmitMessage(t, "p", "boom")
	for _, m := range []sqstypes.Message{wrongShape, panics} {
		garbage = append(garbage, sqs.SendMessageInput{MessageBody: m.Body, MessageAttributes: m.MessageAttributes})
	}
	want = append(want, deadLetterWrongPayload, deadLetterPanic)
	garbage[0].MessageAttributes = map[string]sqstypes.MessageAttributeValue{"uid": str("sender-of-garbage")}

	queueURL := n.resources().queueURL
	for i := range garbage {
		garbage[i].QueueUrl = &queueURL
		if _, err := sqsClient.SendMessage(ctx, &garbage[i]); err != nil {
			t.Fatal(err)
		}
	}

	var kept []sqstypes.Message
	eventually(t, 20*time.Second, func() bool {
		out, err := sqsClient.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: dlq.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, out.Messages...)
		return len(kept) >= len(garbage)
	}, "%d messages in the dead-letter queue", len(garbage))
	if len(kept) != len(garbage) {
		t.Fatalf("%d messages in the dead-letter queue, want %d", len(kept), len(garbage))
	}

	for i, g := range garbage {
		var found *sqstypes.Message
		for j := range kept {
			if deref(kept[j].Body) == *g.MessageBody && sameAttributes(g.MessageAttributes, withoutOurs(kept[j].MessageAttributes)) {
				found = &kept[j]
			}
		}
		if found == nil {
			t.Errorf("garbage %d (%q %v) is not in the dead-letter queue as it was", i, *g.MessageBody, g.MessageAttributes)
			continue
		}
		reason := deref(found.MessageAttributes[attrDeadLetterReason].StringValue)
		if !strings.HasPrefix(reason, want[i]+": ") || len(reason) <= len(want[i])+2 {
			t.Errorf("garbage %d: reason %q, want %s: ...", i, reason, want[i])
		}
		if uid, ok := g.MessageAttributes["uid"]; ok && *uid.DataType == "String" {
			if sender := deref(found.MessageAttributes[attrDeadLetterSender].StringValue); sender != *uid.StringValue {
				t.Errorf("garbage %d: sender %q, want %q", i, sender, *uid.StringValue)
			}
		}
	}
	if s := n.builder.Stats(); s.DeadLettered != uint64(len(garbage)) || s.DeadLetterFailures != 0 || s.HandlerPanics != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func withoutOurs(attrs map[string]sqstypes.MessageAttributeValue) map[string]sqstypes.MessageAttributeValue {
	out := maps.Clone(attrs)
	delete(out, attrDeadLetterReason)
	delete(out, attrDeadLetterSender)
	return out
}

func sameAttributes(a, b map[string]sqstypes.MessageAttributeValue) bool {
	return maps.EqualFunc(a, b, func(x, y sqstypes.MessageAttributeValue) bool {
		return deref(x.DataType) == deref(y.DataType) && deref(x.StringValue) == deref(y.StringValue) &&
			string(x.BinaryValue) == string(y.BinaryValue)
	})
}

func TestDeadLetterKeepsTheOriginalAndWrapsTheBodyWhenAttributesAreFull(t *testing.T) {
	str := func(s string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
	}
	raw := &sqstypes.Message{Body: aws.String("3"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
		"nsp": str("/"), "uid": str("u1"), "data": {DataType: aws.String("Binary"), BinaryValue: []byte{1, 2}},
	}}
	in := deadLetterInput("http://q", deadLetter{raw: raw, reason: "malformed: bad\x00 value", sender: "u1"})
	if *in.MessageBody != "3" || len(in.MessageAttributes) != 5 || string(in.MessageAttributes["data"].BinaryValue) != "\x01\x02" ||
		*in.MessageAttributes[attrDeadLetterReason].StringValue != "malformed: bad? value" ||
		*in.MessageAttributes[attrDeadLetterSender].StringValue != "u1" {
		t.Fatalf("%q %+v", *in.MessageBody, in.MessageAttributes)
	}

	for i := range 9 { // with the uid: 10 attributes, no room for 2 more
		raw.MessageAttributes[string(rune('a'+i))] = str("x")
	}
	in = deadLetterInput("http://q", deadLetter{raw: raw, reason: "handler-panic: " + strings.Repeat("é", 1000), sender: "u1"})
	if len(in.MessageAttributes) != 12 || in.MessageAttributes[attrDeadLetterReason].StringValue != nil {
		t.Fatalf("%d attributes: %v", len(in.MessageAttributes), in.MessageAttributes)
	}
	var wrapped map[string]string
	if err := json.Unmarshal([]byte(*in.MessageBody), &wrapped); err != nil {
		t.Fatal(err)
	}
	if wrapped["body"] != "3" || wrapped[attrDeadLetterSender] != "u1" || len(wrapped[attrDeadLetterReason]) > maxReasonLen ||
		!strings.HasPrefix(wrapped[attrDeadLetterReason], "handler-panic: é") {
		t.Fatalf("wrapped %v", wrapped)
	}
}

// blockedSend is an SQS whose SendMessage never answers until its context ends.
type blockedSend struct {
	*fakeAWS
	once    sync.Once
	sending chan struct{}
}

func (b *blockedSend) SendMessage(ctx context.Context, _ *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	b.once.Do(func() { close(b.sending) })
	<-ctx.Done()
	return nil, ctx.Err()
}

// A dead-letter queue that does not answer never holds up receiving: what does not fit in the
// buffer is dropped and counted, and Close abandons the rest within its deadline.
func TestDeadLetterQueueNeverBlocksReceiving(t *testing.T) {
	f := &fakeAWS{}
	q := &blockedSend{fakeAWS: f, sending: make(chan struct{})}
	_, b := fakeServerWith(t, f, q, nil, func(o *Options) { o.DeadLetterQueueURL = "http://fake/000000000000/dlq" })
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	const garbage = 3 * deadLetterBuffer
	start := time.Now()
	b.handleSQSMessage(&sqstypes.Message{MessageId: aws.String("first"), Body: aws.String("garbage")})
	<-q.sending // the goroutine holds one; the buffer is empty again
	for i := range garbage - 1 {
		b.handleSQSMessage(&sqstypes.Message{MessageId: aws.String(string(rune(i))), Body: aws.String("garbage")})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("receiving %d malformed messages took %v", garbage, d)
	}
	if s := b.Stats(); s.Malformed != garbage || s.DeadLetterFailures != garbage-1-deadLetterBuffer {
		t.Fatalf("stats %+v, want %d failures (buffer full)", s, garbage-1-deadLetterBuffer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := b.Close(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	// Close returned at its deadline; the clean-up abandons the dead letters right then.
	eventually(t, 2*time.Second, func() bool { return b.Stats().DeadLetterFailures == garbage },
		"every dead letter counted as failed")
	if s := b.Stats(); s.DeadLettered != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// SQS refusing dead letters is reported once per streak, and counted for each.
func TestDeadLetterFailuresAreReportedOncePerStreak(t *testing.T) {
	f := &fakeAWS{fail: map[string]error{"SendMessage": apiError("AccessDenied")}}
	sink := newErrorSink()
	_, b := fakeServerWith(t, f, f, sink, func(o *Options) { o.DeadLetterQueueURL = "http://fake/000000000000/dlq" })
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		b.handleSQSMessage(&sqstypes.Message{MessageId: aws.String(string(rune('a' + i))), Body: aws.String("garbage")})
	}
	var opErr *OpError
	if err := sink.next(t); !errors.As(err, &opErr) || opErr.Op != "sqs:SendMessage" {
		t.Fatalf("reported %v", err)
	}
	eventually(t, 5*time.Second, func() bool { return b.Stats().DeadLetterFailures == 3 }, "3 failures counted")
	select {
	case err := <-sink.ch:
		t.Fatalf("a second report: %v", err)
	default:
	}
	f.mu.Lock()
	f.fail = nil
	f.mu.Unlock()
	b.handleSQSMessage(&sqstypes.Message{MessageId: aws.String("d"), Body: aws.String("garbage")})
	eventually(t, 5*time.Second, func() bool { return b.Stats().DeadLettered == 1 }, "sent once SQS takes it")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) != 1 || *f.sent[0].QueueUrl != "http://fake/000000000000/dlq" ||
		!strings.HasPrefix(*f.sent[0].MessageAttributes[attrDeadLetterReason].StringValue, "malformed: body \"garbage\"") {
		t.Fatalf("sent %+v", f.sent)
	}
}

func TestDeadLetterQueueURLIsChecked(t *testing.T) {
	for _, u := range []string{"dlq", "arn:aws:sqs:us-east-1:000000000000:dlq", "https://sqs.us-east-1.amazonaws.com/"} {
		f := &fakeAWS{}
		b := NewAdapterBuilder(f, f, &Options{Logger: testLogger(t), DeadLetterQueueURL: u})
		if err := b.Init(context.Background()); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "DeadLetterQueueURL") {
			t.Errorf("%q: %v", u, err)
		}
	}
}
