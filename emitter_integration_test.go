package sqsadapter

// The emitter (package emitter) drives a cluster of three Go servers over the emulator.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/emitter"
)

// newTestEmitter returns an emitter for the cluster n belongs to: by topic name, or with
// byArn, by the topic ARN the node found (then New makes no AWS call).
func newTestEmitter(t *testing.T, n *node, byArn bool) *emitter.Emitter {
	t.Helper()
	snsClient, _ := awsClients(t)
	opts := &emitter.Options{TopicName: n.builder.topicName(), Logger: testLogger(t)}
	if byArn {
		opts.TopicArn = n.builder.resources().topicArn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := emitter.New(ctx, snsClient, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// emitCtx bounds one emitter call.
func emitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// expectOnly runs send, which emits event, waits until the clients with the given indexes have
// received it, then emits "sync" to every client with e: each client's next event must be
// "sync", so no other client received event (it left before the marker).
func expectOnly(t *testing.T, e *emitter.Emitter, clients []*testClient, event string, send func() error, targets ...int) {
	t.Helper()
	if err := send(); err != nil {
		t.Fatal(err)
	}
	for _, i := range targets {
		if ev := nextOf(t, clients, i, event); ev.name != event {
			t.Fatalf("client %d got %s %v, want %s", i, ev.name, ev.args, event)
		}
	}
	if err := e.Emit(emitCtx(t), "sync"); err != nil {
		t.Fatal(err)
	}
	for i := range clients {
		if ev := nextOf(t, clients, i, "sync"); ev.name != "sync" {
			t.Fatalf("client %d got %s %v, want only sync (targets: %v)", i, ev.name, ev.args, targets)
		}
	}
}

// nextOf waits for the next event client i recorded; want is only for the failure message.
func nextOf(t *testing.T, clients []*testClient, i int, want string) clientEvent {
	t.Helper()
	select {
	case ev := <-clients[i].events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("client %d (connected: %v) received nothing in 10s, waiting for %s", i, clients[i].Connected(), want)
	}
	return clientEvent{}
}

// setupEmitter starts three nodes with a client each and an emitter found through node
// `through` (by topic name, or by ARN). Disconnects are logged, for failures.
func setupEmitter(t *testing.T, through int, byArn bool) (*threeNodes, *emitter.Emitter) {
	t.Helper()
	c := setupThree(t)
	watchDisconnects(t, c)
	return c, newTestEmitter(t, c.nodes[through], byArn)
}

// watchDisconnects logs every client and server-side disconnect of c while the test runs.
func watchDisconnects(t *testing.T, c *threeNodes) {
	start := time.Now()
	var mu sync.Mutex
	done := false
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("%v "+format, append([]any{time.Since(start)}, args...)...)
		}
	}
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	for i, cl := range c.clients {
		_ = cl.On("disconnect", func(args ...any) { logf("client %d disconnected: %v", i, args) })
		_ = c.sockets[i].On("disconnect", func(args ...any) { logf("server socket %d disconnected: %v", i, args) })
	}
}

func assertServerCount(t *testing.T, nodes []*node, nsp string, want int64) {
	t.Helper()
	for i, n := range nodes {
		if got := n.io.Of(nsp, nil).Adapter().ServerCount(); got != want {
			t.Fatalf("node %d counts %d servers on %s, want %d", i, got, nsp, want)
		}
	}
}

func TestEmitterEmitReachesEveryNode(t *testing.T) {
	c, e := setupEmitter(t, 0, false)
	for _, cl := range c.clients {
		cl.record("test")
	}
	nested := map[string]any{"bin": []byte{5, 6}, "list": []any{"x", 7}}
	if err := e.Emit(emitCtx(t), "test", 1, "2", []byte{3, 4}, map[string]any{"nested": nested}); err != nil {
		t.Fatal(err)
	}
	for i, cl := range c.clients {
		ev := cl.next(t)
		a := ev.args
		if ev.name != "test" || len(a) != 4 || !numberIs(a[0], 1) || a[1] != "2" || !isBytes(a[2], []byte{3, 4}) {
			t.Fatalf("client %d got %s %#v", i, ev.name, a)
		}
		obj, _ := a[3].(map[string]any)
		n, _ := obj["nested"].(map[string]any)
		list, _ := n["list"].([]any)
		if !isBytes(n["bin"], []byte{5, 6}) || len(list) != 2 || list[0] != "x" || !numberIs(list[1], 7) {
			t.Fatalf("client %d got the nested argument %#v", i, a[3])
		}
	}
	assertServerCount(t, c.nodes, "/", 3)
}

func TestEmitterRoomTargeting(t *testing.T) {
	c, e := setupEmitter(t, 1, false)
	c.sockets[0].Join("a")
	c.sockets[1].Join("a", "b")
	c.sockets[2].Join("c")
	for _, cl := range c.clients {
		cl.record("test", "sync")
	}
	cases := []struct {
		name    string
		op      *emitter.BroadcastOperator
		targets []int
	}{
		{"To a", e.To("a"), []int{0, 1}},
		{"In b", e.In("b"), []int{1}},
		{"To b, c", e.To("b").To("c"), []int{1, 2}},
		{"Except a", e.Except("a"), []int{2}},
		{"To a except b", e.To("a").Except("b"), []int{0}},
		{"To a except a", e.To("a").Except("a"), nil},
		{"a socket id", e.To(string(c.sockets[2].Id())), []int{2}},
		{"an empty room", e.To("nobody"), nil},
	}
	for _, tc := range cases {
		ok := t.Run(tc.name, func(t *testing.T) {
			expectOnly(t, e, c.clients, "test", func() error { return tc.op.Emit(emitCtx(t), "test", tc.name) }, tc.targets...)
		})
		if !ok {
			t.FailNow() // the next cases would read this one's leftovers
		}
	}
	assertServerCount(t, c.nodes, "/", 3)
}

func TestEmitterOfNamespace(t *testing.T) {
	c, e := setupEmitter(t, 2, true) // by ARN: no CreateTopic
	var custom []*testClient
	var customSockets []*socket.Socket
	for _, n := range c.nodes {
		n.io.Of("/custom", nil)
	}
	waitServerCount(t, c.nodes, "/custom", 3)
	for _, n := range c.nodes {
		cl, s := connect(t, n, "/custom", nil)
		cl.record("test", "sync")
		custom = append(custom, cl)
		customSockets = append(customSockets, s)
	}
	for _, cl := range c.clients {
		cl.record("test", "sync")
	}
	customEmitter := e.Of("custom") // the slash is added
	// Every /custom client, and none of the / clients.
	if err := customEmitter.Emit(emitCtx(t), "test"); err != nil {
		t.Fatal(err)
	}
	for i, cl := range custom {
		if ev := cl.next(t); ev.name != "test" {
			t.Fatalf("/custom client %d got %s", i, ev.name)
		}
	}
	expectOnly(t, e, c.clients, "test", func() error { return nil })

	// A room of /custom: only its member, although a / socket is in a room of that name too.
	customSockets[1].Join("r")
	c.sockets[0].Join("r")
	expectOnly(t, customEmitter, custom, "test", func() error { return customEmitter.To("r").Emit(emitCtx(t), "test") }, 1)
	expectOnly(t, e, c.clients, "test", func() error { return nil })

	// Server-side events reach the listeners of their namespace only.
	rootGot, customGot := make(chan []any, 3), make(chan []any, 3)
	for _, n := range c.nodes {
		_ = n.io.Of("/", nil).On("ping", func(args ...any) { rootGot <- args })
		_ = n.io.Of("/custom", nil).On("ping", func(args ...any) { customGot <- args })
	}
	if err := customEmitter.ServerSideEmit(emitCtx(t), "ping", "custom"); err != nil {
		t.Fatal(err)
	}
	for range c.nodes {
		if args := receive(t, customGot); len(args) != 1 || args[0] != "custom" {
			t.Fatalf("/custom listener got %#v", args)
		}
	}
	if err := e.ServerSideEmit(emitCtx(t), "ping", "root"); err != nil {
		t.Fatal(err)
	}
	for range c.nodes {
		if args := receive(t, rootGot); len(args) != 1 || args[0] != "root" {
			t.Fatalf("/ listener got %#v, want only the / event", args)
		}
	}
	assertServerCount(t, c.nodes, "/custom", 3)
}

func receive(t *testing.T, ch <-chan []any) []any {
	t.Helper()
	select {
	case args := <-ch:
		return args
	case <-time.After(10 * time.Second):
		t.Fatal("a server did not receive the event")
	}
	return nil
}

func TestEmitterSocketsJoin(t *testing.T) {
	c, e := setupEmitter(t, 0, false)
	c.sockets[0].Join("room1")
	c.sockets[2].Join("room1")
	if err := e.In("room1").SocketsJoin(emitCtx(t), "room2", "room3"); err != nil {
		t.Fatal(err)
	}
	waitRooms(t, c, "room2", true, false, true)
	waitRooms(t, c, "room3", true, false, true)
	assertStays(t, c, "room2", true, false, true)

	if err := e.In(string(c.sockets[1].Id())).SocketsJoin(emitCtx(t), "room4"); err != nil {
		t.Fatal(err)
	}
	waitRooms(t, c, "room4", false, true, false)
	assertStays(t, c, "room4", false, true, false)

	if err := e.SocketsJoin(emitCtx(t), "everyone"); err != nil {
		t.Fatal(err)
	}
	waitRooms(t, c, "everyone", true, true, true)
}

func TestEmitterSocketsLeave(t *testing.T) {
	c, e := setupEmitter(t, 0, false)
	for _, s := range c.sockets {
		s.Join("room1", "room2")
	}
	c.sockets[0].Join("keep")
	if err := e.In("room1").Except("keep").SocketsLeave(emitCtx(t), "room2"); err != nil {
		t.Fatal(err)
	}
	waitRooms(t, c, "room2", true, false, false)
	assertStays(t, c, "room2", true, false, false)
	assertStays(t, c, "room1", true, true, true)

	if err := e.SocketsLeave(emitCtx(t), "room1"); err != nil {
		t.Fatal(err)
	}
	waitRooms(t, c, "room1", false, false, false)
}

// disconnectReasons returns, per client, a channel of the reasons it is disconnected for.
func disconnectReasons(clients []*testClient) []chan string {
	reasons := make([]chan string, len(clients))
	for i, cl := range clients {
		reasons[i] = make(chan string, 1)
		_ = cl.On("disconnect", func(args ...any) { reasons[i] <- args[0].(string) })
	}
	return reasons
}

// awaitDisconnect waits until client i is disconnected for one of the reasons.
func awaitDisconnect(t *testing.T, reasons []chan string, i int, want ...string) {
	t.Helper()
	select {
	case r := <-reasons[i]:
		if !slices.Contains(want, r) {
			t.Fatalf("client %d disconnected for %q, want one of %q", i, r, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("client %d was not disconnected", i)
	}
}

func TestEmitterDisconnectSockets(t *testing.T) {
	c, e := setupEmitter(t, 0, false)
	c.sockets[1].Join("doomed")
	reasons := disconnectReasons(c.clients)
	for _, cl := range c.clients {
		cl.record("sync")
	}
	if err := e.In("doomed").DisconnectSockets(emitCtx(t), false); err != nil {
		t.Fatal(err)
	}
	awaitDisconnect(t, reasons, 1, "io server disconnect")
	// The others are still connected: they receive a later event, and were not disconnected
	// before it.
	if err := e.Emit(emitCtx(t), "sync"); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		if ev := c.clients[i].next(t); ev.name != "sync" {
			t.Fatalf("client %d got %s", i, ev.name)
		}
		select {
		case r := <-reasons[i]:
			t.Fatalf("client %d was disconnected too (%s)", i, r)
		default:
		}
		if !c.sockets[i].Connected() {
			t.Fatalf("socket %d is not connected", i)
		}
	}
	if c.sockets[1].Connected() {
		t.Fatal("socket 1 is still connected")
	}
}

func TestEmitterDisconnectSocketsClosingConnections(t *testing.T) {
	c, e := setupEmitter(t, 0, false)
	reasons := disconnectReasons(c.clients)
	if err := e.DisconnectSockets(emitCtx(t), true); err != nil {
		t.Fatal(err)
	}
	for i := range c.clients {
		awaitDisconnect(t, reasons, i, "transport close", "io server disconnect")
	}
	for i, n := range c.nodes {
		eventually(t, 10*time.Second, func() bool { return n.io.Engine().ClientsCount() == 0 },
			"node %d has no engine connection left", i)
	}
}

func TestEmitterServerSideEmit(t *testing.T) {
	c, e := setupEmitter(t, 0, false)
	got := make(chan []any, 3)
	for _, n := range c.nodes {
		serverOn(n, "hello", func(args ...any) { got <- args })
	}
	if err := e.ServerSideEmit(emitCtx(t), "hello", "world", 1, []byte{9, 8, 7}, map[string]any{"o": []any{1, 2}}); err != nil {
		t.Fatal(err)
	}
	// All three nodes receive it (a node's own serverSideEmit skips the sender; an emitter is
	// none of them), and no listener is handed an acknowledgement callback.
	for range c.nodes {
		args := receive(t, got)
		o, _ := args[len(args)-1].(map[string]any)
		if len(args) != 4 || args[0] != "world" || !numberIs(args[1], 1) || !isBytes(args[2], []byte{9, 8, 7}) || len(o["o"].([]any)) != 2 {
			t.Fatalf("args %#v", args)
		}
	}
	// The emitter is not a node.
	assertServerCount(t, c.nodes, "/", 3)
	if err := e.ServerSideEmit(emitCtx(t), "hello", func([]any, error) {}); err == nil {
		t.Fatal("an acknowledgement callback was accepted")
	}
}

// publishTwice publishes every message twice, as the SDK does when it retries a publish whose
// response was lost.
type publishTwice struct{ emitter.SNSAPI }

func (p publishTwice) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if _, err := p.SNSAPI.Publish(ctx, in, o...); err != nil {
		return nil, err
	}
	return p.SNSAPI.Publish(ctx, in, o...)
}

// An emitter message that reaches the topic twice is acted on once by every server: the emitter
// sends a msgId, as servers do.
func TestEmitterMessagePublishedTwiceIsActedOnOnce(t *testing.T) {
	c := setupThree(t)
	snsClient, _ := awsClients(t)
	e, err := emitter.New(emitCtx(t), publishTwice{snsClient}, &emitter.Options{TopicName: c.nodes[0].builder.topicName()})
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range c.clients {
		cl.record("twice", "sync")
	}
	if err := e.Emit(emitCtx(t), "twice"); err != nil {
		t.Fatal(err)
	}
	// A marker sent after it: each client's next events must be one "twice", then "sync".
	if err := e.Emit(emitCtx(t), "sync"); err != nil {
		t.Fatal(err)
	}
	for i := range c.clients {
		if ev := nextOf(t, c.clients, i, "twice"); ev.name != "twice" {
			t.Fatalf("client %d got %s first", i, ev.name)
		}
		if ev := nextOf(t, c.clients, i, "sync"); ev.name != "sync" {
			t.Fatalf("client %d got %s %v again before the marker", i, ev.name, ev.args)
		}
	}
}

// On a live endpoint, an emitter finds the topic the servers made by its name among many, and a
// name no server uses fails New without creating that topic; CreateTopic creates it.
func TestEmitterFindsOnlyTheServersTopic(t *testing.T) {
	n := startNode(t, testOptions(t))
	newTestEmitter(t, n, false) // found by name

	snsClient, _ := awsClients(t)
	typo := n.builder.topicName() + "-typo"
	for range 2 { // the second look-up fails too: the first created nothing
		_, err := emitter.New(emitCtx(t), snsClient, &emitter.Options{TopicName: typo})
		if !errors.Is(err, emitter.ErrTopicNotFound) {
			t.Fatalf("New on a topic no server made: %v, want ErrTopicNotFound", err)
		}
	}
	e, err := emitter.New(emitCtx(t), snsClient, &emitter.Options{TopicName: typo, CreateTopic: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = snsClient.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: aws.String(e.TopicArn())})
	})
	if _, err := emitter.New(emitCtx(t), snsClient, &emitter.Options{TopicName: typo}); err != nil {
		t.Fatalf("New after CreateTopic made it: %v", err)
	}
}
