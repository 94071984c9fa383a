package sqsadapter

// fetchSockets across languages, for TestMixedCluster (mixed_test.go): each side reads a socket
// of the other as its users read a socket of their own.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/nodepeer"
)

// testFetchFromGo: a Go server fetches a socket of the Node server and reads it as a Go user
// reads a socket of its own: canonical header keys with []string values, query values as
// []string, RFC 3339 time, numbers as int64, dates as time.Time; then it emits to the socket
// with an acknowledgement.
func (m *mixed) testFetchFromGo(t *testing.T) {
	w := handshakeWindow{from: time.Now()}
	nc := connectNodeClient(t, m.peer, "/", map[string]any{
		"query": map[string]any{"q": "1"},
		"auth":  map[string]any{"token": "abc", "n": 2, "list": []any{1, "x"}},
	})
	w.to = time.Now()
	peerCall(t, m.peer, "setData", map[string]any{"name": nc.name, "data": socketData()})
	nc.join(t, "fetch-room")
	nc.ackWith(t, "q", map[string]any{"ok": true, "bin": []byte{7}})

	got := fetchSockets(t, m.gos[0].io.In(socket.Room(nc.id)))
	if len(got) != 1 || string(got[0].Id()) != nc.id {
		t.Fatalf("fetched %d sockets, want %s", len(got), nc.id)
	}
	r := got[0]
	if rooms := roomsToStrings(r.Rooms().Keys()); !sameElements(stringsToAny(rooms), []any{nc.id, "fetch-room"}) {
		t.Errorf("rooms %v", rooms)
	}
	wantData := map[string]any{"n": int64(1), "f": 1.5, "s": "str", "bin": []byte{0xde, 0xad}, "when": jsDate,
		"nested": map[string]any{"list": []any{int64(1), "x", nil}, "ok": true}}
	if !reflect.DeepEqual(r.Data(), wantData) {
		t.Errorf("data %#v,\nwant %#v", r.Data(), wantData)
	}

	h := r.Handshake()
	for k, v := range h.Headers {
		if _, ok := v.([]string); !ok || k != http.CanonicalHeaderKey(k) {
			t.Errorf("header %q: %#v, want a canonical key with []string", k, v)
		}
	}
	if host := h.Headers["Host"]; !reflect.DeepEqual(host, []string{fmt.Sprintf("127.0.0.1:%d", m.peer.Port())}) {
		t.Errorf("Host header %#v", host)
	}
	if up := h.Headers["Upgrade"]; !reflect.DeepEqual(up, []string{"websocket"}) {
		t.Errorf("Upgrade header %#v", up)
	}
	for k, want := range map[string]string{"q": "1", "EIO": "4", "transport": "websocket"} {
		if v := h.Query[k]; !reflect.DeepEqual(v, []string{want}) {
			t.Errorf("query %s: %#v, want [%s]", k, v, want)
		}
	}
	if want := (map[string]any{"token": "abc", "n": int64(2), "list": []any{int64(1), "x"}}); !reflect.DeepEqual(h.Auth, want) {
		t.Errorf("auth %#v, want %#v", h.Auth, want)
	}
	if h.Address != "127.0.0.1" {
		t.Errorf("address %q, want a bare IP", h.Address)
	}
	if ts, err := time.Parse(time.RFC3339, h.Time); err != nil || !w.holds(ts, time.Second) {
		t.Errorf("time %q (%v), want RFC 3339 within %v..%v", h.Time, err, w.from, w.to)
	}
	if !w.holds(time.UnixMilli(h.Issued), time.Millisecond) {
		t.Errorf("issued %d, want ms within %v..%v", h.Issued, w.from, w.to)
	}
	if !strings.HasPrefix(h.Url, "/socket.io/?") || !strings.Contains(h.Url, "q=1") || h.Secure || h.Xdomain {
		t.Errorf("url %q secure %v xdomain %v", h.Url, h.Secure, h.Xdomain)
	}

	// emitWithAck on the remote socket: the Node client answers a Go server.
	ch := make(chan ackResult, 1)
	r.Timeout(3*time.Second).EmitWithAck(evt(t, "q"), "from Go", []byte{1})(ackInto(ch))
	res := awaitAck(t, ch)
	if want := []any{map[string]any{"ok": true, "bin": []byte{7}}}; res.err != nil || !reflect.DeepEqual(plainSlice(res.responses), want) {
		t.Fatalf("emitWithAck: %#v, err %v; want %#v", res.responses, res.err, want)
	}
	if ev, args := nc.next(t); ev != "q" || !reflect.DeepEqual(args, []any{"from Go", []byte{1}}) {
		t.Fatalf("%s received %s %#v", nc, ev, args)
	}
}

// testFetchFromNode: the Node server fetches a socket of a Go server and reads it as a Node
// user reads a socket of its own: lower-case headers with string values, query values as
// strings, the time as a JavaScript date string, a bare IP, issued in ms, Buffers and Dates in
// data; then it emits to the socket with an acknowledgement. The client's Cookie and
// Authorization headers and its auth token stay on the Go server.
func (m *mixed) testFetchFromNode(t *testing.T) {
	w := handshakeWindow{from: time.Now()}
	c, s := connect(t, m.gos[0], "/", map[string]any{"token": "abc", "n": 2, "list": []any{1, "x"}},
		withHeaders(http.Header{"Cookie": {"session=s3cr3t"}, "Authorization": {"Bearer s3cr3t"}, "X-Client": {"visible"}}, nil))
	w.to = time.Now()
	data := socketData()
	data["user"] = struct {
		Name string `json:"name"`
		Age  int    `json:"age"`
	}{"bob", 3}
	s.SetData(data)
	s.Join("fetch-room")
	replyWith(c, evt(t, "q"), map[string]any{"ok": true, "bin": []byte{7}})
	c.record(evt(t, "q"))
	_, bare := connect(t, m.gos[1], "/", nil) // no auth, no data

	type fetched struct {
		ID        string
		Handshake map[string]any
		Rooms     []string
		Data      json.RawMessage
		Local     bool
	}
	var list []fetched
	peerCallInto(t, m.peer, "fetchSockets", map[string]any{"rooms": []string{string(s.Id()), string(bare.Id())}, "timeoutMs": 3000}, &list)
	found := map[string]fetched{}
	for _, f := range list {
		found[f.ID] = f
	}
	r, ok := found[string(s.Id())]
	b, okBare := found[string(bare.Id())]
	if len(list) != 2 || !ok || !okBare || r.Local || b.Local {
		t.Fatalf("fetchSockets: %+v, want the remote sockets %s and %s", list, s.Id(), bare.Id())
	}
	// What Node gives a socket without them, so that socket.data.x and handshake.auth.x work.
	if string(b.Data) != "{}" || fmt.Sprint(b.Handshake["auth"]) != "map[]" {
		t.Errorf("socket without data or auth: data %s, auth %#v; want {} for both", b.Data, b.Handshake["auth"])
	}
	if !sameElements(stringsToAny(r.Rooms), []any{string(s.Id()), "fetch-room"}) {
		t.Errorf("rooms %v", r.Rooms)
	}
	got, err := nodepeer.Decode(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	// A Go struct reaches Node as an object keyed by its JSON field names.
	wantData := map[string]any{"n": 1.0, "f": 1.5, "s": "str", "bin": []byte{0xde, 0xad}, "when": jsDate,
		"nested": map[string]any{"list": []any{1.0, "x", nil}, "ok": true}, "user": map[string]any{"name": "bob", "age": 3.0}}
	if !reflect.DeepEqual(got, wantData) {
		t.Errorf("data %s,\nwant (Buffer, Date) %#v", r.Data, wantData)
	}

	h := r.Handshake
	headers, _ := h["headers"].(map[string]any)
	for k, v := range headers {
		if _, ok := v.(string); !ok || k != strings.ToLower(k) {
			t.Errorf("header %q: %#v, want a lower-case key with a string", k, v)
		}
	}
	// (No "host": Go's net/http keeps it out of the request's headers; see README.)
	if headers["upgrade"] != "websocket" || headers["sec-websocket-version"] != "13" || headers["x-client"] != "visible" {
		t.Errorf("headers %#v", headers)
	}
	if _, ok := headers["cookie"]; ok {
		t.Errorf("cookie %#v reached the Node server", headers["cookie"])
	}
	if _, ok := headers["authorization"]; ok {
		t.Errorf("authorization %#v reached the Node server", headers["authorization"])
	}
	query, _ := h["query"].(map[string]any)
	if query["EIO"] != "4" || query["transport"] != "websocket" {
		t.Errorf("query %#v, want string values", query)
	}
	if want := (map[string]any{"n": 2.0, "list": []any{1.0, "x"}}); !reflect.DeepEqual(h["auth"], want) { // HandshakeAuthKeys
		t.Errorf("auth %#v, want %#v", h["auth"], want)
	}
	if addr, _ := h["address"].(string); net.ParseIP(addr) == nil {
		t.Errorf("address %#v, want a bare IP", h["address"])
	}
	ts, _ := h["time"].(string)
	if parsed, err := time.Parse("Mon Jan 02 2006 15:04:05 GMT-0700", strings.SplitN(ts, " (", 2)[0]); !jsDateString.MatchString(ts) ||
		err != nil || !w.holds(parsed, time.Second) {
		t.Errorf("time %q, want a JavaScript date string within %v..%v", ts, w.from, w.to)
	}
	if issued, _ := h["issued"].(float64); !w.holds(time.UnixMilli(int64(issued)), time.Millisecond) {
		t.Errorf("issued %#v, want ms within %v..%v", h["issued"], w.from, w.to)
	}
	if url, _ := h["url"].(string); !strings.HasPrefix(url, "/socket.io/?") || h["secure"] != false || h["xdomain"] != false {
		t.Errorf("url %#v secure %#v xdomain %#v", h["url"], h["secure"], h["xdomain"])
	}

	// emitWithAck on the remote socket: the Go client answers the Node server.
	var res struct {
		Err      *string
		Response json.RawMessage
		Local    bool
	}
	peerCallInto(t, m.peer, "remoteEmitWithAck", map[string]any{
		"socketId": string(s.Id()), "event": evt(t, "q"), "args": []any{"from Node", []byte{1}}, "timeoutMs": 3000,
	}, &res)
	response, err := nodepeer.Decode(res.Response)
	if err != nil {
		t.Fatal(err)
	}
	if want := (map[string]any{"ok": true, "bin": []byte{7}}); res.Err != nil || res.Local || !reflect.DeepEqual(response, want) {
		t.Fatalf("remoteEmitWithAck: err %v local %v response %s", res.Err, res.Local, res.Response)
	}
	e := c.next(t)
	if args := plainSlice(e.args); len(args) != 3 || !reflect.DeepEqual(args[:2], []any{"from Node", []byte{1}}) {
		t.Fatalf("Go client received %s %#v", e.name, e.args)
	}
}
