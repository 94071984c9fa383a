package sqsadapter

import (
	"testing"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/nodepeer"
	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// TestRareGoHeartbeatsKeepNodeServersCounting: Go servers that beat each other every
// GoHeartbeatInterval, longer than a Node server's timeout, stay counted by that Node server
// (they beat every HeartbeatInterval while they count it) and by each other once it is gone.
func TestRareGoHeartbeatsKeepNodeServersCounting(t *testing.T) {
	t.Parallel()
	testsupport.RequireAWS(t)
	opts := testOptions(t)
	// Toward Go peers, one heartbeat every 4 s: a Node server (timeout 3 s) would drop a Go
	// server that kept to it.
	opts.GoHeartbeatInterval, opts.GoHeartbeatTimeout = 4*time.Second, 8*time.Second
	gos := []*node{startNode(t, opts), startNode(t, opts)}
	waitCounts(t, gos, nil, "/", 2)

	n := nodepeer.Start(t, peerConfig(opts, "node-1"))
	waitCounts(t, gos, []*nodepeer.Peer{n}, "/", 3)
	holds := func(d time.Duration, want int64, counters ...testsupport.ServerCounter) {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			for i, c := range counters {
				if got := c.ServerCount(); got != want {
					t.Fatalf("server %d counts %d servers, want %d", i, got, want)
				}
			}
		}
	}
	// Twice the Node server's timeout and more than a Go interval.
	holds(2*opts.HeartbeatTimeout, 3, append(serverCounters(gos, "/"), n.ServerCounter("/"))...)

	n.Kill()
	waitCounts(t, gos, nil, "/", 2)
	// Back to the Go interval: the Go servers keep counting each other past their timeout.
	holds(opts.GoHeartbeatTimeout+opts.GoHeartbeatInterval, 2, serverCounters(gos, "/")...)
}
