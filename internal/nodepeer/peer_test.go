package nodepeer

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// testConfig is a peer config for a fresh topic with short heartbeats, so a
// killed peer is noticed in about a second.
func testConfig(topic, name string) Config {
	return Config{
		Topic:             topic,
		QueuePrefix:       "nodepeer-test",
		HeartbeatInterval: 200 * time.Millisecond,
		HeartbeatTimeout:  1200 * time.Millisecond,
		Name:              name,
	}
}

// serverCountWait bounds a wait until the peers count each other (or no longer count a killed
// one): a few heartbeats, on a loaded machine.
const serverCountWait = 30 * time.Second

// startPair starts peers A and B on a fresh topic; edit adjusts B's config.
func startPair(t *testing.T, editB func(*Config)) (context.Context, *Peer, *Peer) {
	testsupport.RequireAWS(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	topic := testsupport.UniqueName("nodepeer")
	a := Start(t, testConfig(topic, "peer-a"))
	cfg := testConfig(topic, "peer-b")
	if editB != nil {
		editB(&cfg)
	}
	return ctx, a, Start(t, cfg)
}

// TestTwoPeers drives two Node peers through the emulator: a broadcast with
// acks, fetchSockets with Buffer and Date data (so $bin/$date cross JSON,
// msgpack and JSON again), serverSideEmit with an ack, and a crash.
func TestTwoPeers(t *testing.T) {
	ctx, a, b := startPair(t, nil)
	if a.Port() == 0 || a.UID("/") == "" || a.Ready().QueueURL == "" {
		t.Fatalf("incomplete ready line: %+v", a.Ready())
	}

	if res, err := a.Call(ctx, "ping", nil); err != nil || string(res) != `"pong"` {
		t.Fatalf("ping: %s, %v", res, err)
	}
	if _, err := a.Call(ctx, "no-such-command", nil); err == nil {
		t.Fatal("an unknown command succeeded")
	}

	var conn struct{ ID string }
	if err := b.CallInto(ctx, "connectClient", map[string]any{
		"name": "c1", "query": map[string]any{"q": "1"}, "auth": map[string]any{"token": "t"},
	}, &conn); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2023, 11, 14, 22, 13, 20, 123_000_000, time.UTC)
	mustCall(ctx, t, b, "setData", map[string]any{"name": "c1", "data": map[string]any{"bin": []byte{0xde, 0xad}, "when": when}})
	mustCall(ctx, t, b, "socketJoin", map[string]any{"name": "c1", "rooms": []string{"r1"}})
	mustCall(ctx, t, b, "clientOn", map[string]any{"name": "c1", "ev": "hello", "ack": map[string]any{"from": "c1", "bin": []byte{1}}})
	mustCall(ctx, t, b, "serverOn", map[string]any{"ev": "ping", "ack": "pong"})

	testsupport.WaitServerCount(t, serverCountWait, "/", 2, a.ServerCounter("/"), b.ServerCounter("/"))

	// fetchSockets from A sees B's socket with its data decoded back.
	var sockets []struct {
		ID    string
		Rooms []string
		Data  json.RawMessage
		Local bool
	}
	if err := a.CallInto(ctx, "fetchSockets", map[string]any{"rooms": []string{"r1"}, "timeoutMs": 3000}, &sockets); err != nil {
		t.Fatal(err)
	}
	if len(sockets) != 1 || sockets[0].ID != conn.ID || sockets[0].Local {
		t.Fatalf("fetchSockets: %+v (want remote %s)", sockets, conn.ID)
	}
	data, err := Decode(sockets[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := data.(map[string]any)
	if b, _ := m["bin"].([]byte); !bytes.Equal(b, []byte{0xde, 0xad}) {
		t.Errorf("data.bin = %#v", m["bin"])
	}
	if w, _ := m["when"].(time.Time); !w.Equal(when) {
		t.Errorf("data.when = %#v", m["when"])
	}

	// A broadcast with ack from A reaches B's client, whose ack comes back.
	var acks struct {
		Err       *string
		Responses []json.RawMessage
	}
	if err := a.CallInto(ctx, "emit", map[string]any{
		"event": "hello", "args": []any{"x", []byte{5}}, "withAck": true, "timeoutMs": 3000,
	}, &acks); err != nil {
		t.Fatal(err)
	}
	// Go marshals map keys sorted, so the ack value went out as bin, from.
	if acks.Err != nil || len(acks.Responses) != 1 || string(acks.Responses[0]) != `{"bin":{"$bin":"01"},"from":"c1"}` {
		t.Fatalf("emit with ack: err=%v responses=%s", acks.Err, acks.Responses)
	}
	ev, err := b.WaitEvent(ctx, func(e Event) bool { return e.Name == "client" && e.Str("ev") == "hello" })
	if err != nil {
		t.Fatal(err)
	}
	if args, _ := ev.Value("args").([]any); len(args) != 2 || !bytes.Equal(args[1].([]byte), []byte{5}) {
		t.Fatalf("client got %s", ev.Raw)
	}

	// serverSideEmit with ack.
	var sse struct {
		Err       *string
		Responses []string
	}
	if err := a.CallInto(ctx, "serverSideEmit", map[string]any{
		"event": "ping", "args": []any{1}, "withAck": true, "timeoutMs": 6000,
	}, &sse); err != nil {
		t.Fatal(err)
	}
	if sse.Err != nil || len(sse.Responses) != 1 || sse.Responses[0] != "pong" {
		t.Fatalf("serverSideEmit: %+v", sse)
	}
	if _, err := b.WaitEvent(ctx, func(e Event) bool { return e.Name == "serverSideEmit" && e.Str("ev") == "ping" }); err != nil {
		t.Fatal(err)
	}

	// A crash: A notices through the heartbeat timeout.
	b.Kill()
	if !b.Exited() {
		t.Fatal("killed peer still running")
	}
	if _, err := b.Call(ctx, "ping", nil); err == nil {
		t.Fatal("a killed peer answered")
	}
	testsupport.WaitServerCount(t, serverCountWait, "/", 1, a.ServerCounter("/"))

	start := time.Now()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("close took %v", time.Since(start))
}

func mustCall(ctx context.Context, t *testing.T, p *Peer, cmd string, args map[string]any) json.RawMessage {
	t.Helper()
	res, err := p.Call(ctx, cmd, args)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPeerCommands exercises the rest of the protocol across two peers, as
// the mixed-cluster tests use it.
func TestPeerCommands(t *testing.T) {
	ctx, a, b := startPair(t, func(c *Config) { c.Namespaces = []string{"/custom"} })
	if b.UID("/custom") == "" {
		t.Fatalf("PEER_NAMESPACES: uids %v", b.Ready().UIDs)
	}
	var of struct{ NSP, UID string }
	if err := a.CallInto(ctx, "of", map[string]any{"nsp": "/custom"}, &of); err != nil || of.NSP != "/custom" || of.UID == "" {
		t.Fatalf("of: %+v %v", of, err)
	}
	if _, err := a.Call(ctx, "serverCount", map[string]any{"nsp": "/nope"}); err == nil {
		t.Fatal("a command on an unknown namespace succeeded")
	}

	var c1, c2 struct{ ID string }
	if err := b.CallInto(ctx, "connectClient", map[string]any{"name": "c1"}, &c1); err != nil {
		t.Fatal(err)
	}
	if err := b.CallInto(ctx, "connectClient", map[string]any{"name": "c2", "nsp": "/custom", "sameConnectionAs": "c1"}, &c2); err != nil {
		t.Fatal(err)
	}
	mustCall(ctx, t, b, "clientDisconnectReport", map[string]any{"name": "c1"})
	mustCall(ctx, t, b, "clientOn", map[string]any{"name": "c1", "ev": "news"})
	mustCall(ctx, t, b, "clientOn", map[string]any{"name": "c1", "ev": "q", "ackArgs": []any{"a", 2}})
	mustCall(ctx, t, b, "clientOn", map[string]any{"name": "c2", "ev": "cnews"})
	mustCall(ctx, t, b, "socketJoin", map[string]any{"name": "c1", "rooms": "r1"})
	mustCall(ctx, t, b, "serverOn", map[string]any{"ev": "silent"}) // never acks

	for _, nsp := range []string{"/", "/custom"} {
		testsupport.WaitServerCount(t, serverCountWait, nsp, 2, a.ServerCounter(nsp), b.ServerCounter(nsp))
	}

	// Room-targeted broadcast, and a namespace broadcast on /custom.
	mustCall(ctx, t, a, "emit", map[string]any{"rooms": []string{"r1"}, "event": "news", "args": []any{"to-r1"}})
	ev, err := b.WaitEvent(ctx, func(e Event) bool { return e.Name == "client" && e.Str("ev") == "news" })
	if err != nil {
		t.Fatal(err)
	}
	if args := ev.Value("args").([]any); len(args) != 1 || args[0] != "to-r1" {
		t.Fatalf("news: %s", ev.Raw)
	}
	// Only once "news" arrived: a volatile packet is dropped when the connection it shares with
	// c1 is still busy writing, as Socket.IO means it to be.
	mustCall(ctx, t, a, "emit", map[string]any{"nsp": "/custom", "volatile": true, "event": "cnews", "args": []any{time.UnixMilli(1700000000123).UTC()}})
	ev, err = b.WaitEvent(ctx, func(e Event) bool { return e.Name == "client" && e.Str("name") == "c2" })
	if err != nil {
		t.Fatal(err)
	}
	// The Date crossed the cluster as a msgpack timestamp; Socket.IO's JSON
	// packet encoding then hands the client its ISO string.
	if when, _ := ev.Value("args").([]any)[0].(string); when != "2023-11-14T22:13:20.123Z" {
		t.Fatalf("cnews: %s", ev.Raw)
	}

	// Remote room management, seen from the socket's own server.
	rooms := func() []string {
		var r []string
		if err := b.CallInto(ctx, "socketRooms", map[string]any{"name": "c1"}, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	mustCall(ctx, t, a, "socketsJoin", map[string]any{"rooms": "r1", "target": []string{"r2", "r3"}})
	for !has(rooms(), "r3") {
		time.Sleep(20 * time.Millisecond)
	}
	mustCall(ctx, t, a, "socketsLeave", map[string]any{"except": "r9", "target": "r2"})
	for has(rooms(), "r2") {
		time.Sleep(20 * time.Millisecond)
	}
	mustCall(ctx, t, b, "socketLeave", map[string]any{"name": "c1", "rooms": []string{"r3"}})
	if got := rooms(); len(got) != 2 || !has(got, c1.ID) || !has(got, "r1") {
		t.Fatalf("rooms after socketLeave: %v", got)
	}

	// One remote socket, acked with two arguments: only the first crosses.
	var remote struct {
		Err      *string
		Response json.RawMessage
		Local    bool
	}
	if err := a.CallInto(ctx, "remoteEmitWithAck", map[string]any{"socketId": c1.ID, "event": "q", "timeoutMs": 3000}, &remote); err != nil {
		t.Fatal(err)
	}
	if remote.Err != nil || string(remote.Response) != `"a"` || remote.Local {
		t.Fatalf("remoteEmitWithAck: err=%v response=%s local=%v", remote.Err, remote.Response, remote.Local)
	}

	// fetchSockets on /custom, then a serverSideEmit nobody acks.
	var found []struct{ ID string }
	if err := a.CallInto(ctx, "fetchSockets", map[string]any{"nsp": "/custom"}, &found); err != nil || len(found) != 1 || found[0].ID != c2.ID {
		t.Fatalf("fetchSockets /custom: %+v %v", found, err)
	}
	var sse struct {
		Err      string
		TimedOut bool
	}
	if err := a.CallInto(ctx, "serverSideEmit", map[string]any{"event": "silent", "withAck": true, "timeoutMs": 300}, &sse); err != nil || !sse.TimedOut {
		t.Fatalf("serverSideEmit without ack: %+v %v", sse, err)
	}

	// disconnectSockets reaches the client on the other server.
	mustCall(ctx, t, a, "disconnectSockets", map[string]any{"rooms": "r1", "close": false})
	ev, err = b.WaitEvent(ctx, func(e Event) bool { return e.Name == "clientDisconnect" })
	if err != nil {
		t.Fatal(err)
	}
	if ev.Str("name") != "c1" || ev.Str("reason") != "io server disconnect" {
		t.Fatalf("disconnect: %s", ev.Raw)
	}
}
