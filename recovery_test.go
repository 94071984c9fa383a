package sqsadapter

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// Connection state recovery, end to end: real Go clients reach the servers through a TCP load
// balancer (testsupport.Balancer), drop, and reconnect on their own, with the private session id
// and last offset the client library keeps.

// startRecoveryNode starts a node whose server enables connection state recovery.
func startRecoveryNode(t testing.TB, opts *Options, maxDisconnection time.Duration) *node {
	t.Helper()
	snsClient, sqsClient := awsClients(t)
	o := *opts
	return startNodeWithServerOptions(t, NewAdapterBuilder(snsClient, sqsClient, &o), recoveryServerOptions(maxDisconnection))
}

// recoveryServerOptions enable connection state recovery; a zero duration keeps the default.
func recoveryServerOptions(maxDisconnection time.Duration) *socket.ServerOptions {
	csr := socket.DefaultConnectionStateRecovery()
	if maxDisconnection > 0 {
		csr.SetMaxDisconnectionDuration(maxDisconnection.Milliseconds())
	}
	serverOpts := socket.DefaultServerOptions()
	serverOpts.SetConnectionStateRecovery(csr)
	return serverOpts
}

func socketID(c *recoveringClient) socket.SocketId { return socket.SocketId(c.Id()) }

func recoveryCluster(t testing.TB, size int, opts *Options) []*node {
	t.Helper()
	nodes := make([]*node, size)
	for i := range nodes {
		nodes[i] = startRecoveryNode(t, opts, 0)
	}
	waitServerCount(t, nodes, "/", size)
	return nodes
}

func hostOf(n *node) string {
	u, _ := url.Parse(n.url)
	return u.Host
}

// balancerTo starts a balancer that sends every new connection where pick says.
func balancerTo(t testing.TB, pick func() *node) *testsupport.Balancer {
	t.Helper()
	lb, err := testsupport.NewBalancer(func() string { return hostOf(pick()) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lb.Close() })
	return lb
}

// message is one "msg" event a recovering client received: its text and the offset after it.
type message struct{ text, offset string }

// recoveringClient is a client that reconnects by itself, and records its messages and whether
// each reconnect recovered its session.
type recoveringClient struct {
	*client.Socket
	lb        *testsupport.Balancer
	mu        sync.Mutex
	messages  []message
	got       chan message
	connected chan bool // Recovered() of each connect after the first
}

func connectRecovering(t testing.TB, lb *testsupport.Balancer) *recoveringClient {
	t.Helper()
	c := &recoveringClient{lb: lb, got: make(chan message, 10_000), connected: make(chan bool, 100)}
	first := true
	sock, err := testsupport.ConnectWithOptions(context.Background(), lb.URL(), "/", nil, func(s *client.Socket) {
		_ = s.On("msg", func(args ...any) {
			m := message{text: fmt.Sprint(args[0])}
			if len(args) > 1 {
				m.offset, _ = args[len(args)-1].(string)
			}
			c.mu.Lock()
			c.messages = append(c.messages, m)
			c.mu.Unlock()
			c.got <- m
		})
		_ = s.On("disconnect", func(a ...any) { t.Logf("%s disconnect %v", time.Now().Format("15:04:05.000"), a) })
		_ = s.Io().On("reconnect_attempt", func(a ...any) { t.Logf("%s reconnect_attempt %v", time.Now().Format("15:04:05.000"), a) })
		_ = s.Io().On("reconnect_error", func(a ...any) { t.Logf("%s reconnect_error %v", time.Now().Format("15:04:05.000"), a) })
		_ = s.Io().On("error", func(a ...any) { t.Logf("%s manager error %v", time.Now().Format("15:04:05.000"), a) })
		_ = s.On("connect_error", func(a ...any) { t.Logf("%s connect_error %v", time.Now().Format("15:04:05.000"), a) })
		_ = s.On("connect", func(...any) {
			if !first {
				c.connected <- s.Recovered()
			}
			first = false
		})
	}, func(o *client.Options) {
		o.SetReconnection(true)
		o.SetReconnectionDelay(50)
		o.SetReconnectionDelayMax(200)
		o.SetRandomizationFactor(0)
		// A connect attempt the client loses (see testsupport.Connect) fails after this, and the
		// client tries again by itself.
		o.SetTimeout(2 * time.Second)
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Socket = sock
	t.Cleanup(func() { c.Disconnect() })
	return c
}

func (c *recoveringClient) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.messages)
}

// await waits for the client's next messages and returns their texts.
func (c *recoveringClient) await(t testing.TB, n int) []string {
	t.Helper()
	var texts []string
	for range n {
		select {
		case m := <-c.got:
			if m.offset == "" {
				t.Errorf("message %q came without an offset", m.text)
			}
			texts = append(texts, m.text)
		case <-time.After(10 * time.Second):
			t.Fatalf("client got %v, then nothing for 10s (want %d messages)", texts, n)
		}
	}
	return texts
}

// reconnected waits for the client's next connect and returns whether it recovered. The Go
// client (v3.0.1) can lose a connect attempt silently (see testsupport.Connect); its connect
// timeout makes it try again, and when none completes within reconnectWait the balancer cuts
// the connections as well. A lost attempt never reached the server: the session is still there.
func (c *recoveringClient) reconnected(t testing.TB) bool {
	t.Helper()
	for range testsupport.ConnectAttempts {
		select {
		case r := <-c.connected:
			return r
		case <-time.After(reconnectWait):
			t.Logf("%s kick", time.Now().Format("15:04:05.000"))
			c.lb.DropAll()
		}
	}
	t.Fatalf("client did not reconnect in %d attempts", testsupport.ConnectAttempts)
	return false
}

// reconnectWait is how long a reconnect may take before it is taken as lost: the client waits
// at most 200 ms before it tries, a connect takes milliseconds, a lost one 2 s.
const reconnectWait = 5 * time.Second

// serverSocket returns the server-side socket of the client on n.
func serverSocket(t testing.TB, n *node, c *recoveringClient) *socket.Socket {
	t.Helper()
	s, ok := n.io.Of("/", nil).Sockets().Load(socket.SocketId(c.Id()))
	if !ok {
		t.Fatalf("no socket %s on the node", c.Id())
	}
	return s
}

// witness connects a plain client to n in room: what it receives is what n sent its sockets, in
// n's order.
func witness(t *testing.T, n *node, room string) *testClient {
	t.Helper()
	w, s := connect(t, n, "/", nil)
	w.record("msg")
	s.Join(socket.Room(room))
	return w
}

func (c *testClient) texts(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, fmt.Sprint(c.next(t).args[0]))
	}
	return out
}

func TestRecoveryOnTheSameServerAfterANetworkDrop(t *testing.T) {
	nodes := recoveryCluster(t, 3, testOptions(t))
	lb := balancerTo(t, func() *node { return nodes[0] })
	c := connectRecovering(t, lb)
	s := serverSocket(t, nodes[0], c)
	s.Join("r")
	s.SetData(map[string]any{"user": "ann"})
	w := witness(t, nodes[0], "r")
	sid := c.Id()

	nodes[1].io.Emit("msg", "before")
	c.await(t, 1)
	w.texts(t, 1)

	disconnected := make(chan struct{})
	_ = s.On("disconnect", func(...any) { close(disconnected) })
	lb.Hold()
	lb.DropAll()
	<-disconnected
	// While it is away: for its room from every server, and two it must not get.
	nodes[0].io.To("r").Emit("msg", "n0 to r")
	nodes[1].io.To("r").Emit("msg", "n1 to r")
	nodes[2].io.Except("r").Emit("msg", "n2 except r")
	nodes[2].io.To("other").Emit("msg", "n2 to other")
	nodes[2].io.Emit("msg", "n2 to all")
	order := w.texts(t, 3) // node 0 has sent all three to its sockets, in this order
	lb.Release()

	if !c.reconnected(t) {
		t.Fatal("the client reconnected to the same server without recovering")
	}
	if got := c.await(t, 3); fmt.Sprint(got) != fmt.Sprint(order) {
		t.Fatalf("missed messages %v, want %v (the server's order)", got, order)
	}
	if c.Id() != sid {
		t.Errorf("socket id %s after recovery, want %s", c.Id(), sid)
	}
	s = serverSocket(t, nodes[0], c)
	if !hasRoom(s, "r") || fmt.Sprint(s.Data()) != "map[user:ann]" || !s.Recovered() {
		t.Errorf("recovered socket: rooms %v, data %v, recovered %v", s.Rooms().Keys(), s.Data(), s.Recovered())
	}
	nodes[2].io.Emit("msg", "after")
	if got := c.await(t, 1); got[0] != "after" {
		t.Fatalf("after recovery got %v", got)
	}

	// The replayed packets carried their offsets: a second drop recovers again.
	lb.Hold()
	lb.DropAll()
	nodes[1].io.To("r").Emit("msg", "second gap")
	w.texts(t, 1)
	lb.Release()
	if !c.reconnected(t) {
		t.Fatal("the second drop was not recovered")
	}
	if got := c.await(t, 1); got[0] != "second gap" {
		t.Fatalf("after the second drop got %v", got)
	}
	time.Sleep(200 * time.Millisecond) // a copy of anything would have come by now
	if len(c.got) > 0 {
		t.Fatalf("a message came twice: %v", <-c.got)
	}
	if st := nodes[0].builder.Stats(); st.SessionsRecovered != 2 {
		t.Errorf("SessionsRecovered = %d, want 2", st.SessionsRecovered)
	}
}

func TestRecoveryOnAnotherServerAfterAGracefulClose(t *testing.T) {
	nodes := recoveryCluster(t, 3, testOptions(t))
	var mu sync.Mutex
	target := nodes[0]
	lb := balancerTo(t, func() *node { mu.Lock(); defer mu.Unlock(); return target })
	c := connectRecovering(t, lb)
	s := serverSocket(t, nodes[0], c)
	s.Join("r")
	s.SetData(map[string]any{"user": "bob"})
	sid := c.Id()
	nodes[2].io.Emit("msg", "before")
	c.await(t, 1)

	lb.Hold()
	mu.Lock()
	target = nodes[1]
	mu.Unlock()
	nodes[0].close() // as a rolling deploy does on SIGTERM
	eventually(t, 10*time.Second, func() bool { return nodes[1].builder.handedOffSessions("/") == 1 },
		"node 1 holds the session node 0 handed off")
	w := witness(t, nodes[1], "r")
	nodes[1].io.To("r").Emit("msg", "n1 to r")
	nodes[2].io.Emit("msg", "n2 to all")
	nodes[2].io.Except("r").Emit("msg", "n2 except r")
	order := w.texts(t, 2)
	lb.Release()

	if !c.reconnected(t) {
		t.Fatal("the client reconnected to another server without recovering")
	}
	if got := c.await(t, 2); fmt.Sprint(got) != fmt.Sprint(order) {
		t.Fatalf("missed messages %v, want %v", got, order)
	}
	s = serverSocket(t, nodes[1], c)
	if c.Id() != sid || !hasRoom(s, "r") || fmt.Sprint(s.Data()) != "map[user:bob]" {
		t.Errorf("recovered socket %s (want %s): rooms %v, data %v", c.Id(), sid, s.Rooms().Keys(), s.Data())
	}
	// The session was claimed: no other server can restore it a second time.
	eventually(t, 10*time.Second, func() bool { return nodes[2].builder.handedOffSessions("/") == 0 },
		"node 2 forgets the session node 1 restored")
	nodes[2].io.To("r").Emit("msg", "after")
	if got := c.await(t, 1); got[0] != "after" {
		t.Fatalf("after recovery got %v", got)
	}
	w.texts(t, 1)

	// Dropped again at once: recovered on node 1 from its own log, leaving out what node 0 had
	// sent.
	lb.Hold()
	lb.DropAll()
	nodes[2].io.To("r").Emit("msg", "n2 again")
	nodes[1].io.Emit("msg", "n1 again")
	order = w.texts(t, 2)
	lb.Release()
	if !c.reconnected(t) {
		t.Fatal("the second drop was not recovered")
	}
	if got := c.await(t, 2); fmt.Sprint(got) != fmt.Sprint(order) {
		t.Fatalf("missed messages %v, want %v", got, order)
	}
	time.Sleep(200 * time.Millisecond) // a copy of anything would have come by now
	if len(c.got) > 0 {
		t.Fatalf("a message came twice: %v", <-c.got)
	}
}

func TestRecoveryExpiresAndHappensOnce(t *testing.T) {
	opts := testOptions(t)
	// A session this server does not know waits for a hand-off for the reorder window and a
	// second; without the window, that fits in the test client's connect timeout.
	opts.ReorderWindow = -1
	n := startRecoveryNode(t, opts, time.Second)
	lb := balancerTo(t, func() *node { return n })

	// A session restored once cannot be restored again, with the same id and offset.
	c := connectRecovering(t, lb)
	n.io.Emit("msg", "one")
	c.await(t, 1)
	lb.DropAll()
	if !c.reconnected(t) {
		t.Fatal("not recovered within the duration")
	}
	auth := serverSocket(t, n, c).Handshake().Auth
	if auth["pid"] == nil || auth["offset"] == nil {
		t.Fatalf("the client sent no session: auth %v", auth)
	}
	again, s := connect(t, n, "/", map[string]any{"pid": auth["pid"], "offset": auth["offset"]})
	if s.Recovered() || again.Recovered() {
		t.Fatal("the same session was restored a second time")
	}
	if _, s := connect(t, n, "/", map[string]any{"pid": "unknown", "offset": auth["offset"]}); s.Recovered() {
		t.Fatal("a session that never was restored")
	}

	// A client that comes back after the duration connects afresh.
	late := connectRecovering(t, lb)
	n.io.Emit("msg", "two")
	late.await(t, 1)
	lb.Hold()
	lb.DropAll()
	time.Sleep(1500 * time.Millisecond) // longer than MaxDisconnectionDuration: what is tested
	lb.Release()
	if late.reconnected(t) {
		t.Fatal("recovered after the disconnection duration")
	}
}

func TestRecoveryDefaultsWithAnAdapter(t *testing.T) {
	csr := socket.DefaultConnectionStateRecovery()
	serverOpts := socket.DefaultServerOptions()
	serverOpts.SetConnectionStateRecovery(csr)
	b := NewAdapterBuilder(nil, nil, nil)
	serverOpts.SetAdapter(b)
	io := socket.NewServer(nil, serverOpts)
	defer io.Close(nil)
	if got := csr.MaxDisconnectionDuration(); got != DefaultMaxDisconnectionDuration.Milliseconds() {
		t.Errorf("MaxDisconnectionDuration = %d ms, want the default %v", got, DefaultMaxDisconnectionDuration)
	}
	if !csr.SkipMiddlewares() {
		t.Error("SkipMiddlewares is off; the server's default without an adapter is on")
	}
}
