package sqsadapter

import (
	"context"
	"fmt"
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
		a.b.log.Warn("sqsadapter: node seems down", "nsp", a.name, "node", uid, "silentFor", a.b.opts.HeartbeatTimeout)
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

// pendingRequest waits for one response from each of the nodes known when it was sent
// (fetchSockets, serverSideEmit with acknowledgements).
type pendingRequest struct {
	missing   map[string]struct{}
	responses []any
	timer     *time.Timer
	// done is called once, outside the adapter's lock, with the responses and nil, or with the
	// responses so far and the reason they are incomplete.
	done func(responses []any, err error)
}

func (r *pendingRequest) finish(err error) {
	r.timer.Stop()
	r.done(r.responses, err)
}

// startRequest registers a request to the nodes known now and returns its id; it returns "" if
// there are none to ask, or the adapter is closed.
func (a *namespaceAdapter) startRequest(timeout time.Duration, local []any, done func([]any, error)) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || len(a.nodes) == 0 {
		return ""
	}
	id := randomHex(8)
	r := &pendingRequest{missing: make(map[string]struct{}, len(a.nodes)), responses: local, done: done}
	for uid := range a.nodes {
		r.missing[uid] = struct{}{}
	}
	r.timer = time.AfterFunc(timeout, func() {
		a.mu.Lock()
		_, pending := a.requests[id]
		delete(a.requests, id)
		missing := len(r.missing)
		a.mu.Unlock()
		if pending {
			r.done(r.responses, fmt.Errorf("timeout reached: missing %d responses", missing))
		}
	})
	a.requests[id] = r
	return id
}

// cancelRequest ends a request whose message could not be published.
func (a *namespaceAdapter) cancelRequest(id string, err error) {
	a.mu.Lock()
	r, ok := a.requests[id]
	delete(a.requests, id)
	a.mu.Unlock()
	if ok {
		r.finish(err)
	}
}

// addResponse records the answer of node uid to request id.
func (a *namespaceAdapter) addResponse(id, uid string, values ...any) {
	a.mu.Lock()
	r, ok := a.requests[id]
	if !ok {
		a.mu.Unlock()
		return // answered already, timed out, or not ours
	}
	if _, waiting := r.missing[uid]; !waiting {
		a.mu.Unlock()
		return // a node unknown when the request left, or a second answer
	}
	delete(r.missing, uid)
	r.responses = append(r.responses, values...)
	complete := len(r.missing) == 0
	if complete {
		delete(a.requests, id)
	}
	a.mu.Unlock()
	if complete {
		r.finish(nil)
	}
}
