package sqsadapter

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// asNode encodes a payload the way the adapter publishes it and decodes it generically, which is
// what Node's @msgpack/msgpack sees: the keys present and their values.
func asNode(t *testing.T, payload any) map[string]any {
	t.Helper()
	b, err := wire.Encode(payload)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := wire.Decode(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEncodeFlagsLikeNode(t *testing.T) {
	timeout := 1500 * time.Millisecond
	opts := &socket.BroadcastOptions{
		Rooms:  types.NewSet[socket.Room]("r1"),
		Except: types.NewSet[socket.Room](),
		Flags:  &socket.BroadcastFlags{Timeout: &timeout},
	}
	opts.Flags.Volatile = true
	got := asNode(t, &wire.BroadcastData{Packet: wire.Packet{Type: 2, Data: []any{"ev"}}, Opts: toWireOptions(opts)})
	wantOpts := map[string]any{
		"rooms": []any{"r1"}, "except": []any{},
		// Only the flags that are set, and the timeout in milliseconds.
		"flags": map[string]any{"volatile": true, "timeout": int64(1500)},
	}
	if !reflect.DeepEqual(got["opts"], wantOpts) {
		t.Fatalf("opts %#v\nwant %#v", got["opts"], wantOpts)
	}
	if _, ok := got["requestId"]; ok {
		t.Fatal("requestId sent without acknowledgements")
	}
	// No options at all still sends empty lists, as Node does.
	got = asNode(t, &wire.SocketsJoinLeaveData{Opts: toWireOptions(nil), Rooms: []string{"a"}})
	if !reflect.DeepEqual(got["opts"], map[string]any{"rooms": []any{}, "except": []any{}, "flags": map[string]any{}}) {
		t.Fatalf("opts %#v", got["opts"])
	}
}

func TestDecodeFlagsFromNode(t *testing.T) {
	compress := false
	ms := int64(2500)
	o := fromWireOptions(wire.Options{Rooms: []string{"a"}, Except: []string{"b"},
		Flags: wire.Flags{Volatile: true, Compress: &compress, Timeout: &ms, ExpectSingleResponse: true}})
	if !o.Rooms.Has("a") || !o.Except.Has("b") || !o.Flags.Volatile || o.Flags.Compress == nil || *o.Flags.Compress ||
		*o.Flags.Timeout != 2500*time.Millisecond || !o.Flags.ExpectSingleResponse || o.Flags.Local {
		t.Fatalf("%+v %+v", o, o.Flags)
	}
}

func TestEncodeZeroCountsAndEmptyListsLikeNode(t *testing.T) {
	got := asNode(t, &wire.BroadcastClientCountData{RequestID: "r", ClientCount: 0})
	if v, ok := got["clientCount"]; !ok || v != int64(0) {
		t.Fatalf("clientCount %#v present=%v: Node computes NaN without it", v, ok)
	}
	got = asNode(t, &wire.FetchSocketsResponseData{RequestID: "r", Sockets: []wire.Socket{}})
	if v, ok := got["sockets"]; !ok || !reflect.DeepEqual(v, []any{}) {
		t.Fatalf("sockets %#v present=%v: Node throws without it", v, ok)
	}
}

func TestAckPacketIsTheFirstArgument(t *testing.T) {
	got := asNode(t, &wire.BroadcastAckData{RequestID: "r", Packet: firstArg([]any{"a", "b"})})
	if got["packet"] != "a" {
		t.Fatalf("packet %#v, want the first argument alone", got["packet"])
	}
	got = asNode(t, &wire.ServerSideEmitResponseData{RequestID: "r", Packet: firstArg(nil)})
	if v, ok := got["packet"]; !ok || v != nil {
		t.Fatalf("packet %#v present=%v, want nil (Node's undefined)", v, ok)
	}
}

func TestEncodeValuesLikeNode(t *testing.T) {
	when := time.Date(2023, 11, 14, 22, 13, 20, 123e6, time.UTC)
	type profile struct {
		Name  string `json:"name"`
		Score int    `json:"score,omitempty"`
	}
	p, err := toWirePacket(&parser.Packet{Type: parser.BINARY_EVENT, Data: []any{
		"ev", []byte{1, 2}, types.NewBytesBuffer([]byte{3}), when, map[string]any{"nested": []any{1.5, true}},
		profile{Name: "bob"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := asNode(t, &wire.BroadcastData{Packet: p, Opts: toWireOptions(nil)})
	packet := got["packet"].(map[string]any)
	if packet["type"] != int64(parser.EVENT) {
		t.Fatalf("type %v: Node sends binary events as plain events", packet["type"])
	}
	data := packet["data"].([]any)
	want := []any{"ev", []byte{1, 2}, []byte{3}, when, map[string]any{"nested": []any{1.5, true}},
		map[string]any{"name": "bob"}}
	for i := range want {
		if tm, ok := want[i].(time.Time); ok {
			if !tm.Equal(data[i].(time.Time)) {
				t.Fatalf("arg %d: %v, want %v", i, data[i], tm)
			}
			continue
		}
		if !reflect.DeepEqual(data[i], want[i]) {
			t.Fatalf("arg %d: %#v (%T), want %#v", i, data[i], data[i], want[i])
		}
	}
}

func TestHandshakeToNodeShape(t *testing.T) {
	h := &socket.Handshake{
		Headers: types.IncomingHttpHeaders{"Sec-Websocket-Version": []string{"13"}, "Accept": []string{"a", "b"}},
		Time:    "2026-11-22T15:55:51Z",
		Address: "127.0.0.1:54321",
		Issued:  1795362951773,
		Url:     "/socket.io/?foo=bar&EIO=4",
		Query:   types.ParsedUrlQuery{"foo": []string{"bar"}, "multi": []string{"1", "2"}},
		Auth:    map[string]any{"token": "t", "bin": types.NewBytesBuffer([]byte{9})},
	}
	w := toWireHandshake(h)
	if !reflect.DeepEqual(w.Headers, map[string]any{"sec-websocket-version": "13", "accept": "a, b"}) {
		t.Fatalf("headers %#v", w.Headers)
	}
	if !reflect.DeepEqual(w.Query, map[string]any{"foo": "bar", "multi": []any{"1", "2"}}) {
		t.Fatalf("query %#v", w.Query)
	}
	if w.Time != "Sun Nov 22 2026 15:55:51 GMT+0000 (Coordinated Universal Time)" {
		t.Fatalf("time %q", w.Time)
	}
	if w.Address != "127.0.0.1" || w.Issued != 1795362951773 {
		t.Fatalf("address %q issued %d", w.Address, w.Issued)
	}
	if !reflect.DeepEqual(w.Auth["bin"], []byte{9}) {
		t.Fatalf("auth %#v", w.Auth)
	}
	// And back, as a Go user reads a remote socket's handshake.
	back := fromWireHandshake(w)
	if back.Headers.Header().Get("Sec-Websocket-Version") != "13" || back.Query.Query().Get("foo") != "bar" {
		t.Fatalf("headers %v query %v", back.Headers, back.Query)
	}
	if back.Time != h.Time {
		t.Fatalf("time %q, want %q", back.Time, h.Time)
	}
}

func TestHandshakeFromNodeVector(t *testing.T) {
	w := wire.Handshake{
		Headers: map[string]any{"host": "127.0.0.1:41759", "upgrade": "websocket"},
		Time:    "Sun Nov 22 2026 15:55:51 GMT+0000 (Coordinated Universal Time)",
		Query:   map[string]any{"foo": "bar", "EIO": "4"},
	}
	h := fromWireHandshake(w)
	if got := h.Headers["Host"]; !reflect.DeepEqual(got, []string{"127.0.0.1:41759"}) {
		t.Fatalf("Host %#v", got)
	}
	if got := h.Query["EIO"]; !reflect.DeepEqual(got, []string{"4"}) {
		t.Fatalf("EIO %#v", got)
	}
	if h.Time != "2026-11-22T15:55:51Z" {
		t.Fatalf("time %q", h.Time)
	}
	// A time Node did not format stays as it came.
	if got := fromWireHandshake(wire.Handshake{Time: "yesterday"}).Time; got != "yesterday" {
		t.Fatalf("time %q", got)
	}
}

func TestToWirePacketRejectsNonListData(t *testing.T) {
	if _, err := toWirePacket(&parser.Packet{Type: parser.EVENT, Data: "x"}); err == nil || !strings.Contains(err.Error(), "want []any") {
		t.Fatalf("err %v", err)
	}
}
