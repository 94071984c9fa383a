package sqsadapter

// The harness of the mixed-cluster tests (mixed_test.go): a cluster of Go and Node servers, a
// client of either language, a sender of either language, and the waits and checks they share.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/nodepeer"
	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// mixed is a cluster of two Go servers and one Node server, with "/" and "/custom" on each.
type mixed struct {
	gos  []*node // gos[0] is "Go A", gos[1] "Go B"
	peer *nodepeer.Peer
}

// peerConfig gives a Node peer the topic and heartbeat timings of opts.
func peerConfig(opts *Options, name string, nsps ...string) nodepeer.Config {
	return nodepeer.Config{
		Topic:             opts.TopicName,
		QueuePrefix:       opts.QueuePrefix,
		HeartbeatInterval: opts.HeartbeatInterval,
		HeartbeatTimeout:  opts.HeartbeatTimeout,
		Namespaces:        nsps,
		Name:              name,
	}
}

func startMixed(t *testing.T) *mixed {
	t.Helper()
	opts := testOptions(t)
	// Go servers keep a handshake's secrets (Cookie, Authorization, auth but these keys) out of
	// the fetchSockets answers Node servers read.
	opts.HandshakeAuthKeys = []string{"n", "list"}
	m := &mixed{}
	for range 2 {
		o := *opts
		n := startNode(t, &o)
		n.io.Of("/custom", nil)
		m.gos = append(m.gos, n)
	}
	cfg := peerConfig(opts, "node-peer", "/custom")
	// Another zone than the Go side's: handshake times and dates must not depend on either.
	cfg.Env = []string{"TZ=Asia/Kolkata"}
	m.peer = nodepeer.Start(t, cfg)
	for _, nsp := range []string{"/", "/custom"} {
		waitCounts(t, m.gos, []*nodepeer.Peer{m.peer}, nsp, 3)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, n := range m.gos {
				t.Logf("Go node %d: %+v", i, n.builder.Stats())
			}
		}
	})
	return m
}

// waitCounts waits until every Go node and every peer counts want servers in nsp.
func waitCounts(t *testing.T, gos []*node, peers []*nodepeer.Peer, nsp string, want int) {
	t.Helper()
	cs := serverCounters(gos, nsp)
	for _, p := range peers {
		cs = append(cs, p.ServerCounter(nsp))
	}
	testsupport.WaitServerCount(t, 10*time.Second, nsp, want, cs...)
}

func peerCall(t testing.TB, p *nodepeer.Peer, cmd string, args map[string]any) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := p.Call(ctx, cmd, args)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func peerCallInto(t testing.TB, p *nodepeer.Peer, cmd string, args map[string]any, out any) {
	t.Helper()
	if err := json.Unmarshal(peerCall(t, p, cmd, args), out); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
}

func waitPeerEvent(t testing.TB, p *nodepeer.Peer, match func(nodepeer.Event) bool, what string) nodepeer.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := p.WaitEvent(ctx, match)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return ev
}

// evt names an event for the running subtest only: a broadcast of an earlier subtest that is
// still on its way to some server then reaches no listener of a later one. Clients and senders
// apply it to every event name they are given, and next strips it again.
func evt(t testing.TB, ev string) string { return ev + " @" + t.Name() }

func unevt(t testing.TB, ev string) string { return strings.TrimSuffix(ev, " @"+t.Name()) }

// A client of either language, as the tests drive it.
type anyClient interface {
	String() string
	listen(t *testing.T, evs ...string)         // record these events
	next(t *testing.T) (ev string, args []any)  // the next recorded event, args made plain
	none(t *testing.T)                          // nothing recorded is left
	ackWith(t *testing.T, ev string, value any) // acknowledge ev with value
	silent(t *testing.T, ev string)             // receive ev, never acknowledge
	join(t *testing.T, rooms ...string)         // the server-side socket joins, locally
	inRoom(t *testing.T, room string) bool      // the server-side socket is in room
	disconnects(t *testing.T)                   // record the disconnect, as event "disconnect"
}

// goClient is a Go client of a Go server, with its server-side socket.
type goClient struct {
	*testClient
	s      *socket.Socket
	label  string
	reason atomic.Value // why it was disconnected, for failure messages
}

func newGoClient(c *testClient, s *socket.Socket, label string) *goClient {
	g := &goClient{testClient: c, s: s, label: label}
	_ = c.On("disconnect", func(args ...any) { g.reason.Store(fmt.Sprint(args...)) })
	return g
}

func (c *goClient) String() string { return c.label }

func (c *goClient) listen(t *testing.T, evs ...string) {
	for _, ev := range evs {
		c.record(evt(t, ev))
	}
}

func (c *goClient) next(t *testing.T) (string, []any) {
	t.Helper()
	select {
	case e := <-c.events:
		return unevt(t, e.name), plainSlice(e.args)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s (socket %q, connected %v, disconnected by %v) received no event in 10s", c, c.Id(), c.Connected(), c.reason.Load())
	}
	return "", nil
}

func (c *goClient) none(t *testing.T) { t.Helper(); c.testClient.none(t) }

func (c *goClient) ackWith(t *testing.T, ev string, value any) {
	replyWith(c.testClient, evt(t, ev), value)
}

func (c *goClient) silent(t *testing.T, ev string) {
	_ = c.On(types.EventName(evt(t, ev)), func(...any) {})
}

func (c *goClient) join(_ *testing.T, rooms ...string) { c.s.Join(stringsToRooms(rooms)...) }

func (c *goClient) inRoom(_ *testing.T, room string) bool { return hasRoom(c.s, room) }

// disconnects records the first disconnect only: the Go client (v3.0.1) was seen reporting
// one server disconnect twice.
func (c *goClient) disconnects(*testing.T) {
	var once sync.Once
	_ = c.On("disconnect", func(args ...any) {
		once.Do(func() { c.events <- clientEvent{"disconnect", args} })
	})
}

// nodeClient is a socket.io-client inside a Node peer, connected to that peer's server.
type nodeClient struct {
	p     *nodepeer.Peer
	name  string
	id    string
	label string
}

var nodeClientSeq atomic.Int64

// connectNodeClient connects a client of peer p to nsp; extra adds connectClient fields.
func connectNodeClient(t *testing.T, p *nodepeer.Peer, nsp string, extra map[string]any) *nodeClient {
	t.Helper()
	c := &nodeClient{p: p, name: fmt.Sprintf("c%d", nodeClientSeq.Add(1))}
	args := map[string]any{"name": c.name, "nsp": nsp}
	maps.Copy(args, extra)
	var res struct{ ID string }
	peerCallInto(t, p, "connectClient", args, &res)
	c.id = res.ID
	c.label = "Node client " + c.name
	t.Cleanup(func() {
		if !p.Exited() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = p.Call(ctx, "disconnectClient", map[string]any{"name": c.name})
		}
	})
	return c
}

func (c *nodeClient) String() string { return c.label }

func (c *nodeClient) listen(t *testing.T, evs ...string) {
	t.Helper()
	for _, ev := range evs {
		peerCall(t, c.p, "clientOn", map[string]any{"name": c.name, "ev": evt(t, ev)})
	}
}

// mine matches this client's received events and disconnect report.
func (c *nodeClient) mine(e nodepeer.Event) bool {
	return (e.Name == "client" || e.Name == "clientDisconnect") && e.Str("name") == c.name
}

func (c *nodeClient) next(t *testing.T) (string, []any) {
	t.Helper()
	e := waitPeerEvent(t, c.p, c.mine, c.label+"'s next event")
	if e.Name == "clientDisconnect" {
		return "disconnect", []any{e.Str("reason")}
	}
	args, _ := e.Value("args").([]any)
	return unevt(t, e.Str("ev")), plainSlice(args)
}

func (c *nodeClient) none(t *testing.T) {
	t.Helper()
	for _, e := range c.p.Events() {
		if c.mine(e) {
			t.Fatalf("%s received %s, want nothing", c, e.Raw)
		}
	}
}

func (c *nodeClient) ackWith(t *testing.T, ev string, value any) {
	t.Helper()
	peerCall(t, c.p, "clientOn", map[string]any{"name": c.name, "ev": evt(t, ev), "ack": value})
}

func (c *nodeClient) silent(t *testing.T, ev string) { t.Helper(); c.listen(t, ev) }

func (c *nodeClient) join(t *testing.T, rooms ...string) {
	t.Helper()
	peerCall(t, c.p, "socketJoin", map[string]any{"name": c.name, "rooms": rooms})
}

func (c *nodeClient) inRoom(t *testing.T, room string) bool {
	t.Helper()
	var rooms []string
	peerCallInto(t, c.p, "socketRooms", map[string]any{"name": c.name}, &rooms)
	return slices.Contains(rooms, room)
}

func (c *nodeClient) disconnects(t *testing.T) {
	t.Helper()
	peerCall(t, c.p, "clientDisconnectReport", map[string]any{"name": c.name})
}

// trio is one client on each server of the cluster, all on one namespace.
type trio struct {
	ga, gb *goClient
	nc     *nodeClient
}

func (x *trio) all() []anyClient { return []anyClient{x.ga, x.gb, x.nc} }

func (m *mixed) trio(t *testing.T, nsp string) *trio {
	t.Helper()
	x := &trio{}
	for i, n := range m.gos {
		c, s := connect(t, n, nsp, map[string]any{"token": "go-" + string(rune('a'+i))})
		g := newGoClient(c, s, fmt.Sprintf("Go client of Go %c", 'A'+i))
		if i == 0 {
			x.ga = g
		} else {
			x.gb = g
		}
	}
	x.nc = connectNodeClient(t, m.peer, nsp, nil)
	return x
}

// A sender is a server of either language that acts on the cluster, as its users would.
type sender interface {
	String() string
	emit(t *testing.T, s sel, ev string, args ...any)
	emitWithAck(t *testing.T, s sel, timeout time.Duration, ev string, args ...any) ackResult
	socketsJoin(t *testing.T, s sel, rooms ...string)
	socketsLeave(t *testing.T, s sel, rooms ...string)
	disconnectSockets(t *testing.T, s sel, closeConn bool)
}

// sel selects sockets: a namespace ("/" when empty), rooms, excepted rooms, volatile.
type sel struct {
	nsp      string
	rooms    []string
	except   []string
	volatile bool
}

func (s sel) nspName() string {
	if s.nsp == "" {
		return "/"
	}
	return s.nsp
}

type goSender struct{ n *node }

func (g goSender) String() string { return "Go A" }

func (g goSender) op(s sel) *socket.BroadcastOperator {
	op := g.n.io.Of(s.nspName(), nil).To(stringsToRooms(s.rooms)...).Except(stringsToRooms(s.except)...)
	if s.volatile {
		op = op.Volatile()
	}
	return op
}

func (g goSender) emit(t *testing.T, s sel, ev string, args ...any) {
	t.Helper()
	if err := g.op(s).Emit(evt(t, ev), args...); err != nil {
		t.Fatal(err)
	}
}

func (g goSender) emitWithAck(t *testing.T, s sel, timeout time.Duration, ev string, args ...any) ackResult {
	t.Helper()
	ch := make(chan ackResult, 1)
	if err := g.op(s).Timeout(timeout).Emit(evt(t, ev), append(args, ackInto(ch))...); err != nil {
		t.Fatal(err)
	}
	r := awaitAck(t, ch)
	return ackResult{responses: plainSlice(r.responses), err: r.err}
}

func (g goSender) socketsJoin(_ *testing.T, s sel, rooms ...string) {
	g.op(s).SocketsJoin(stringsToRooms(rooms)...)
}

func (g goSender) socketsLeave(_ *testing.T, s sel, rooms ...string) {
	g.op(s).SocketsLeave(stringsToRooms(rooms)...)
}

func (g goSender) disconnectSockets(_ *testing.T, s sel, closeConn bool) {
	g.op(s).DisconnectSockets(closeConn)
}

type nodeSender struct{ p *nodepeer.Peer }

func (nodeSender) String() string { return "Node" }

func (n nodeSender) fields(s sel, more map[string]any) map[string]any {
	f := map[string]any{"nsp": s.nspName(), "rooms": s.rooms, "except": s.except, "volatile": s.volatile}
	maps.Copy(f, more)
	return f
}

func (n nodeSender) emit(t *testing.T, s sel, ev string, args ...any) {
	t.Helper()
	peerCall(t, n.p, "emit", n.fields(s, map[string]any{"event": evt(t, ev), "args": args}))
}

func (n nodeSender) emitWithAck(t *testing.T, s sel, timeout time.Duration, ev string, args ...any) ackResult {
	t.Helper()
	var res struct {
		Err       *string
		Responses json.RawMessage
	}
	peerCallInto(t, n.p, "emit", n.fields(s, map[string]any{
		"event": evt(t, ev), "args": args, "withAck": true, "timeoutMs": timeout.Milliseconds(),
	}), &res)
	r := ackResult{}
	if res.Err != nil {
		r.err = fmt.Errorf("%s", *res.Err)
	}
	v, err := nodepeer.Decode(res.Responses)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := v.([]any)
	r.responses = plainSlice(list)
	return r
}

func (n nodeSender) socketsJoin(t *testing.T, s sel, rooms ...string) {
	t.Helper()
	peerCall(t, n.p, "socketsJoin", n.fields(s, map[string]any{"target": rooms}))
}

func (n nodeSender) socketsLeave(t *testing.T, s sel, rooms ...string) {
	t.Helper()
	peerCall(t, n.p, "socketsLeave", n.fields(s, map[string]any{"target": rooms}))
}

func (n nodeSender) disconnectSockets(t *testing.T, s sel, closeConn bool) {
	t.Helper()
	peerCall(t, n.p, "disconnectSockets", n.fields(s, map[string]any{"close": closeConn}))
}

func (m *mixed) senders() []sender { return []sender{goSender{m.gos[0]}, nodeSender{m.peer}} }

// bothWays runs fn once with Go A as the sender and once with the Node server.
func (m *mixed) bothWays(t *testing.T, fn func(t *testing.T, from sender)) {
	for _, s := range m.senders() {
		t.Run("from "+s.String(), func(t *testing.T) { fn(t, s) })
	}
}

// expect checks the next events of c are evs, in order, and that nothing else was recorded.
func expect(t *testing.T, c anyClient, evs ...string) {
	t.Helper()
	for _, want := range evs {
		if ev, args := c.next(t); ev != want {
			t.Fatalf("%s received %s %v, want %s", c, ev, args, want)
		}
	}
	c.none(t)
}

// waitMembership waits until room membership of the trio's sockets is as wanted.
func (m *mixed) waitMembership(t *testing.T, x *trio, room string, want ...bool) {
	t.Helper()
	eventually(t, 5*time.Second, func() bool {
		for i, c := range x.all() {
			if c.inRoom(t, room) != want[i] {
				return false
			}
		}
		return true
	}, "room %s membership is %v", room, want)
}

// assertMembership checks membership once a later broadcast from the same sender reached every
// client, so that a socket the request should not have touched was not touched late either.
func (m *mixed) assertMembership(t *testing.T, x *trio, from sender, room string, want ...bool) {
	t.Helper()
	for _, c := range x.all() {
		c.listen(t, "sync")
	}
	from.emit(t, sel{}, "sync")
	for i, c := range x.all() {
		expect(t, c, "sync")
		if got := c.inRoom(t, room); got != want[i] {
			t.Fatalf("%s in %s: %v, want %v", c, room, got, want[i])
		}
	}
}

func firstString(args []any) string {
	if len(args) == 0 {
		return ""
	}
	s, _ := args[0].(string)
	return s
}

// goSecondSocket opens a socket on nsp over the connection of c.
func (m *mixed) goSecondSocket(t *testing.T, c *goClient, nsp string) *goClient {
	t.Helper()
	tc := &testClient{Socket: c.manager.Socket(nsp, client.DefaultOptions()), manager: c.manager, events: make(chan clientEvent, 100)}
	connected := make(chan struct{})
	var once sync.Once
	_ = tc.On("connect", func(...any) { once.Do(func() { close(connected) }) })
	tc.Connect()
	select {
	case <-connected:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no second socket on %s", c, nsp)
	}
	t.Cleanup(func() { tc.Disconnect() })
	return newGoClient(tc, nil, c.label+" on "+nsp)
}

func (m *mixed) nodeSecondSocket(t *testing.T, c *nodeClient, nsp string) *nodeClient {
	t.Helper()
	s := connectNodeClient(t, c.p, nsp, map[string]any{"sameConnectionAs": c.name})
	s.label = c.label + " on " + nsp
	return s
}

// serverListener records what a Go server's "/" receives from serverSideEmit.
func serverListener(n *node, ev string, ack func(args []any) any) chan []any {
	ch := make(chan []any, 10)
	serverOn(n, ev, func(args ...any) {
		if a, ok := args[len(args)-1].(socket.Ack); ok {
			args = args[:len(args)-1]
			if ack != nil {
				a([]any{ack(args)}, nil)
			}
		}
		ch <- plainSlice(args)
	})
	return ch
}

func awaitServerEvent(t *testing.T, ch chan []any, who string) []any {
	t.Helper()
	select {
	case args := <-ch:
		return args
	case <-time.After(10 * time.Second):
		t.Fatalf("%s received no serverSideEmit", who)
	}
	return nil
}

func (m *mixed) awaitPeerServerEvent(t *testing.T, ev string) []any {
	t.Helper()
	e := waitPeerEvent(t, m.peer, func(e nodepeer.Event) bool { return e.Name == "serverSideEmit" && e.Str("ev") == ev },
		"the Node server's serverSideEmit "+ev)
	args, _ := e.Value("args").([]any)
	return plainSlice(args)
}
