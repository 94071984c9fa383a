package sqsadapter

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Messages in parts (issue 13): a cluster message over the SNS limit that only Go servers have to
// read is published as PART messages (see internal/wire/part.go), and the receiver puts them
// back together before the orderer, so that the whole message takes the place of its own msgId
// in its sender's order, is checked against its own signature, de-duplicated and delivered
// exactly as if it had come whole. A part that never comes leaves a gap that the orderer gives
// up on after its reorder window; the parts that did come are forgotten after partTimeout, or
// sooner when maxPartBytes would be passed, and counted in Stats.IncompleteMessages.

// partTimeout is how long the parts of an incomplete message are kept: a part whose publish is
// retried can come up to publishRetryWindow after the others.
const partTimeout = publishRetryWindow

// maxPartBytes bounds the bytes held for incomplete messages; past it the oldest are dropped.
const maxPartBytes = 2 * wire.MaxSplitSize

// cannotSplit says why m, too large for SNS, may not travel in parts, or "" if it may: every
// receiver that must read it has to be a Go server.
func (t *transport) cannotSplit(m *wire.Message) string {
	if m.RequesterUID != "" {
		if t.large.isGoNode(m.RequesterUID) {
			return ""
		}
		return fmt.Sprintf("the requester is not known as a Go server: a Node server cannot put parts together, "+
			"and answers to it stay under the SNS limit of %d bytes", wire.MaxMessageSize)
	}
	if m.Type == wire.FetchSockets {
		return "a FETCH_SOCKETS request is answered by Node servers too"
	}
	var nodeServers int
	for id := range t.up.liveNodeIDs() {
		if id != t.nodeID && !t.large.isGoNode(id) {
			nodeServers++
		}
	}
	if nodeServers > 0 {
		return count(nodeServers, "server") + " of the cluster cannot put parts together (Node servers); " +
			"set Options.LargeMessageBucket to send large messages through S3"
	}
	return ""
}

// publishParts publishes m, over the SNS limit, in parts, all or none; a message that cannot
// be split is counted in Stats.TooLarge and its error says why.
func (t *transport) publishParts(m *wire.Message) error {
	tooLarge := func(err error) error {
		atomic.AddUint64(&t.stats.s.TooLarge, 1)
		return err
	}
	if reason := t.cannotSplit(m); reason != "" {
		return tooLarge(&MessageTooLargeError{Type: m.Type.String(), Nsp: m.Nsp, Size: m.Size(), Limit: wire.MaxMessageSize,
			Requester: m.RequesterUID, Reason: reason})
	}
	parts, err := m.Split(wire.PartChunkSize(m))
	if err != nil {
		return tooLarge(err)
	}
	for _, p := range parts {
		t.up.sign(p)
	}
	if err := t.pub.enqueueAll(parts); err != nil {
		return fmt.Errorf("%s in %s: %w", m.Type, count(len(parts), "part"), err)
	}
	atomic.AddUint64(&t.stats.s.MessagesSplit, 1)
	atomic.AddUint64(&t.stats.s.PartsSent, uint64(len(parts)))
	return nil
}

// reassembly holds the parts of the messages that are still incomplete.
type reassembly struct {
	t *transport

	limit int // maxPartBytes; tests lower it

	mu       sync.Mutex
	messages map[string]*partial // by sender uid and whole msgId
	held     int                 // bytes of the chunks held
	done     *recentIDs          // messages completed or given up on: later copies of their parts are dropped
}

// partial is an incomplete message: what its first part said, and the chunks so far.
type partial struct {
	first   *wire.Message
	data    *wire.PartData // of the first part heard, without its chunk
	chunks  [][]byte       // by index
	have    int
	bytes   int
	started time.Time
}

func newReassembly(t *transport) *reassembly {
	return &reassembly{t: t, limit: maxPartBytes, messages: map[string]*partial{}, done: newRecentIDs(10_000)}
}

// add takes one received part, admitted; it returns the whole message when this part completes
// it, and nil otherwise. A part that is malformed or does not agree with the others of its
// message is counted, logged and dead-lettered, and its message given up on.
func (r *reassembly) add(m *wire.Message, now time.Time) *wire.Message {
	t := r.t
	if nodeIDOf(m.UID, t.nodeID) == t.nodeID || (m.RequesterUID != "" && nodeIDOf(m.RequesterUID, t.nodeID) != t.nodeID) {
		atomic.AddUint64(&t.stats.s.NotForUs, 1) // with DisableSubscriptionFilter
		return nil
	}
	p, err := wire.ParsePart(m)
	if err != nil {
		r.malformed(m, err)
		return nil
	}
	key := m.UID + "\x00" + p.ID
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	if r.done.has(key) {
		atomic.AddUint64(&t.stats.s.Duplicates, 1)
		return nil
	}
	msg := r.messages[key]
	if msg == nil {
		header := *p
		header.Chunk = nil
		msg = &partial{first: m, data: &header, chunks: make([][]byte, p.Count), started: now}
		r.messages[key] = msg
	}
	if err := msg.agrees(m, p); err != nil {
		r.forgetLocked(key)
		r.malformed(m, err)
		return nil
	}
	if msg.chunks[p.Index] != nil {
		atomic.AddUint64(&t.stats.s.Duplicates, 1)
		return nil
	}
	r.makeRoomLocked(len(p.Chunk), key)
	msg.chunks[p.Index] = p.Chunk
	msg.have++
	msg.bytes += len(p.Chunk)
	r.held += len(p.Chunk)
	if msg.have < p.Count {
		return nil
	}
	r.forgetLocked(key)
	if msg.bytes != p.Size {
		r.malformed(m, fmt.Errorf("%w: parts of %d bytes in all, of a message of %d", wire.ErrMalformed, msg.bytes, p.Size))
		return nil
	}
	atomic.AddUint64(&t.stats.s.MessagesReassembled, 1)
	return &wire.Message{Type: p.Type, Nsp: m.Nsp, UID: m.UID, RequesterUID: m.RequesterUID,
		Data: slices.Concat(msg.chunks...), ID: p.ID, Sig: p.Sig, Raw: m.Raw}
}

// agrees checks part p (message m) against the first part heard of its message.
func (msg *partial) agrees(m *wire.Message, p *wire.PartData) error {
	f := msg.data
	switch {
	case p.Type != f.Type || p.Count != f.Count || p.Size != f.Size || p.Sig != f.Sig ||
		m.Nsp != msg.first.Nsp || m.RequesterUID != msg.first.RequesterUID:
		return fmt.Errorf("%w: part %d of %s %s does not match its first part", wire.ErrMalformed, p.Index, p.Type, wire.Truncate(p.ID))
	case msg.bytes+len(p.Chunk) > p.Size:
		return fmt.Errorf("%w: parts of %s %s hold more than its %d bytes", wire.ErrMalformed, p.Type, wire.Truncate(p.ID), p.Size)
	}
	// Every part but the last carries the same number of bytes.
	for i, c := range msg.chunks {
		if c != nil && i != p.Count-1 && p.Index != p.Count-1 && len(c) != len(p.Chunk) {
			return fmt.Errorf("%w: parts %d and %d of %s %s differ in size", wire.ErrMalformed, i, p.Index, p.Type, wire.Truncate(p.ID))
		}
	}
	return nil
}

func (r *reassembly) malformed(m *wire.Message, err error) {
	t := r.t
	atomic.AddUint64(&t.stats.s.Malformed, 1)
	t.log.Warn("sqsadapter: dropped malformed part", "messageId", m.ID, "from", m.UID, "nsp", m.Nsp, "error", err)
	if m.Raw != nil {
		t.dlq.add(m.Raw, deadLetterMalformed+": "+strings.TrimPrefix(err.Error(), wire.ErrMalformed.Error()+": "), m.UID)
	}
}

func (r *reassembly) forgetLocked(key string) {
	if msg, ok := r.messages[key]; ok {
		r.held -= msg.bytes
		delete(r.messages, key)
	}
	r.done.seen(key)
}

// makeRoomLocked gives up on the oldest incomplete messages (other than keep) until n more
// bytes fit under r.limit.
func (r *reassembly) makeRoomLocked(n int, keep string) {
	for r.held+n > r.limit {
		oldest := ""
		for key, msg := range r.messages {
			if key != keep && (oldest == "" || msg.started.Before(r.messages[oldest].started)) {
				oldest = key
			}
		}
		if oldest == "" {
			return // only keep, which is under MaxSplitSize: less than maxPartBytes
		}
		r.giveUpLocked(oldest, fmt.Sprintf("%d bytes of incomplete messages held, the most kept", r.held))
	}
}

// expire gives up on the messages whose parts stopped coming partTimeout ago.
func (r *reassembly) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
}

func (r *reassembly) expireLocked(now time.Time) {
	for key, msg := range r.messages {
		if now.Sub(msg.started) > partTimeout {
			r.giveUpLocked(key, fmt.Sprintf("no more parts within %v", partTimeout))
		}
	}
}

func (r *reassembly) giveUpLocked(key, why string) {
	msg := r.messages[key]
	atomic.AddUint64(&r.t.stats.s.IncompleteMessages, 1)
	r.t.log.Warn("sqsadapter: dropped incomplete message", "type", msg.data.Type, "messageId", msg.data.ID,
		"from", msg.first.UID, "nsp", msg.first.Nsp, "parts", msg.data.Count, "received", msg.have,
		"missing", msg.missing(), "reason", why)
	r.forgetLocked(key)
}

// missing lists the parts not received, 1-based as people count, at most the first five.
func (msg *partial) missing() string {
	var out []string
	for i, c := range msg.chunks {
		if c == nil {
			if len(out) == 5 {
				out = append(out, "…")
				break
			}
			out = append(out, fmt.Sprint(i+1))
		}
	}
	return strings.Join(out, ", ")
}

// incompleteFrom describes the incomplete responses of sender uid to requester, for the error
// of a request that timed out waiting for them.
func (r *reassembly) incompleteFrom(uid, requester string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, msg := range r.messages {
		if msg.first.UID == uid && msg.first.RequesterUID == requester {
			out = append(out, fmt.Sprintf("%s from %s incomplete: part %s of %d missing (%d received)",
				msg.data.Type, uid, msg.missing(), msg.data.Count, msg.have))
		}
	}
	return out
}
