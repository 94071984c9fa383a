package sqsadapter

import (
	"strings"
	"testing"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/nodepeer"
	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// A Node server in a cluster whose Go servers offload large messages. Node cannot read the
// pointer: it receives a BROADCAST with no data attribute, and socket.io-adapter's onMessage
// throws a TypeError on message.data.requestId; upstream's poll loop catches it (debug log only)
// and skips the batch's DeleteMessageBatch. The peer must not crash, and must go on receiving
// the small broadcasts that follow; the Go servers receive the large one.
func TestMixedLargeBroadcast(t *testing.T) {
	testsupport.RequireAWS(t)
	opts, client := largeOptions(t)
	gos, _ := largeCluster(t, 2, opts, client)
	cfg := peerConfig(opts, "node-peer")
	cfg.Env = []string{"DEBUG=socket.io-aws-sqs-adapter"}
	peer := nodepeer.Start(t, cfg)
	waitCounts(t, gos, []*nodepeer.Peer{peer}, "/", 3)

	goClient, _ := connect(t, gos[1], "/", nil)
	goClient.record(evt(t, "big"), evt(t, "small"))
	nc := connectNodeClient(t, peer, "/", nil)
	nc.listen(t, "small")

	payload := randomBytes(900 * 1024)
	gos[0].io.Emit(evt(t, "big"), payload)
	if ev := goClient.next(t); ev.name != evt(t, "big") || !isBytes(ev.args[0], payload) {
		t.Fatalf("Go client got %s, want the large broadcast", ev.name)
	}
	// Let the Node peer receive the pointer message in a receive of its own.
	eventually(t, 10*time.Second, func() bool { return strings.Contains(peer.Stderr(), "poll error") },
		"the Node peer to fail on the pointer message")
	t.Logf("Node peer: %s", lastLine(peer.Stderr(), "poll error"))
	for i := 1; i <= 3; i++ {
		gos[0].io.Emit(evt(t, "small"), i)
		if ev, args := nc.next(t); ev != "small" || len(args) != 1 {
			t.Fatalf("Node client got %s %v, want small %d", ev, args, i)
		}
		if ev := goClient.next(t); ev.name != evt(t, "small") {
			t.Fatalf("Go client got %s, want small", ev.name)
		}
	}
	if peer.Exited() {
		t.Fatalf("the Node peer exited: %s", peer.Stderr())
	}
	waitCounts(t, gos, []*nodepeer.Peer{peer}, "/", 3)
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
