package sqsadapter

import (
	"container/heap"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Who may speak on the topic. The queue policy admits only the topic, but anything published to
// the topic reaches every server, and any principal allowed to publish there could otherwise
// broadcast, disconnect sockets or join them to rooms as a server. With Options.SigningKeys, a
// server signs what it publishes (internal/wire/sign.go) and acts only on messages signed with
// one of the keys, recently, once.
//
// Received messages pass two checks: admit, before anything else looks at the message (its
// msgId above all: de-duplication must not record the msgId of a forgery, or the genuine message
// would be dropped as its copy), and fresh, after de-duplication, which refuses a signed message
// acted on before. Both count and report what they refuse; neither blocks nor panics.

// DefaultSignatureMaxAge is the default Options.SignatureMaxAge: the 30 s a publish may be
// retried, the 60 s a message may wait in a queue, and half a minute for clocks that disagree.
const DefaultSignatureMaxAge = 2 * time.Minute

// minSigningKeyLen is the shortest key accepted: 128 bits.
const minSigningKeyLen = 16

// Why a received message was refused; RejectedMessageError wraps one of them.
var (
	// ErrUnsigned: the message carries no signature.
	ErrUnsigned = wire.ErrUnsigned
	// ErrBadSignature: no key of Options.SigningKeys made the signature (or it is malformed).
	ErrBadSignature = wire.ErrBadSignature
	// ErrSignatureExpired: the signature's time is further than Options.SignatureMaxAge from
	// this server's clock.
	ErrSignatureExpired = errors.New("signature too old (or from the future)")
	// ErrReplayed: a signed message with this msgId was acted on already.
	ErrReplayed = errors.New("replayed: a message with this msgId was acted on already")
)

// RejectedMessageError is reported (logged, and handed to Options.OnError) for a received
// message refused for its signature: at most once a minute per sender uid, with the number
// refused since the sender's last report. The message is deleted from the queue.
type RejectedMessageError struct {
	Type    string // the cluster message type, e.g. "BROADCAST"
	Nsp     string // its namespace
	UID     string // the sender uid it claims
	MsgID   string // its msgId, "" if it has none
	Reason  error  // ErrUnsigned, ErrBadSignature, ErrSignatureExpired or ErrReplayed, wrapped
	Refused uint64 // messages from this uid refused since its last report, this one included
}

func (e *RejectedMessageError) Error() string {
	id := "no msgId"
	if e.MsgID != "" {
		id = fmt.Sprintf("msgId %q", e.MsgID)
	}
	s := fmt.Sprintf("refused %s on namespace %q from uid %q (%s): %v", e.Type, e.Nsp, e.UID, id, e.Reason)
	if errors.Is(e.Reason, ErrUnsigned) {
		s += " (a Node server, an emitter or a Go server without the signing keys, or a forgery)"
	}
	if e.Refused > 1 {
		s += fmt.Sprintf("; %d refused from this uid since its last report", e.Refused)
	}
	return s
}

func (e *RejectedMessageError) Unwrap() error { return e.Reason }

// guard signs what this server publishes and checks what it receives.
type guard struct {
	keys           [][]byte // the first signs; nil: signing is off
	topic          string
	maxAge         time.Duration
	acceptUnsigned bool
	now            func() time.Time
	stats          *counters
	errs           reporter

	mu      sync.Mutex
	seen    replayMemory
	reports rejectReports
}

func newGuard(o *Options, stats *counters, errs reporter) *guard {
	return &guard{
		keys:           o.SigningKeys,
		topic:          o.TopicName,
		maxAge:         o.SignatureMaxAge,
		acceptUnsigned: o.AcceptUnsigned,
		now:            time.Now,
		stats:          stats,
		errs:           errs,
		seen:           replayMemory{until: map[string]time.Time{}},
		reports:        rejectReports{senders: map[string]*senderReports{}},
	}
}

// sign signs m, whose msgId is set, when this server has keys.
func (g *guard) sign(m *wire.Message) {
	if len(g.keys) > 0 {
		m.Sign(g.keys[0], g.topic, g.now())
	}
}

// admit reports whether a received message may be looked at further: without keys, every
// message; with keys, a message signed by one of them within maxAge of now (or an unsigned one
// with acceptUnsigned). It runs before de-duplication.
func (g *guard) admit(m *wire.Message) bool {
	if len(g.keys) == 0 {
		return true
	}
	s := &g.stats.s
	signedAt, err := m.VerifySig(g.keys, g.topic)
	switch {
	case errors.Is(err, ErrUnsigned):
		atomic.AddUint64(&s.Unsigned, 1)
		if g.acceptUnsigned {
			return true
		}
		g.refuse(m, err)
		return false
	case err != nil:
		atomic.AddUint64(&s.BadSignatures, 1)
		g.refuse(m, err)
		return false
	}
	if age := g.now().Sub(signedAt); age > g.maxAge || age < -g.maxAge {
		atomic.AddUint64(&s.ExpiredSignatures, 1)
		g.refuse(m, fmt.Errorf("%w: signed %v before this server's clock (limit %v)", ErrSignatureExpired,
			age.Round(time.Millisecond), g.maxAge))
		return false
	}
	return true
}

// fresh reports whether a signed message admitted and not a redelivery among the last ones is
// acted on for the first time. Its msgId is remembered until its signature expires, so a replay
// later than the transport's de-duplication window is refused too, and memory stays bounded by
// the messages of 2 × maxAge.
func (g *guard) fresh(m *wire.Message) bool {
	if len(g.keys) == 0 || m.Sig == "" {
		return true
	}
	signedAt, _ := wire.SigTime(m.Sig) // admit checked it
	now := g.now()
	g.mu.Lock()
	first := g.seen.add(m.ID, signedAt.Add(g.maxAge), now)
	g.mu.Unlock()
	if !first {
		atomic.AddUint64(&g.stats.s.Replays, 1)
		g.refuse(m, ErrReplayed)
	}
	return first
}

// refuse reports a refused message, at most once per interval per sender uid.
func (g *guard) refuse(m *wire.Message, reason error) {
	uid := wire.Truncate(m.UID)
	due, refused := g.reports.due(uid, g.now())
	if !due {
		return
	}
	g.errs.report(&RejectedMessageError{
		Type: m.Type.String(), Nsp: wire.Truncate(m.Nsp), UID: uid, MsgID: wire.Truncate(m.ID),
		Reason: reason, Refused: refused,
	})
}

// replayMemory remembers msgIds until a time each, and forgets them after it.
type replayMemory struct {
	until map[string]time.Time
	order expiryHeap // the same entries, soonest first
}

// add records id until the given time and reports whether it was new; it first forgets what
// expired before now.
func (r *replayMemory) add(id string, until, now time.Time) bool {
	for len(r.order) > 0 && r.order[0].until.Before(now) {
		delete(r.until, heap.Pop(&r.order).(expiring).id)
	}
	if _, ok := r.until[id]; ok {
		return false
	}
	r.until[id] = until
	heap.Push(&r.order, expiring{id, until})
	return true
}

type expiring struct {
	id    string
	until time.Time
}

type expiryHeap []expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiring)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// How often refusals are reported: once per interval per sender uid, for at most maxSenders
// uids at a time (a forger can claim any uid); the senders beyond share one report.
const (
	rejectReportInterval = time.Minute
	maxReportedSenders   = 1000
)

type rejectReports struct {
	mu      sync.Mutex
	senders map[string]*senderReports
	pruned  time.Time // senders not reported within the interval were last forgotten then
}

type senderReports struct {
	last    time.Time // of the last report
	refused uint64    // since then
}

// due counts a refusal from uid and reports whether to report it now, with the count of
// refusals since uid's last report.
func (r *rejectReports) due(uid string, now time.Time) (bool, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.senders[uid]
	if !ok && len(r.senders) >= maxReportedSenders {
		if now.Sub(r.pruned) >= rejectReportInterval {
			r.pruned = now
			for k, v := range r.senders {
				if now.Sub(v.last) >= rejectReportInterval {
					delete(r.senders, k)
				}
			}
		}
		if len(r.senders) >= maxReportedSenders {
			uid = "" // every further sender shares one report
			s, ok = r.senders[uid]
		}
	}
	if !ok {
		s = &senderReports{}
		r.senders[uid] = s
	}
	s.refused++
	if !s.last.IsZero() && now.Sub(s.last) < rejectReportInterval {
		return false, 0
	}
	n := s.refused
	s.last, s.refused = now, 0
	return true, n
}
