package sqsadapter

import (
	"context"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Cluster membership, as socket.io-adapter's ClusterAdapterWithHeartbeat keeps it: every
// namespace adapter counts the uids it hears from, drops one that is silent for longer than the
// heartbeat timeout or says ADAPTER_CLOSE, and publishes a HEARTBEAT when it has published
// nothing else for a heartbeat interval. One goroutine per builder drives all namespaces, and it
// stops with the builder (the Go library's own heartbeat timer keeps firing after Close).

// heartbeatTick is how often the heartbeat goroutine looks at the namespaces.
func (o *Options) heartbeatTick() time.Duration {
	return min(time.Second, o.HeartbeatInterval/2, (o.HeartbeatTimeout-o.HeartbeatInterval)/2)
}

// heartbeatLoop sends the heartbeats and drops the nodes that went silent.
func (b *AdapterBuilder) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.heartbeatTick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, a := range b.namespaceAdapters() {
				a.expireNodes(now)
				if now.Sub(time.Unix(0, a.lastPublish.Load())) >= b.opts.HeartbeatInterval {
					a.publishOrReport(wire.Heartbeat, nil)
				}
			}
		}
	}
}

// nodeSeen records a message from uid.
func (a *namespaceAdapter) nodeSeen(uid string) {
	if uid == wire.EmitterUID {
		return // emitters are not nodes
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.nodes[uid] = time.Now()
	}
}

func (a *namespaceAdapter) expireNodes(now time.Time) {
	var gone []string
	a.mu.Lock()
	for uid, seen := range a.nodes {
		if now.Sub(seen) > a.b.opts.HeartbeatTimeout {
			gone = append(gone, uid)
		}
	}
	a.mu.Unlock()
	for _, uid := range gone {
		a.b.log.Warn("sqsadapter: node seems down", "nsp", a.name, "uid", uid, "node", nodeIDOf(uid, a.b.nodeID),
			"silentFor", a.b.opts.HeartbeatTimeout)
		a.removeNode(uid)
	}
}

// removeNode forgets uid and completes the requests that now lack only its answer, with the
// answers of the nodes that remain.
func (a *namespaceAdapter) removeNode(uid string) {
	var complete []*pendingRequest
	a.mu.Lock()
	delete(a.nodes, uid)
	for id, r := range a.requests {
		delete(r.missing, uid)
		if len(r.missing) == 0 {
			delete(a.requests, id)
			complete = append(complete, r)
		}
	}
	a.mu.Unlock()
	for _, r := range complete {
		r.finish(nil)
	}
}

// ServerCount is the number of nodes serving this namespace, this one included.
func (a *namespaceAdapter) ServerCount() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(len(a.nodes) + 1)
}

// liveNodeIDs returns the ids of the nodes heard within the heartbeat timeout, this one
// included: the orphan clean-up removes the queues of the others.
func (b *AdapterBuilder) liveNodeIDs() map[string]bool {
	live := map[string]bool{b.nodeID: true}
	for _, a := range b.namespaceAdapters() {
		for _, uid := range a.liveUIDs() {
			live[nodeIDOf(uid, b.nodeID)] = true
		}
	}
	return live
}

func (a *namespaceAdapter) liveUIDs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.nodes))
	for uid := range a.nodes {
		out = append(out, uid)
	}
	return out
}
