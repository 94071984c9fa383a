package sqsadapter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Codec microbenchmarks: what one cluster message costs in CPU and allocations on each side of
// the wire, through the same functions the adapter uses (codec.go and internal/wire). `make
// bench` runs them with `go test -run '^$' -bench . -benchmem` and includes the numbers.
//
// The broadcast is the one the bench program sends (an event with one object argument with a
// 200-byte pad) to a room, except one; the fetchSockets response carries 10 sockets with
// browser-like handshakes.

func benchBroadcast() (*parser.Packet, *socket.BroadcastOptions) {
	packet := &parser.Packet{Type: parser.EVENT, Data: []any{"bench", map[string]any{
		"step": 2, "seq": 12345, "ts": 1763830000123.456, "pad": strings.Repeat("x", 200),
	}}}
	opts := &socket.BroadcastOptions{
		Rooms:  types.NewSet[socket.Room]("room-1"),
		Except: types.NewSet[socket.Room]("sid-except"),
		Flags:  &socket.BroadcastFlags{},
	}
	return packet, opts
}

// encodeBroadcast is the adapter's publish path for a broadcast, up to the SNS request: wire
// payload, msgpack, message, size check and attributes.
func encodeBroadcast(packet *parser.Packet, opts *socket.BroadcastOptions) (*wire.Message, error) {
	p, err := toWirePacket(packet)
	if err != nil {
		return nil, err
	}
	data, err := wire.Encode(&wire.BroadcastData{Packet: p, Opts: toWireOptions(opts)})
	if err != nil {
		return nil, err
	}
	m := &wire.Message{Type: wire.Broadcast, Nsp: "/", UID: "0123456789abcdef", Data: data}
	if m.Size() > wire.MaxMessageSize {
		return nil, fmt.Errorf("too large")
	}
	_ = m.SNSAttributes()
	_ = m.Body()
	return m, nil
}

// asSQS is a published message as SQS delivers it with raw delivery.
func asSQS(m *wire.Message) (*string, map[string]sqstypes.MessageAttributeValue) {
	str := func(v string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: ptr("String"), StringValue: ptr(v)}
	}
	attrs := map[string]sqstypes.MessageAttributeValue{wire.AttrNsp: str(m.Nsp), wire.AttrUID: str(m.UID)}
	if m.RequesterUID != "" {
		attrs[wire.AttrRequesterUID] = str(m.RequesterUID)
	}
	if m.Data != nil {
		attrs[wire.AttrData] = sqstypes.MessageAttributeValue{DataType: ptr("Binary"), BinaryValue: m.Data}
	}
	return ptr(m.Body()), attrs
}

func BenchmarkEncodeBroadcast(b *testing.B) {
	packet, opts := benchBroadcast()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeBroadcast(packet, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBroadcast(b *testing.B) {
	m, err := encodeBroadcast(benchBroadcast())
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, m, func(data any) {
		d := data.(*wire.BroadcastData)
		_ = fromWirePacket(d.Packet)
		_ = fromWireOptions(d.Opts)
	})
}

// benchDecode runs the adapter's receive path on m as SQS delivers it: attributes, msgpack,
// then use turns the payload into the Go server's types.
func benchDecode(b *testing.B, m *wire.Message, use func(data any)) {
	body, attrs := asSQS(m)
	b.SetBytes(int64(len(m.Data)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := wire.FromSQS(body, attrs)
		if err != nil {
			b.Fatal(err)
		}
		data := wire.NewData(got.Type)
		if err := wire.Decode(got.Data, data); err != nil {
			b.Fatal(err)
		}
		use(data)
	}
}

func benchSockets(n int) []socket.SocketDetails {
	out := make([]socket.SocketDetails, n)
	for i := range out {
		out[i] = &remoteSocket{
			id: socket.SocketId(fmt.Sprintf("sock-%016d", i)),
			handshake: &socket.Handshake{
				Headers: types.IncomingHttpHeaders{
					"Host":            []string{"example.com"},
					"User-Agent":      []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"},
					"Accept":          []string{"*/*"},
					"Accept-Language": []string{"en-US,en;q=0.9"},
					"Cookie":          []string{"session=0123456789abcdef0123456789abcdef"},
					"Origin":          []string{"https://example.com"},
				},
				Time:    time.Date(2025, 11, 22, 16, 0, 0, 0, time.UTC).Format(time.RFC3339),
				Address: "203.0.113.7:51234",
				Secure:  true,
				Issued:  1763827200000,
				Url:     "/socket.io/?EIO=4&transport=websocket",
				Query:   types.ParsedUrlQuery{"EIO": []string{"4"}, "transport": []string{"websocket"}},
				Auth:    map[string]any{"token": "abc"},
			},
			rooms: types.NewSet[socket.Room](socket.Room(fmt.Sprintf("sock-%016d", i)), "room-1"),
			data:  map[string]any{"user": fmt.Sprintf("user-%d", i), "since": int64(1763827200000)},
		}
	}
	return out
}

// encodeFetchSocketsResponse is the adapter's answer to FETCH_SOCKETS, up to the SNS request.
func encodeFetchSocketsResponse(local []socket.SocketDetails) (*wire.Message, error) {
	sockets := make([]wire.Socket, len(local))
	f := newHandshakeFilter(&Options{})
	for i, s := range local {
		sockets[i] = toWireSocket(s, f)
	}
	data, err := wire.Encode(&wire.FetchSocketsResponseData{RequestID: "0123456789abcdef", Sockets: sockets})
	if err != nil {
		return nil, err
	}
	m := &wire.Message{Type: wire.FetchSocketsResponse, Nsp: "/", UID: "0123456789abcdef", RequesterUID: "fedcba9876543210", Data: data}
	if m.Size() > wire.MaxMessageSize {
		return nil, fmt.Errorf("too large")
	}
	_ = m.SNSAttributes()
	return m, nil
}

func BenchmarkEncodeFetchSocketsResponse10(b *testing.B) {
	local := benchSockets(10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeFetchSocketsResponse(local); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFetchSocketsResponse10(b *testing.B) {
	m, err := encodeFetchSocketsResponse(benchSockets(10))
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, m, func(data any) {
		for _, s := range data.(*wire.FetchSocketsResponseData).Sockets {
			_ = socket.SocketDetails(fromWireSocket(s))
		}
	})
}

// What io.Emit costs its caller with the adapter (AWS faked in memory: the publisher goroutine
// sends to a fake SNS) and with the Go server's default in-memory adapter, no clients connected:
// the difference is what the adapter adds to every broadcast on the emitting goroutine.

func BenchmarkEmitInMemoryAdapter(b *testing.B) {
	server := socket.NewServer(nil, socket.DefaultServerOptions())
	defer server.Close(nil)
	benchEmit(b, server)
}

func BenchmarkEmitWithAdapter(b *testing.B) {
	f := &fakeAWS{publishBatch: func(in *sns.PublishBatchInput) *sns.PublishBatchOutput {
		out := &sns.PublishBatchOutput{}
		for _, e := range in.PublishBatchRequestEntries {
			out.Successful = append(out.Successful, snstypes.PublishBatchResultEntry{Id: e.Id})
		}
		return out
	}}
	builder := NewAdapterBuilder(f, f, &Options{
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		HeartbeatInterval: time.Hour, HeartbeatTimeout: 2 * time.Hour,
	})
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(builder)
	server := socket.NewServer(nil, opts)
	defer server.Close(nil)
	if err := builder.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	benchEmit(b, server)
	if st := builder.Stats(); st.PublishDropped > 0 {
		b.Logf("%d of %d broadcasts dropped: the fake SNS did not keep up", st.PublishDropped, b.N)
	}
}

func benchEmit(b *testing.B, server *socket.Server) {
	packet, _ := benchBroadcast()
	arg := packet.Data.([]any)[1]
	b.ReportAllocs()
	for b.Loop() {
		server.Emit("bench", arg)
	}
}
