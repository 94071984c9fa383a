package sqsadapter

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"go.uber.org/goleak"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

func TestMain(m *testing.M) {
	if topic := os.Getenv(childTopicEnv); topic != "" {
		runChildNode(topic) // this process is a node that a test will kill
		return
	}
	goleak.VerifyTestMain(m,
		// The SDK's and net/http's idle keep-alive connections outlive a test by design.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// The Go Socket.IO library (server v3.0.2, client v3.0.1) leaves its own timers and the
		// client's task queues and network monitor running after Close; the adapter uses none of
		// them, so every goroutine of its own is still checked.
		goleak.IgnoreAnyFunction("github.com/zishang520/socket.io/v3/pkg/queue.(*Queue).loop"),
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetInterval.func1"),
		goleak.IgnoreTopFunction("github.com/zishang520/socket.io/v3/pkg/utils.SetTimeout.func1"),
	)
}

// awsClients are clients of the endpoint under test (testsupport.AWSConfig: the test is skipped
// without one, or fails under CI=true).
func awsClients(t testing.TB) (*sns.Client, *sqs.Client) {
	cfg := testsupport.AWSConfig(t)
	return sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
}

// testOptions are fast cluster options on a topic of the test's own, so that tests running
// against one emulator never see each other's messages.
func testOptions(t testing.TB) *Options {
	return &Options{
		TopicName:         testsupport.UniqueName("sqsadapter-test"),
		QueuePrefix:       "sqsadapter-test",
		HeartbeatInterval: 500 * time.Millisecond,
		HeartbeatTimeout:  3 * time.Second,
		// One interval toward all: the tests time membership by HeartbeatTimeout.
		GoHeartbeatInterval: 500 * time.Millisecond,
		RequestTimeout:      2 * time.Second,
		Logger:              testLogger(t),
	}
}

// testLogger writes warnings and errors to the test log, where a failing test shows them.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// node is one Go Socket.IO server of a test cluster.
type node struct {
	io      *socket.Server
	builder *AdapterBuilder
	http    *httptest.Server
	url     string
	closed  sync.Once
}

// startNode starts a Go Socket.IO server with the adapter on a random loopback port and waits
// for Init. It is closed at the end of the test.
func startNode(t testing.TB, opts *Options) *node {
	t.Helper()
	snsClient, sqsClient := awsClients(t)
	return startNodeWith(t, NewAdapterBuilder(snsClient, sqsClient, opts))
}

// startNodeWith is startNode with a builder of the test's own.
func startNodeWith(t testing.TB, b *AdapterBuilder) *node {
	t.Helper()
	return startNodeWithServerOptions(t, b, socket.DefaultServerOptions())
}

// startNodeWithServerOptions is startNodeWith with Socket.IO server options of the test's own.
func startNodeWithServerOptions(t testing.TB, b *AdapterBuilder, serverOpts socket.ServerOptionsInterface) *node {
	t.Helper()
	n := &node{builder: b}
	serverOpts.SetAdapter(n.builder)
	n.io = socket.NewServer(nil, serverOpts)
	n.http = httptest.NewServer(n.io.ServeHandler(nil))
	n.url = n.http.URL
	t.Cleanup(n.close)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.builder.Init(ctx); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return n
}

func (n *node) close() {
	n.closed.Do(func() {
		n.io.Close(nil)
		n.http.CloseClientConnections()
		n.http.Close()
	})
}

// cluster starts size nodes on one topic and waits until each counts all of them.
func cluster(t testing.TB, size int, opts *Options) []*node {
	t.Helper()
	nodes := make([]*node, size)
	for i := range nodes {
		o := *opts
		nodes[i] = startNode(t, &o)
	}
	waitServerCount(t, nodes, "/", size)
	t.Cleanup(func() {
		if t.Failed() {
			for i, n := range nodes {
				t.Logf("node %d: %+v", i, n.builder.Stats())
			}
		}
	})
	return nodes
}

func waitServerCount(t testing.TB, nodes []*node, nsp string, want int) {
	t.Helper()
	testsupport.WaitServerCount(t, 10*time.Second, nsp, want, serverCounters(nodes, nsp)...)
}

// serverCounters are the adapters of namespace nsp on nodes, as testsupport.WaitServerCount
// polls them.
func serverCounters(nodes []*node, nsp string) []testsupport.ServerCounter {
	out := make([]testsupport.ServerCounter, len(nodes))
	for i, n := range nodes {
		out[i] = n.io.Of(nsp, nil).Adapter()
	}
	return out
}

// eventually waits for cond, checking every 10 ms, for state that no event announces (a room
// joined on another node); it fails the test with what it waited for.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testClient is a real Go Socket.IO client connected to one node.
type testClient struct {
	*client.Socket
	manager *client.Manager
	events  chan clientEvent
}

type clientEvent struct {
	name string
	args []any
}

// connect opens a websocket client to nsp on n and returns it with the server-side socket;
// configure, if given, changes the client's options (extra headers, say).
func connect(t testing.TB, n *node, nsp string, auth map[string]any, configure ...func(*client.Options)) (*testClient, *socket.Socket) {
	t.Helper()
	var conf func(*client.Options)
	if len(configure) > 0 {
		conf = configure[0]
	}
	sock, err := testsupport.ConnectWithOptions(context.Background(), n.url, nsp, auth, nil, conf)
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{Socket: sock, manager: sock.Io(), events: make(chan clientEvent, 1000)}
	t.Cleanup(func() { c.Disconnect() })
	// The client's id is its server-side socket's id.
	s, ok := n.io.Of(nsp, nil).Sockets().Load(socket.SocketId(c.Id()))
	if !ok {
		t.Fatalf("no server-side socket %s on %s", c.Id(), nsp)
	}
	return c, s
}

// record makes the client queue every ev it receives, for next and none.
func (c *testClient) record(evs ...string) {
	for _, ev := range evs {
		_ = c.On(types.EventName(ev), func(args ...any) { c.events <- clientEvent{ev, args} })
	}
}

// next waits for the next recorded event.
func (c *testClient) next(t testing.TB) clientEvent {
	t.Helper()
	select {
	case e := <-c.events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("client received no event in 10s")
	}
	return clientEvent{}
}

// none checks the client received nothing; call it after an event that is known to arrive
// later than any wrong one would have (another client's copy of the same broadcast).
func (c *testClient) none(t testing.TB) {
	t.Helper()
	select {
	case e := <-c.events:
		t.Fatalf("client received %s %v, want nothing", e.name, e.args)
	default:
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// The helpers below serve the suites on three nodes (adapter_test.go, emitter_integration_test.go,
// lifecycle_test.go) and the mixed-cluster tests.

// threeNodes is upstream's test context: three servers, one client on each.
type threeNodes struct {
	nodes   []*node
	clients []*testClient
	sockets []*socket.Socket // server-side sockets of the clients, by node
}

func setupThree(t *testing.T) *threeNodes {
	t.Helper()
	c := &threeNodes{nodes: cluster(t, 3, testOptions(t))}
	for _, n := range c.nodes {
		cl, s := connect(t, n, "/", nil)
		c.clients = append(c.clients, cl)
		c.sockets = append(c.sockets, s)
	}
	return c
}

// ackResult is what an emit with acknowledgements delivered.
type ackResult struct {
	responses []any
	err       error
}

func awaitAck(t *testing.T, ch <-chan ackResult) ackResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("acknowledgement callback never called")
	}
	return ackResult{}
}

func ackInto(ch chan<- ackResult) socket.Ack {
	var once sync.Once
	return func(responses []any, err error) {
		once.Do(func() { ch <- ackResult{responses, err} })
	}
}

// replyWith makes a client acknowledge ev with value.
func replyWith(cl *testClient, ev string, value any) {
	_ = cl.On(types.EventName(ev), func(args ...any) {
		if ack, ok := args[len(args)-1].(func([]any, error)); ok {
			ack([]any{value}, nil)
		}
	})
}

func hasRoom(s *socket.Socket, room string) bool { return s.Rooms().Has(socket.Room(room)) }

// waitRooms waits until each server-side socket's membership of room is as wanted.
func waitRooms(t *testing.T, c *threeNodes, room string, want ...bool) {
	t.Helper()
	eventually(t, 5*time.Second, func() bool {
		for i, s := range c.sockets {
			if hasRoom(s, room) != want[i] {
				return false
			}
		}
		return true
	}, "room %s membership is %v", room, want)
}

// assertStays checks that a later cluster message (a broadcast every client receives) finds
// the rooms unchanged, so that a socket the request should not have touched was not touched
// late either.
func assertStays(t *testing.T, c *threeNodes, room string, want ...bool) {
	t.Helper()
	for _, cl := range c.clients {
		cl.record("sync")
	}
	c.nodes[0].io.Emit("sync")
	for _, cl := range c.clients {
		cl.next(t)
	}
	for i, s := range c.sockets {
		if hasRoom(s, room) != want[i] {
			t.Fatalf("socket %d in %s: %v, want %v", i, room, hasRoom(s, room), want[i])
		}
	}
}

func fetchSockets(t *testing.T, op *socket.BroadcastOperator) []*socket.RemoteSocket {
	t.Helper()
	type result struct {
		sockets []*socket.RemoteSocket
		err     error
	}
	ch := make(chan result, 1)
	op.FetchSockets()(func(s []*socket.RemoteSocket, err error) { ch <- result{s, err} })
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("fetchSockets: %v", r.err)
		}
		return r.sockets
	case <-time.After(15 * time.Second):
		t.Fatal("fetchSockets never answered")
	}
	return nil
}

// serverOn registers a serverSideEmit listener on a node's "/" namespace.
func serverOn(n *node, ev string, fn func(args ...any)) {
	_ = n.io.Sockets().On(ev, fn)
}

// ackFromArgs returns the acknowledgement callback a serverSideEmit listener receives last.
func ackFromArgs(t *testing.T, args []any) socket.Ack {
	ack, ok := args[len(args)-1].(socket.Ack)
	if !ok {
		t.Errorf("last argument %T is not an acknowledgement", args[len(args)-1])
		return func([]any, error) {}
	}
	return ack
}

// Value helpers: the Go client decodes JSON numbers as float64, msgpack ones arrive as int64.

func numberIs(v any, want int64) bool {
	switch n := v.(type) {
	case int64:
		return n == want
	case int:
		return int64(n) == want
	case float64:
		return n == float64(want)
	case uint64:
		return int64(n) == want
	}
	return false
}

func sortedNumbers(vs []any) []int64 {
	out := []int64{}
	for _, v := range vs {
		switch n := v.(type) {
		case int64:
			out = append(out, n)
		case float64:
			out = append(out, int64(n))
		case int:
			out = append(out, int64(n))
		}
	}
	slices.Sort(out)
	return out
}

func asBytes(v any) ([]byte, bool) {
	switch b := v.(type) {
	case []byte:
		return b, true
	case interface{ Bytes() []byte }:
		return b.Bytes(), true
	}
	return nil, false
}

func isBytes(v any, want []byte) bool {
	b, ok := asBytes(v)
	return ok && bytes.Equal(b, want)
}
