package sqsadapter

// Who may speak on the topic: signed messages, refused forgeries and replays (fakes, no
// emulator). The integration tests are in signing_integration_test.go.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

var (
	keyOld   = []byte("old-key-0123456789abcdef01234567")
	keyNew   = []byte("new-key-0123456789abcdef01234567")
	keyOther = []byte("not-a-cluster-key-0123456789abcd")
)

const peerUID = "ffffffff00000001"

// signedServer is a server on fakes with keys; what it hands to OnError goes to sink.
func signedServer(t *testing.T, sink *errorSink, tweak func(*Options), keys ...[]byte) (*AdapterBuilder, chan []any) {
	t.Helper()
	io, b := fakeServerWith(t, &fakeAWS{}, &fakeAWS{}, sink, func(o *Options) {
		o.SigningKeys = keys
		if tweak != nil {
			tweak(o)
		}
	})
	got := make(chan []any, 100)
	_ = io.Sockets().On("hello", func(args ...any) { got <- args })
	return b, got
}

// emitMessage is a SERVER_SIDE_EMIT "hello" arg from uid with msgId id, signed with key at at
// unless key is nil.
func emitMessage(t *testing.T, uid, id, arg string, key []byte, at time.Time) sqstypes.Message {
	t.Helper()
	m := &wire.Message{Type: wire.ServerSideEmit, Nsp: "/", UID: uid, ID: id}
	data, err := wire.Encode(&wire.ServerSideEmitData{Packet: []any{"hello", arg}})
	if err != nil {
		t.Fatal(err)
	}
	m.Data = data
	if key != nil {
		m.Sign(key, DefaultTopicName, at)
	}
	return sqsMessage(t, "sqs-"+id, m, nil)
}

func expectArg(t *testing.T, got chan []any, want string) {
	t.Helper()
	select {
	case args := <-got:
		if args[0] != want {
			t.Fatalf("acted on %v, want %s", args, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s was not acted on", want)
	}
}

func expectNothing(t *testing.T, got chan []any) {
	t.Helper()
	select {
	case args := <-got:
		t.Fatalf("acted on %v", args)
	default:
	}
}

// rejection waits for the next report and checks it is a *RejectedMessageError for reason.
func rejection(t *testing.T, sink *errorSink, reason error) *RejectedMessageError {
	t.Helper()
	var r *RejectedMessageError
	err := sink.next(t)
	if !errors.As(err, &r) || !errors.Is(err, reason) {
		t.Fatalf("reported %v, want a RejectedMessageError for %v", err, reason)
	}
	return r
}

func TestSignedMessagesAreActedOnAndOthersRefused(t *testing.T) {
	sink := newErrorSink()
	b, got := signedServer(t, sink, nil, keyOld)
	now := time.Now()

	b.handleSQSMessage(ptr(emitMessage(t, peerUID, "m1", "signed", keyOld, now)))
	expectArg(t, got, "signed")

	cases := []struct {
		id, what string
		key      []byte
		at       time.Time
		reason   error
	}{
		{"m2", "unsigned", nil, now, ErrUnsigned},
		{"m3", "other key", keyOther, now, ErrBadSignature},
		{"m4", "too old", keyOld, now.Add(-DefaultSignatureMaxAge - time.Second), ErrSignatureExpired},
		{"m5", "from the future", keyOld, now.Add(DefaultSignatureMaxAge + time.Second), ErrSignatureExpired},
	}
	for i, c := range cases {
		b.handleSQSMessage(ptr(emitMessage(t, fmt.Sprintf("forger%d", i), c.id, c.what, c.key, c.at)))
		r := rejection(t, sink, c.reason)
		if r.Type != "SERVER_SIDE_EMIT" || r.Nsp != "/" || r.UID != fmt.Sprintf("forger%d", i) || r.MsgID != c.id || r.Refused != 1 {
			t.Errorf("%s: reported %+v", c.what, r)
		}
	}
	// A signature with a changed field: the data of another message under m1's signature.
	tampered := emitMessage(t, peerUID, "m6", "tampered", nil, now)
	tampered.MessageAttributes[wire.AttrSig] = emitMessage(t, peerUID, "m6", "signed", keyOld, now).MessageAttributes[wire.AttrSig]
	b.handleSQSMessage(&tampered)
	rejection(t, sink, ErrBadSignature)
	expectNothing(t, got)

	s := b.Stats()
	if s.Unsigned != 1 || s.BadSignatures != 2 || s.ExpiredSignatures != 2 || s.Replays != 0 || s.Malformed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A forgery carrying the msgId of a genuine message to come must not make the genuine one look
// like its redelivery: signatures are checked before de-duplication.
func TestForgeryCannotTakeTheMsgIdOfAGenuineMessage(t *testing.T) {
	b, got := signedServer(t, nil, nil, keyOld)
	b.handleSQSMessage(ptr(emitMessage(t, peerUID, "next-id", "forged", nil, time.Now())))
	b.handleSQSMessage(ptr(emitMessage(t, peerUID, "next-id", "genuine", keyOld, time.Now())))
	expectArg(t, got, "genuine")
	if s := b.Stats(); s.Unsigned != 1 || s.Duplicates != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A replay of a captured message is dropped as a redelivery within the transport's window (the
// last 10 000 messages), and by the remembered msgId after it, for as long as its signature is
// valid.
func TestReplayIsRefusedAfterTheDeduplicationWindow(t *testing.T) {
	sink := newErrorSink()
	b, got := signedServer(t, sink, nil, keyOld)
	captured := emitMessage(t, peerUID, "captured", "once", keyOld, time.Now())
	b.handleSQSMessage(&captured)
	expectArg(t, got, "once")

	again := captured
	again.MessageId = aws.String("sqs-again")
	b.handleSQSMessage(&again)
	if s := b.Stats(); s.Duplicates != 1 {
		t.Fatalf("stats %+v", s)
	}
	for i := range 10_000 { // push the captured msgId out of the transport's memory
		hb := &wire.Message{Type: wire.Heartbeat, Nsp: "/", UID: peerUID, ID: fmt.Sprintf("filler-%d", i)}
		hb.Sign(keyOld, DefaultTopicName, time.Now())
		b.handleSQSMessage(ptr(sqsMessage(t, fmt.Sprintf("sqs-filler-%d", i), hb, nil)))
	}
	later := captured
	later.MessageId = aws.String("sqs-later")
	b.handleSQSMessage(&later)
	r := rejection(t, sink, ErrReplayed)
	if r.MsgID != "captured" || r.UID != peerUID {
		t.Fatalf("reported %+v", r)
	}
	expectNothing(t, got)
	if s := b.Stats(); s.Replays != 1 || s.Duplicates != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestAcceptUnsignedStillRefusesWrongSignatures(t *testing.T) {
	b, got := signedServer(t, nil, func(o *Options) { o.AcceptUnsigned = true }, keyOld)
	b.handleSQSMessage(ptr(emitMessage(t, peerUID, "u1", "unsigned", nil, time.Now())))
	expectArg(t, got, "unsigned")
	b.handleSQSMessage(ptr(emitMessage(t, peerUID, "s1", "signed", keyOld, time.Now())))
	expectArg(t, got, "signed")
	b.handleSQSMessage(ptr(emitMessage(t, peerUID, "w1", "wrong", keyOther, time.Now())))
	expectNothing(t, got)
	if s := b.Stats(); s.Unsigned != 1 || s.BadSignatures != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// A server without keys acts on signed and unsigned messages alike: turning signing on server by
// server does not cut the others off from what the first ones send.
func TestServerWithoutKeysIgnoresSignatures(t *testing.T) {
	b, got := signedServer(t, nil, nil)
	b.handleSQSMessage(ptr(emitMessage(t, peerUID, "a", "signed", keyOther, time.Now())))
	expectArg(t, got, "signed")
	b.handleSQSMessage(ptr(emitMessage(t, peerUID, "b", "unsigned", nil, time.Now())))
	expectArg(t, got, "unsigned")
}

// Refusals are reported once a minute per sender uid, with how many were refused meanwhile.
func TestRefusalsAreReportedOncePerSender(t *testing.T) {
	sink := newErrorSink()
	b, _ := signedServer(t, sink, nil, keyOld)
	clock := time.Now()
	b.setSigningClock(func() time.Time { return clock })
	for i := range 5 {
		b.handleSQSMessage(ptr(emitMessage(t, peerUID, fmt.Sprint("x", i), "forged", nil, clock)))
	}
	if r := rejection(t, sink, ErrUnsigned); r.Refused != 1 {
		t.Fatalf("first report %+v", r)
	}
	b.handleSQSMessage(ptr(emitMessage(t, "another", "y", "forged", keyOther, clock)))
	if r := rejection(t, sink, ErrBadSignature); r.UID != "another" {
		t.Fatalf("report %+v", r)
	}
	clock = clock.Add(rejectReportInterval)
	b.handleSQSMessage(ptr(emitMessage(t, peerUID, "x5", "forged", nil, clock)))
	if r := rejection(t, sink, ErrUnsigned); r.Refused != 5 || !strings.Contains(r.Error(), "5 refused from this uid") {
		t.Fatalf("second report %+v: %v", r, r)
	}
	select {
	case err := <-sink.ch:
		t.Fatalf("reported again: %v", err)
	default:
	}
	if s := b.Stats(); s.Unsigned != 6 || s.BadSignatures != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRejectReportsAreBounded(t *testing.T) {
	r := rejectReports{senders: map[string]*senderReports{}}
	now := time.Now()
	for i := range maxReportedSenders {
		if due, _ := r.due(fmt.Sprint(i), now); !due {
			t.Fatalf("sender %d not reported", i)
		}
	}
	if due, _ := r.due("one more", now); !due {
		t.Fatal("the first sender beyond the bound is not reported")
	}
	if due, _ := r.due("and another", now); due {
		t.Fatal("senders beyond the bound share one report")
	}
	if len(r.senders) != maxReportedSenders+1 {
		t.Fatalf("%d senders remembered", len(r.senders))
	}
	// A minute later the old ones are forgotten to make room.
	if due, _ := r.due("later", now.Add(rejectReportInterval)); !due || len(r.senders) != 1 {
		t.Fatalf("due %v, %d senders remembered", due, len(r.senders))
	}
}

// The msgIds remembered against replays are forgotten when their signatures expire.
func TestReplayMemoryForgetsExpiredIDs(t *testing.T) {
	r := replayMemory{until: map[string]time.Time{}}
	t0 := time.Now()
	for i := range 1000 {
		if !r.add(fmt.Sprint(i), t0.Add(time.Duration(i)*time.Millisecond), t0) {
			t.Fatalf("id %d not new", i)
		}
	}
	if r.add("500", t0.Add(time.Hour), t0) {
		t.Fatal("a remembered id is new")
	}
	if !r.add("late", t0.Add(time.Hour), t0.Add(500*time.Millisecond+time.Microsecond)) {
		t.Fatal("late is not new")
	}
	if len(r.until) != 500 || len(r.order) != 500 {
		t.Fatalf("%d ids, %d in order, want 499 left and late", len(r.until), len(r.order))
	}
	if !r.add("3", t0.Add(time.Hour), t0.Add(time.Second)) {
		t.Fatal("an expired id is not new again")
	}
}

// snsTap passes every publish on and keeps it, as a single publish (a batch's entries too).
type snsTap struct {
	SNSAPI
	mu   sync.Mutex
	msgs []*sns.PublishInput
}

func (r *snsTap) PublishBatch(ctx context.Context, in *sns.PublishBatchInput, o ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	r.mu.Lock()
	for _, e := range in.PublishBatchRequestEntries {
		r.msgs = append(r.msgs, &sns.PublishInput{TopicArn: in.TopicArn, Message: e.Message, MessageAttributes: e.MessageAttributes})
	}
	r.mu.Unlock()
	return r.SNSAPI.PublishBatch(ctx, in, o...)
}

func (r *snsTap) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	r.mu.Lock()
	r.msgs = append(r.msgs, in)
	r.mu.Unlock()
	return r.SNSAPI.Publish(ctx, in, o...)
}

// published returns what was published so far.
func (r *snsTap) published() []*sns.PublishInput {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// messages returns what was published so far, as servers receive it.
func (r *snsTap) messages() []*wire.Message {
	var out []*wire.Message
	for _, in := range r.published() {
		out = append(out, fromPublished(in.Message, in.MessageAttributes))
	}
	return out
}

func TestPublishedMessagesAreSignedWithTheFirstKey(t *testing.T) {
	rec := &snsTap{SNSAPI: &fakeAWS{}}
	io, b := fakeServerWith(t, rec, &fakeAWS{}, nil, func(o *Options) { o.SigningKeys = [][]byte{keyNew, keyOld} })
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	io.Emit("hello", "world")
	eventually(t, 5*time.Second, func() bool { return len(rec.published()) >= 2 }, "INITIAL_HEARTBEAT and BROADCAST are published")
	for _, m := range rec.messages() {
		if _, err := m.VerifySig([][]byte{keyNew}, DefaultTopicName); err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		if _, err := m.VerifySig([][]byte{keyOld}, DefaultTopicName); err == nil {
			t.Fatalf("%s signed with the second key", m.Type)
		}
	}
}

func TestSigningOptionsAreChecked(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"short key", Options{SigningKeys: [][]byte{keyOld, []byte("short")}}, "SigningKeys[1] is 5 bytes"},
		{"negative age", Options{SigningKeys: [][]byte{keyOld}, SignatureMaxAge: -time.Second}, "SignatureMaxAge is negative"},
		{"AcceptUnsigned alone", Options{AcceptUnsigned: true}, "AcceptUnsigned without SigningKeys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeAWS{}
			c.opts.Logger = testLogger(t)
			err := NewAdapterBuilder(f, f, &c.opts).Init(context.Background())
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

// fromPublished reads a published message back as a server receives it.
func fromPublished(body *string, attrs map[string]snstypes.MessageAttributeValue) *wire.Message {
	in := map[string]sqstypes.MessageAttributeValue{}
	for k, v := range attrs {
		in[k] = sqstypes.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	m, err := wire.FromSQS(body, in)
	if err != nil {
		panic(err)
	}
	return m
}
