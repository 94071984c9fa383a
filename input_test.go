package sqsadapter

// The path from a raw SQS message to dispatch, under hostile and duplicated input.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// FuzzHandleSQSMessage feeds arbitrary bodies and attributes to a namespace adapter of a real
// server, seeded with the upstream wire vectors rewritten so that they are addressed to it, and
// the same to a server with a signing key: sig "sign" signs the input with that key (so that it
// gets past the signature check to dispatch), any other non-empty sig is sent as the sig
// attribute as it is. No input may panic (the handler's recover would count it: the test fails
// on any), and the msgpack check keeps length prefixes from sizing allocations.
func FuzzHandleSQSMessage(f *testing.F) {
	raw, err := os.ReadFile("testdata/aws-sqs-adapter-0.1.1.json")
	if err != nil {
		f.Fatal(err)
	}
	var vectors []struct {
		Body       string `json:"body"`
		Attributes map[string]struct{ StringValue string }
		DataHex    string `json:"dataHex"`
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		f.Fatal(err)
	}
	for _, v := range vectors {
		data, _ := hex.DecodeString(v.DataHex)
		requester := ""
		if _, ok := v.Attributes["requesterUid"]; ok {
			requester = "self"
		}
		for _, sig := range []string{"", "sign"} {
			f.Add(v.Body, v.Attributes["nsp"].StringValue, "peer", requester, data, len(data) > 0, sig)
		}
	}
	f.Add("3", "/", "peer", "", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, false, "")
	f.Add("3", "/", "peer", "", []byte{0x80}, true, "v1:1700000000000:"+strings.Repeat("0", 64))
	f.Add("3", "/", "peer", "", []byte{0x80}, true, "v1:99999999999999999999:zz")
	f.Add("2", "/", "peer", "", []byte{}, false, "v1:")
	if parts, err := (&wire.Message{Type: wire.Broadcast, Nsp: "/", ID: "a/*/1", Data: []byte{0x80, 1, 2, 3, 4, 5}}).Split(4); err == nil {
		f.Add("103", "/", "peer", "", parts[0].Data, true, "") // a PART of a message never completed
	}

	key := []byte("fuzz-key-0123456789abcdef0123456")
	servers := make([]*AdapterBuilder, 2)
	selves := make([]string, 2)
	for i := range servers {
		fk := &fakeAWS{}
		o := &Options{Logger: discardLogger(), HeartbeatInterval: time.Hour, HeartbeatTimeout: 2 * time.Hour}
		if i == 1 {
			o.SigningKeys = [][]byte{key}
		}
		servers[i] = NewAdapterBuilder(fk, fk, o)
		opts := socket.DefaultServerOptions()
		opts.SetAdapter(servers[i])
		io := socket.NewServer(nil, opts)
		io.Of("/custom", nil)
		defer io.Close(nil)
		selves[i] = io.Sockets().Adapter().(*namespaceAdapter).uid
	}
	var n int

	f.Fuzz(func(t *testing.T, body, nsp, uid, requester string, data []byte, withData bool, sig string) {
		n++
		id := hex.EncodeToString([]byte{byte(n >> 16), byte(n >> 8), byte(n)})
		for i, b := range servers {
			attrs := map[string]sqstypes.MessageAttributeValue{}
			str := func(name, v string) {
				if v != "" {
					attrs[name] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
				}
			}
			r := requester
			if r == "self" {
				r = selves[i] // let responses reach the request routing
			}
			str("nsp", nsp)
			str("uid", uid)
			str("requesterUid", r)
			if withData {
				attrs["data"] = sqstypes.MessageAttributeValue{DataType: aws.String("Binary"), BinaryValue: data}
			}
			if sig == "sign" {
				typ, _ := strconv.Atoi(body)
				m := &wire.Message{Type: wire.Type(typ), Nsp: nsp, UID: uid, RequesterUID: r, ID: id}
				if withData {
					m.Data = data
				}
				m.Sign(key, DefaultTopicName, time.Now())
				str("msgId", id)
				str("sig", m.Sig)
			} else {
				str("sig", sig)
			}
			b.handleSQSMessage(&sqstypes.Message{MessageId: aws.String(id + body), Body: &body, MessageAttributes: attrs})
			if p := b.Stats().HandlerPanics; p != 0 {
				t.Fatalf("handling panicked (%d)", p)
			}
		}
	})
}

// scriptedQueue feeds the poll loop the batches a test pushes.
type scriptedQueue struct {
	*fakeAWS
	batches chan []sqstypes.Message
}

func (q *scriptedQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	select {
	case batch := <-q.batches:
		return &sqs.ReceiveMessageOutput{Messages: batch}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// capturePublish records the data of every BROADCAST published.
type capturePublish struct {
	*fakeAWS
	broadcasts chan []byte
}

func (c *capturePublish) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if *in.Message == "3" {
		c.broadcasts <- in.MessageAttributes["data"].BinaryValue
	}
	return c.fakeAWS.Publish(ctx, in, o...)
}

func sqsMessage(t *testing.T, id string, m *wire.Message, data any) sqstypes.Message {
	t.Helper()
	if data != nil {
		b, err := wire.Encode(data)
		if err != nil {
			t.Fatal(err)
		}
		m.Data = b
	}
	attrs := map[string]sqstypes.MessageAttributeValue{}
	for k, v := range m.SNSAttributes() {
		attrs[k] = sqstypes.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return sqstypes.Message{MessageId: aws.String(id), Body: aws.String(m.Body()), MessageAttributes: attrs, ReceiptHandle: aws.String(id)}
}

// An SQS standard queue may deliver a message twice. A second BROADCAST_CLIENT_COUNT would make
// the emitter wait for an acknowledgement that never comes; the redelivery must be dropped.
func TestRedeliveredClientCountIsNotCountedTwice(t *testing.T) {
	base := &fakeAWS{}
	q := &scriptedQueue{fakeAWS: base, batches: make(chan []sqstypes.Message, 10)}
	pub := &capturePublish{fakeAWS: base, broadcasts: make(chan []byte, 10)}
	io, b := fakeServerWith(t, pub, q, nil, nil)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	self := io.Sockets().Adapter().(*namespaceAdapter).uid
	const peer = "ffffffff00000001"
	q.batches <- []sqstypes.Message{sqsMessage(t, "hb", &wire.Message{Type: wire.Heartbeat, Nsp: "/", UID: peer}, nil)}
	testsupport.WaitServerCount(t, 5*time.Second, "/", 2, io.Sockets().Adapter()) // the peer is counted

	ch := make(chan ackResult, 1)
	io.Timeout(3*time.Second).Emit("question", ackInto(ch))
	var sent wire.BroadcastData
	if err := wire.Decode(<-pub.broadcasts, &sent); err != nil {
		t.Fatal(err)
	}
	count := sqsMessage(t, "count-1", &wire.Message{Type: wire.BroadcastClientCount, Nsp: "/", UID: peer, RequesterUID: self},
		&wire.BroadcastClientCountData{RequestID: sent.RequestID, ClientCount: 1})
	ack := sqsMessage(t, "ack-1", &wire.Message{Type: wire.BroadcastAck, Nsp: "/", UID: peer, RequesterUID: self},
		&wire.BroadcastAckData{RequestID: sent.RequestID, Packet: "yes"})
	q.batches <- []sqstypes.Message{count}
	q.batches <- []sqstypes.Message{count, ack} // the count again: visible again before it was deleted

	r := awaitAck(t, ch)
	if r.err != nil || len(r.responses) != 1 || r.responses[0] != "yes" {
		t.Fatalf("responses %v, err %v", r.responses, r.err)
	}
	if s := b.Stats(); s.Duplicates != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// A publish retried after its response was lost reaches the queue twice, as two SQS messages
// with one msgId: the second is dropped.
func TestMessagePublishedTwiceIsHandledOnce(t *testing.T) {
	io, b := fakeServer(t, &fakeAWS{}, nil)
	got := make(chan []any, 2)
	_ = io.Sockets().On("hello", func(args ...any) { got <- args })
	m := &wire.Message{Type: wire.ServerSideEmit, Nsp: "/", UID: "ffffffff00000001", ID: "0123456789abcdef"}
	first := sqsMessage(t, "sqs-1", m, &wire.ServerSideEmitData{Packet: []any{"hello", "once"}})
	second := first
	second.MessageId = aws.String("sqs-2")
	b.handleSQSMessage(&first)
	b.handleSQSMessage(&second)
	if args := <-got; args[0] != "once" {
		t.Fatalf("args %v", args)
	}
	select {
	case args := <-got:
		t.Fatalf("handled twice: %v", args)
	default:
	}
	if s := b.Stats(); s.Duplicates != 1 {
		t.Fatalf("stats %+v", s)
	}
}
