package sqsadapter

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/nodepeer"
	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// A Node server in a cluster whose Go servers offload large messages. Node cannot read the
// pointer; the offloaded BROADCAST carries a stand-in data attribute (see wire.StandIn): a
// broadcast to a room nobody is in, without requestId. Upstream's onMessage acts on it without
// throwing, so the poll loop deletes the batch: the Node peer's clients receive nothing for the
// large broadcast, and the small broadcasts around it exactly once each. Without the stand-in,
// onMessage threw, the batch was never deleted, and SQS handed it back after every visibility
// timeout (30 s: transport.js creates its queues without VisibilityTimeout, the SQS default):
// the small broadcasts of the batch reached Node's clients again and again. The Go servers
// receive the large one.
func TestMixedLargeBroadcast(t *testing.T) {
	gos, peer := largeMixedCluster(t)

	goClient, _ := connect(t, gos[1], "/", nil)
	goClient.record(evt(t, "big"), evt(t, "small"))
	nc := connectNodeClient(t, peer, "/", nil)
	nc.listen(t, "small", "big")

	// Small broadcasts just before and after the large one, so that the Node peer likely
	// receives some of them in the batch of the stand-in.
	payload := randomBytes(900 * 1024)
	gos[0].io.Emit(evt(t, "small"), 1)
	gos[0].io.Emit(evt(t, "big"), payload)
	gos[0].io.Emit(evt(t, "small"), 2)
	gotSmall := map[string]int{}
	for range 3 {
		ev := goClient.next(t)
		switch {
		case ev.name == evt(t, "big") && isBytes(ev.args[0], payload):
		case ev.name == evt(t, "small"):
		default:
			t.Fatalf("Go client got %s, want the large broadcast and two small ones", ev.name)
		}
	}
	for range 2 {
		ev, args := nc.next(t)
		if ev != "small" || len(args) != 1 {
			t.Fatalf("Node client got %s %v, want small", ev, args)
		}
		gotSmall[fmt.Sprint(args[0])]++
	}
	if gotSmall["1"] != 1 || gotSmall["2"] != 1 {
		t.Fatalf("Node client got the small broadcasts %v, want 1 and 2 once each", gotSmall)
	}
	// Longer than the visibility timeout plus a long poll: a batch left undeleted comes back
	// within it, and its small broadcasts with it.
	const window = 30*time.Second + 10*time.Second
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		nc.none(t)
		if s := peer.Stderr(); strings.Contains(s, "poll error") {
			t.Fatalf("the Node peer failed on a batch: %s", lastLine(s, "poll error"))
		}
		if peer.Exited() {
			t.Fatalf("the Node peer exited: %s", peer.Stderr())
		}
		time.Sleep(time.Second)
	}
	gos[0].io.Emit(evt(t, "small"), 3)
	if ev, args := nc.next(t); ev != "small" || len(args) != 1 || fmt.Sprint(args[0]) != "3" {
		t.Fatalf("Node client got %s %v, want small 3", ev, args)
	}
	if ev := goClient.next(t); ev.name != evt(t, "small") {
		t.Fatalf("Go client got %s, want small", ev.name)
	}
	time.Sleep(2 * time.Second)
	nc.none(t)
	waitCounts(t, gos, []*nodepeer.Peer{peer}, "/", 3)
}

// An offloaded SERVER_SIDE_EMIT reaches a Node server as its stand-in: the event
// wire.StandInName, which nobody listens to, without requestId. The Node server's listeners
// fire for the small serverSideEmit only; a large serverSideEmit with acknowledgements gets no
// answer from it, and the Go requester times out missing one response, with the Go answers.
func TestMixedLargeServerSideEmit(t *testing.T) {
	gos, peer := largeMixedCluster(t)

	peerCall(t, peer, "serverOn", map[string]any{"ev": "sse", "ack": "node"})
	b := serverListener(gos[1], "sse", func([]any) any { return "b" })
	nodeEvents := func(e nodepeer.Event) bool { return e.Name == "serverSideEmit" && e.Str("ev") == "sse" }

	payload := randomBytes(700 * 1024)
	if err := gos[0].io.Sockets().ServerSideEmit("sse", payload); err != nil {
		t.Fatal(err)
	}
	if err := gos[0].io.Sockets().ServerSideEmit("sse", "small"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if args := awaitServerEvent(t, b, "Go B"); len(args) != 1 || !(isBytes(args[0], payload) || args[0] == "small") {
			t.Fatalf("Go B received %d args, want the large payload or small", len(args))
		}
	}
	e := waitPeerEvent(t, peer, nodeEvents, "the Node server's small serverSideEmit")
	if args, _ := e.Value("args").([]any); len(args) != 1 || args[0] != "small" {
		t.Fatalf("the Node server received %s, want small", e.Raw)
	}

	ch := make(chan ackResult, 1)
	if err := gos[0].io.Sockets().ServerSideEmit("sse", payload, ackInto(ch)); err != nil {
		t.Fatal(err)
	}
	if args := awaitServerEvent(t, b, "Go B"); len(args) != 1 || !isBytes(args[0], payload) {
		t.Fatalf("Go B received %d args, want the large payload", len(args))
	}
	r := awaitAck(t, ch)
	if r.err == nil || r.err.Error() != "timeout reached: missing 1 responses" || !reflect.DeepEqual(r.responses, []any{"b"}) {
		t.Fatalf("responses %#v, err %v; want Go B's, and a timeout missing the Node server's", r.responses, r.err)
	}
	for _, e := range peer.Events() {
		if nodeEvents(e) {
			t.Fatalf("the Node server received %s, want nothing more", e.Raw)
		}
	}
	if s := peer.Stderr(); strings.Contains(s, "poll error") {
		t.Fatalf("the Node peer failed on a batch: %s", lastLine(s, "poll error"))
	}
}

func lastLine(s, containing string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], containing) {
			return lines[i]
		}
	}
	return ""
}

// largeMixedCluster starts two Go servers with large messages in a bucket of the test's own and
// a Node peer with upstream's debug log on (its poll errors show there), all counting 3 servers.
func largeMixedCluster(t *testing.T) ([]*node, *nodepeer.Peer) {
	t.Helper()
	testsupport.RequireAWS(t)
	opts, client := largeOptions(t)
	gos, _ := largeCluster(t, 2, opts, client)
	cfg := peerConfig(opts, "node-peer")
	cfg.Env = []string{"DEBUG=socket.io-aws-sqs-adapter"}
	peer := nodepeer.Start(t, cfg)
	waitCounts(t, gos, []*nodepeer.Peer{peer}, "/", 3)
	return gos, peer
}
