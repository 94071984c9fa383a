package sqsadapter

import (
	"strings"
	"sync"
	"testing"

	"github.com/socketio-go/aws-sqs-adapter/internal/nodepeer"
	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// Connection state recovery with a Node server (upstream's adapter, which has no recovery) in
// the cluster: its clients are unaffected, a Go client recovers on its own server with the Node
// server's broadcasts among those it missed, and after a graceful close it connects afresh on
// another server, since a Node server's broadcasts carry no id that says whether the closed
// server had sent them.
func TestMixedClusterRecovery(t *testing.T) {
	testsupport.RequireAWS(t)
	opts := testOptions(t)
	gos := []*node{startRecoveryNode(t, opts, 0), startRecoveryNode(t, opts, 0)}
	peer := nodepeer.Start(t, peerConfig(opts, "node-peer"))
	waitCounts(t, gos, []*nodepeer.Peer{peer}, "/", 3)

	var mu sync.Mutex
	target := gos[0]
	lb := balancerTo(t, func() *node { mu.Lock(); defer mu.Unlock(); return target })
	c := connectRecovering(t, lb)
	w := witness(t, gos[0], "w")
	nc := connectNodeClient(t, peer, "/", nil)
	peerCall(t, peer, "clientOn", map[string]any{"name": nc.name, "ev": "msg"})
	nodeEmit := func(text string) {
		peerCall(t, peer, "emit", map[string]any{"nsp": "/", "event": "msg", "args": []any{text}})
	}
	nodeClientGets := func(text string) {
		t.Helper()
		waitPeerEvent(t, peer, func(e nodepeer.Event) bool {
			args, _ := e.Value("args").([]any)
			return nc.mine(e) && len(args) > 0 && args[0] == text
		}, "the Node client gets "+text)
	}

	nodeEmit("node before")
	c.await(t, 1)
	w.texts(t, 1)
	nodeClientGets("node before")

	// Same server: the Node server's broadcast is among those replayed.
	disconnected := make(chan struct{})
	_ = serverSocket(t, gos[0], c).On("disconnect", func(...any) { close(disconnected) })
	lb.Hold()
	lb.DropAll()
	<-disconnected
	nodeEmit("node during")
	gos[1].io.Emit("msg", "go during")
	order := w.texts(t, 2)
	lb.Release()
	if !c.reconnected(t) {
		t.Fatal("not recovered on its own server with a Node server in the cluster")
	}
	if got := c.await(t, 2); strings.Join(got, ",") != strings.Join(order, ",") {
		t.Fatalf("missed %v, want %v", got, order)
	}
	nodeClientGets("node during")
	nodeClientGets("go during")

	// Another server after a graceful close: not recovered, and nothing is wrong or doubled.
	lb.Hold()
	mu.Lock()
	target = gos[1]
	mu.Unlock()
	gos[0].close()
	waitCounts(t, gos[1:], []*nodepeer.Peer{peer}, "/", 2)
	lb.Release()
	if c.reconnected(t) {
		t.Fatal("recovered on another server although a Node server's broadcasts may be missing or doubled")
	}
	nodeEmit("node after")
	if got := c.await(t, 1); got[0] != "node after" {
		t.Fatalf("after reconnecting got %v", got)
	}
	nodeClientGets("node after")
	if peer.Exited() {
		t.Fatalf("the Node peer exited: %s", peer.Stderr())
	}
}
