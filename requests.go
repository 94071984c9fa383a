package sqsadapter

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Requests to the other nodes that wait for their answers: broadcasts with acknowledgements
// (answered per client, until their timeout), fetchSockets and serverSideEmit with
// acknowledgements (one answer per node known when the request left).

// pendingAck routes the responses to a broadcast with acknowledgements until its timeout.
type pendingAck struct {
	clientCount func(uint64)
	ack         socket.Ack
	single      bool // the emit expects one response (a remote socket's emitWithAck)
	timer       *time.Timer
}

func (a *namespaceAdapter) forgetAck(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.acks[id]; ok {
		p.timer.Stop()
		delete(a.acks, id)
	}
}

func (a *namespaceAdapter) pendingAckOf(id string) *pendingAck {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acks[id]
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
		missing := slices.Sorted(maps.Keys(r.missing))
		a.mu.Unlock()
		if pending {
			r.done(r.responses, a.timeoutError(missing))
		}
	})
	a.requests[id] = r
	return id
}

// timeoutError says how many responses a request missed, and which of them were coming in parts
// that did not all arrive.
func (a *namespaceAdapter) timeoutError(missing []string) error {
	var incomplete []string
	for _, uid := range missing {
		incomplete = append(incomplete, a.b.transport.parts.incompleteFrom(uid, a.uid)...)
	}
	if len(incomplete) == 0 {
		return fmt.Errorf("timeout reached: missing %d responses", len(missing))
	}
	return fmt.Errorf("timeout reached: missing %d responses: %s", len(missing), strings.Join(incomplete, "; "))
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
