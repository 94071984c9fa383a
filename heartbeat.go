package sqsadapter

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Cluster membership, as socket.io-adapter's ClusterAdapterWithHeartbeat keeps it: every
// namespace adapter counts the uids it hears from, drops one that is silent for longer than the
// heartbeat timeout or says ADAPTER_CLOSE, and publishes a HEARTBEAT when it has published
// nothing else for a while. One goroutine per builder drives all namespaces, and it stops with
// the builder (the Go library's own heartbeat timer keeps firing after Close).
//
// Two things keep an idle cluster's bill down, where every heartbeat reaches every queue:
//   - Heartbeats leave at the same wall-clock instants on every server (multiples of the
//     interval since the Unix epoch), so that they arrive together and a receive takes up to ten
//     of them (see HeartbeatGather in queue.go), instead of one receive per heartbeat.
//   - Between servers of this adapter, which know each other by the msgId of their messages,
//     heartbeats are rarer (GoHeartbeatInterval); a namespace that counts a Node server sends
//     them every HeartbeatInterval, as upstream's servers expect.

// heartbeatTick is how often the heartbeat goroutine looks for silent nodes.
func (o *Options) heartbeatTick() time.Duration {
	return min(time.Second, o.HeartbeatInterval/2, (o.HeartbeatTimeout-o.HeartbeatInterval)/2)
}

// goHeartbeatDefaults fills in the Go-peer heartbeat options after the others have theirs.
func (o *Options) goHeartbeatDefaults() {
	if o.GoHeartbeatInterval == 0 && o.HeartbeatInterval > 0 && o.HeartbeatInterval <= math.MaxInt64/3 {
		o.GoHeartbeatInterval = 3 * o.HeartbeatInterval
	}
	if o.GoHeartbeatTimeout == 0 && o.GoHeartbeatInterval > 0 && o.GoHeartbeatInterval <= math.MaxInt64/2 {
		o.GoHeartbeatTimeout = max(2*o.GoHeartbeatInterval, o.HeartbeatTimeout)
	}
}

func (o *Options) validateGoHeartbeats() error {
	if o.GoHeartbeatInterval < o.HeartbeatInterval {
		return fmt.Errorf("%w: GoHeartbeatInterval (%v) may not be shorter than HeartbeatInterval (%v)",
			ErrInvalidOptions, o.GoHeartbeatInterval, o.HeartbeatInterval)
	}
	if o.GoHeartbeatTimeout <= o.GoHeartbeatInterval || o.GoHeartbeatTimeout < o.HeartbeatTimeout {
		return fmt.Errorf("%w: GoHeartbeatTimeout (%v) must be longer than GoHeartbeatInterval (%v) and at least "+
			"HeartbeatTimeout (%v), or live nodes are dropped between two heartbeats",
			ErrInvalidOptions, o.GoHeartbeatTimeout, o.GoHeartbeatInterval, o.HeartbeatTimeout)
	}
	return nil
}

// peer is another node serving a namespace.
type peer struct {
	seen     time.Time // last heard
	goServer bool      // runs this adapter: its heartbeats come every GoHeartbeatInterval
}

// alignedBeat is the last multiple of interval since the Unix epoch at or before now: the
// instant every server sends the heartbeats of that interval.
func alignedBeat(now time.Time, interval time.Duration) time.Time {
	ns := now.UnixNano()
	return time.Unix(0, ns-ns%int64(interval))
}

// untilNextBeat is how long until the next aligned instant of either interval.
func (o *Options) untilNextBeat(now time.Time) time.Duration {
	next := alignedBeat(now, o.HeartbeatInterval).Add(o.HeartbeatInterval)
	if g := alignedBeat(now, o.GoHeartbeatInterval).Add(o.GoHeartbeatInterval); g.Before(next) {
		next = g
	}
	return next.Sub(now)
}

// beatDue says whether a namespace whose heartbeats come every interval sends one at now, given
// the aligned instant it last considered and when it last published anything: once per
// aligned instant, unless it published within half an interval before it (any message proves
// it alive; the next heartbeat then follows at most 1.5 intervals after that message). It
// returns the aligned instant now belongs to, to be passed back as last.
func beatDue(now, last, lastPublish time.Time, interval time.Duration) (beat time.Time, due bool) {
	beat = alignedBeat(now, interval)
	if !beat.After(last) {
		return last, false
	}
	return beat, lastPublish.Before(beat.Add(-interval / 2))
}

// heartbeatLoop sends the heartbeats at the aligned instants and drops the nodes that went
// silent.
func (b *AdapterBuilder) heartbeatLoop(ctx context.Context) {
	expiry := time.NewTicker(b.opts.heartbeatTick())
	defer expiry.Stop()
	beat := time.NewTimer(b.opts.untilNextBeat(time.Now()))
	defer beat.Stop()
	considered := map[*namespaceAdapter]time.Time{} // the aligned instant each namespace last considered
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-expiry.C:
			for _, a := range b.namespaceAdapters() {
				a.expireNodes(now)
			}
		case <-beat.C:
			now := time.Now()
			next := map[*namespaceAdapter]time.Time{} // drops the namespaces that closed
			for _, a := range b.namespaceAdapters() {
				at, due := beatDue(now, considered[a], time.Unix(0, a.lastPublish.Load()), a.heartbeatInterval())
				next[a] = at
				if due {
					a.publishOrReport(wire.Heartbeat, nil)
				}
			}
			considered = next
			beat.Reset(b.opts.untilNextBeat(time.Now()))
		}
	}
}

// heartbeatInterval is HeartbeatInterval while the namespace counts a Node server, and
// GoHeartbeatInterval otherwise.
func (a *namespaceAdapter) heartbeatInterval() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.nodes {
		if !p.goServer {
			return a.b.opts.HeartbeatInterval
		}
	}
	return a.b.opts.GoHeartbeatInterval
}

// nodeSeen records a message from m's sender.
func (a *namespaceAdapter) nodeSeen(m *wire.Message) {
	if m.UID == wire.EmitterUID {
		return // emitters are not nodes
	}
	// Every message of this adapter carries a msgId naming its sender's node id, which starts its
	// uid; a Node server's message has none (its ID is then the SQS message id).
	sender, _, _, numbered := wire.ParseSequencedID(m.ID)
	goServer := numbered && sender == nodeIDOf(m.UID, a.b.nodeID)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.nodes[m.UID] = peer{seen: time.Now(), goServer: goServer}
	}
}

// timeout is how long p may stay silent before it is dropped.
func (o *Options) timeout(p peer) time.Duration {
	if p.goServer {
		return o.GoHeartbeatTimeout
	}
	return o.HeartbeatTimeout
}

func (a *namespaceAdapter) expireNodes(now time.Time) {
	type silent struct {
		uid   string
		after time.Duration
	}
	var gone []silent
	a.mu.Lock()
	for uid, p := range a.nodes {
		if timeout := a.b.opts.timeout(p); now.Sub(p.seen) > timeout {
			gone = append(gone, silent{uid, timeout})
		}
	}
	a.mu.Unlock()
	for _, s := range gone {
		a.b.log.Warn("sqsadapter: node seems down", "nsp", a.name, "uid", s.uid, "node", nodeIDOf(s.uid, a.b.nodeID),
			"silentFor", s.after)
		a.removeNode(s.uid)
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

// quietBeforeGather is how long no message other than heartbeats must have come before the
// poll waits to gather heartbeats: while messages flow, waiting would delay them, and the
// receives are paid for by what they bring anyway.
const quietBeforeGather = time.Second

// heartbeatGather decides the long poll's waits between receives. The servers send their
// heartbeats at the same aligned instants, and a long poll returns as soon as one message is
// there: received at once, a burst of N heartbeats costs about N receives; after a short
// wait, N/10.
type heartbeatGather struct {
	lastBusy time.Time // when a receive last brought something other than heartbeats
}

// pause is how long to wait after a receive that brought msgs at now: wait when they are
// heartbeats only, fewer than a full batch (a full one means more are there already), and the
// queue has been quiet otherwise.
func (g *heartbeatGather) pause(msgs []sqstypes.Message, now time.Time, wait time.Duration) time.Duration {
	if len(msgs) == 0 {
		return 0
	}
	for i := range msgs {
		if b := deref(msgs[i].Body); b != heartbeatBody && b != initialHeartbeatBody {
			g.lastBusy = now
			return 0
		}
	}
	if wait <= 0 || len(msgs) == maxBatch || now.Sub(g.lastBusy) < quietBeforeGather {
		return 0
	}
	return wait
}

// The SQS bodies of heartbeats: the message type, in decimal.
var (
	heartbeatBody        = strconv.Itoa(int(wire.Heartbeat))
	initialHeartbeatBody = strconv.Itoa(int(wire.InitialHeartbeat))
)
