package sqsadapter

// Messages over the SNS limit in parts: reassembly, its bounds, and when a message may not be
// split. TestLargeFetchSocketsInParts (parts_integration_test.go) runs it through the emulator.

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// partMessages is whole as received in parts of chunk bytes.
func partMessages(t *testing.T, whole *wire.Message, chunk int) []sqstypes.Message {
	t.Helper()
	parts, err := whole.Split(chunk)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]sqstypes.Message, len(parts))
	for i, p := range parts {
		out[i] = sqsMessage(t, p.ID, p, nil)
	}
	return out
}

// bigEmit is message n of peerUID (a Go server: node ffffffff) to the cluster: a serverSideEmit of "big" with payload.
func bigEmit(t *testing.T, n uint64, payload []byte) *wire.Message {
	t.Helper()
	m := &wire.Message{Type: wire.ServerSideEmit, Nsp: "/", UID: peerUID, ID: wire.SequencedID("ffffffff", wire.AllNodes, n)}
	sqsMessage(t, "", m, &wire.ServerSideEmitData{Packet: []any{"big", payload}}) // sets m.Data
	return m
}

func listen(io *socket.Server, event string) chan []any {
	got := make(chan []any, 10)
	_ = io.Sockets().On(event, func(args ...any) { got <- args })
	return got
}

func expectPayload(t *testing.T, got chan []any, want []byte) {
	t.Helper()
	select {
	case args := <-got:
		if b, ok := args[0].([]byte); !ok || !bytes.Equal(b, want) {
			t.Fatalf("received %T of the wrong bytes", args[0])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message was not delivered")
	}
}

// Parts shuffled and duplicated make the message once; its parts delivered again after it was
// complete are dropped as duplicates.
func TestPartsAreReassembledInAnyOrderAndActedOnOnce(t *testing.T) {
	io, b := fakeServer(t, &fakeAWS{}, nil)
	got := listen(io, "big")
	payload := bytes.Repeat([]byte("0123456789"), 1000)
	parts := partMessages(t, bigEmit(t, 1, payload), 997)
	rand.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	for i := range parts {
		b.handleSQSMessage(&parts[i])
		if i == 3 {
			b.handleSQSMessage(&parts[0])
		}
	}
	expectPayload(t, got, payload)
	for i := range parts {
		b.handleSQSMessage(&parts[i])
	}
	expectNothing(t, got)
	if s := b.Stats(); s.MessagesReassembled != 1 || s.Duplicates != uint64(len(parts))+1 || s.IncompleteMessages != 0 || s.Malformed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// captureRequests records the data of the messages of one type published.
type captureRequests struct {
	*fakeAWS
	body string
	data chan []byte
}

func (c *captureRequests) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if *in.Message == c.body {
		c.data <- in.MessageAttributes["data"].BinaryValue
	}
	return c.fakeAWS.Publish(ctx, in, o...)
}

func (c *captureRequests) PublishBatch(ctx context.Context, in *sns.PublishBatchInput, o ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	for _, e := range in.PublishBatchRequestEntries {
		if *e.Message == c.body {
			c.data <- e.MessageAttributes["data"].BinaryValue
		}
	}
	return c.fakeAWS.PublishBatch(ctx, in, o...)
}

// A fetchSockets whose answer misses a part fails at its timeout with an error that names the
// part and the server; the parts that came are given up on later, counted.
func TestMissingPartFailsTheRequestNamingIt(t *testing.T) {
	base := &fakeAWS{}
	q := &scriptedQueue{fakeAWS: base, batches: make(chan []sqstypes.Message, 10)}
	pub := &captureRequests{fakeAWS: base, body: "7", data: make(chan []byte, 1)}
	io, b := fakeServerWith(t, pub, q, nil, func(o *Options) { o.RequestTimeout = time.Second })
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	self := io.Sockets().Adapter().(*namespaceAdapter).uid
	q.batches <- []sqstypes.Message{sqsMessage(t, "hb", &wire.Message{Type: wire.Heartbeat, Nsp: "/", UID: peerUID}, nil)}
	testsupport.WaitServerCount(t, 5*time.Second, "/", 2, io.Sockets().Adapter())

	errs := make(chan error, 1)
	io.FetchSockets()(func(_ []*socket.RemoteSocket, err error) { errs <- err })
	var req wire.FetchSocketsData
	if err := wire.Decode(<-pub.data, &req); err != nil {
		t.Fatal(err)
	}
	answer := &wire.Message{Type: wire.FetchSocketsResponse, Nsp: "/", UID: peerUID, RequesterUID: self,
		ID: wire.SequencedID("ffffffff", self[:8], 1)}
	sockets := make([]wire.Socket, 100)
	for i := range sockets {
		sockets[i] = wire.Socket{ID: strings.Repeat("s", 20), Rooms: []string{}, Handshake: wire.Handshake{Headers: map[string]any{}}}
	}
	sqsMessage(t, "", answer, &wire.FetchSocketsResponseData{RequestID: req.RequestID, Sockets: sockets})
	parts := partMessages(t, answer, len(answer.Data)/5+1)
	q.batches <- []sqstypes.Message{parts[0], parts[1], parts[3], parts[4]}

	select {
	case err := <-errs:
		if err == nil || !strings.Contains(err.Error(), "part 3 of 5 missing") || !strings.Contains(err.Error(), peerUID) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fetchSockets never ended")
	}
	b.expireParts(time.Now().Add(partTimeout + time.Second))
	if s := b.Stats(); s.IncompleteMessages != 1 || s.MessagesReassembled != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Past the bytes it may hold, reassembly gives up on the oldest incomplete message, counted;
// its late part is then dropped.
func TestIncompleteMessagesAreBoundedInMemory(t *testing.T) {
	io, b := fakeServer(t, &fakeAWS{}, nil)
	got := listen(io, "big")
	b.limitParts(15_000)
	first := partMessages(t, bigEmit(t, 1, bytes.Repeat([]byte{1}, 10_000)), 4000)
	second := partMessages(t, bigEmit(t, 2, bytes.Repeat([]byte{2}, 10_000)), 4000)
	b.handleSQSMessage(&first[0])
	b.handleSQSMessage(&first[1])
	for i := range second {
		b.handleSQSMessage(&second[i])
	}
	expectPayload(t, got, bytes.Repeat([]byte{2}, 10_000))
	b.handleSQSMessage(&first[2])
	expectNothing(t, got)
	if s := b.Stats(); s.IncompleteMessages != 1 || s.MessagesReassembled != 1 || s.Duplicates != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// Parts that do not agree (sizes, counts) or do not decode are dropped and counted; nothing is
// delivered and nothing panics.
func TestDisagreeingPartsAreDropped(t *testing.T) {
	io, b := fakeServer(t, &fakeAWS{}, nil)
	got := listen(io, "big")
	m := bigEmit(t, 1, bytes.Repeat([]byte{1}, 1000))
	small, large := partMessages(t, m, 300), partMessages(t, m, 400)
	b.handleSQSMessage(&small[0])
	b.handleSQSMessage(&large[1]) // another count and size: the message is given up on
	for i := range small[1:] {
		b.handleSQSMessage(&small[1+i]) // given up on: dropped
	}
	garbage := sqsMessage(t, "g", &wire.Message{Type: wire.Part, Nsp: "/", UID: peerUID, Data: []byte{0xc1}}, nil)
	b.handleSQSMessage(&garbage)
	expectNothing(t, got)
	if s := b.Stats(); s.Malformed != 2 || s.MessagesReassembled != 0 || s.HandlerPanics != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// An answer over the SNS limit goes in parts to a Go requester; to a Node requester it cannot
// (Node would not put it back together): a MessageTooLargeError naming the requester, counted.
// A message to the whole cluster is refused while a Node server is in it.
func TestWhoGetsParts(t *testing.T) {
	base := &fakeAWS{}
	q := &scriptedQueue{fakeAWS: base, batches: make(chan []sqstypes.Message, 10)}
	io, b := fakeServerWith(t, base, q, nil, nil)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	self := io.Sockets().Adapter().(*namespaceAdapter).uid
	const nodeUID = "eeeeeeee00000002" // a Node server: no msgId
	q.batches <- []sqstypes.Message{
		sqsMessage(t, "hb1", &wire.Message{Type: wire.Heartbeat, Nsp: "/", UID: peerUID, ID: "ffffffff/*/1"}, nil),
		sqsMessage(t, "hb2", &wire.Message{Type: wire.Heartbeat, Nsp: "/", UID: nodeUID}, nil),
	}
	testsupport.WaitServerCount(t, 5*time.Second, "/", 3, io.Sockets().Adapter())
	big := func(typ wire.Type, requester string) *wire.Message {
		m := &wire.Message{Type: typ, Nsp: "/", UID: self, RequesterUID: requester, Data: make([]byte, 600_000)}
		m.ID = b.messageID(m)
		return m
	}
	if err := b.publishMessage(big(wire.FetchSocketsResponse, peerUID)); err != nil {
		t.Fatalf("answer to a Go server: %v", err)
	}
	var tooLarge *MessageTooLargeError
	err := b.publishMessage(big(wire.FetchSocketsResponse, nodeUID))
	if !errors.As(err, &tooLarge) || tooLarge.Requester != nodeUID || !strings.Contains(err.Error(), "Node server") {
		t.Fatalf("answer to a Node server: %v", err)
	}
	err = b.publishMessage(big(wire.Broadcast, ""))
	if !errors.As(err, &tooLarge) || !strings.Contains(err.Error(), "1 server of the cluster cannot put parts together") {
		t.Fatalf("broadcast with a Node server in the cluster: %v", err)
	}
	eventually(t, 5*time.Second, func() bool { return b.Stats().Published >= 5 }, "the parts are published")
	s := b.Stats()
	if s.TooLarge != 2 || s.MessagesSplit != 1 || s.PartsSent != 4 {
		t.Fatalf("stats %+v", s)
	}
}
