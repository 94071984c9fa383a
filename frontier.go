package sqsadapter

import (
	"sync"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Connection state recovery across servers needs to know which broadcasts the closing server had
// already sent to a client. Packets of Go senders carry their sender's sequence number (msgId),
// so "what this server had acted on" is, per sender, a range of numbers with a few holes (the
// messages that never came): the frontier. A closing server hands it off with each session, and
// the server the client reconnects to sends the client exactly the broadcasts outside it.

// maxMissingPerSender bounds the holes remembered per sender; past it the oldest are forgotten,
// which would make a later restore skip those messages (they are lost messages anyway).
const maxMissingPerSender = 1000

// maxFrontierIDs bounds the unnumbered message ids (emitters) a frontier lists.
const maxFrontierIDs = 2000

// seenMessages tracks which numbered cluster messages this server has acted on, per sender, and
// the unnumbered ids (emitters) of the last recoveryLookback.
type seenMessages struct {
	mu      sync.Mutex
	senders map[string]*seenStream
	ids     []seenID // oldest first
	version uint64   // changes with every addition: snapshots are reused while it stands
	cached  *wire.Frontier
	cachedV uint64
}

type seenStream struct {
	first, last uint64
	missing     map[uint64]struct{}
}

type seenID struct {
	id string
	at time.Time
}

func newSeenMessages() *seenMessages {
	return &seenMessages{senders: map[string]*seenStream{}}
}

// addMessage records m as acted on, if it carries a number or an id that means the same on every
// server.
func (s *seenMessages) addMessage(m *wire.Message, now time.Time) {
	switch kind, sender, n := classify(m); kind {
	case entrySequenced:
		s.add(sender, n)
	case entryGlobalID:
		s.addID(m.ID, now)
	}
}

// add records message n of sender's cluster stream.
func (s *seenMessages) add(sender string, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.senders[sender]
	if st == nil {
		s.version++
		s.senders[sender] = &seenStream{first: n, last: n, missing: map[uint64]struct{}{}}
		return
	}
	if _, hole := st.missing[n]; n >= st.first && n <= st.last && !hole {
		return // recorded already (a broadcast is recorded as it is sent, and again after): the snapshot stands
	}
	s.version++
	switch {
	case n > st.last:
		for k := st.last + 1; k < n && len(st.missing) < maxMissingPerSender; k++ {
			st.missing[k] = struct{}{}
		}
		st.last = n
	case n < st.first:
		for k := n + 1; k < st.first && len(st.missing) < maxMissingPerSender; k++ {
			st.missing[k] = struct{}{}
		}
		st.first = n
	default:
		delete(st.missing, n)
	}
}

func (s *seenMessages) addID(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++
	s.ids = append(s.ids, seenID{id, now})
	drop := 0
	for drop < len(s.ids) && (now.Sub(s.ids[drop].at) > recoveryLookback || len(s.ids)-drop > maxFrontierIDs) {
		drop++
	}
	s.ids = s.ids[drop:]
}

// coverFrom returns the first number of sender's stream this server has heard, 0 if none.
func (s *seenMessages) coverFrom(sender string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.senders[sender]; st != nil {
		return st.first
	}
	return 0
}

// snapshot returns the frontier as it stands. The result is shared: do not modify it.
func (s *seenMessages) snapshot(now time.Time) *wire.Frontier {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached != nil && s.cachedV == s.version {
		return s.cached
	}
	f := &wire.Frontier{Senders: make(map[string]wire.Seen, len(s.senders))}
	for sender, st := range s.senders {
		seen := wire.Seen{First: st.first, Last: st.last}
		for n := range st.missing {
			seen.Missing = append(seen.Missing, n)
		}
		f.Senders[sender] = seen
	}
	for _, e := range s.ids {
		if now.Sub(e.at) <= recoveryLookback {
			f.IDs = append(f.IDs, e.id)
		}
	}
	s.cached, s.cachedV = f, s.version
	return f
}

// frontierSet is a received frontier made quick to query.
type frontierSet struct {
	senders map[string]seenRange
	ids     map[string]bool
}

type seenRange struct {
	first, last uint64
	missing     map[uint64]bool
}

func newFrontierSet(f *wire.Frontier) *frontierSet {
	fs := &frontierSet{senders: make(map[string]seenRange, len(f.Senders)), ids: make(map[string]bool, len(f.IDs))}
	for sender, seen := range f.Senders {
		r := seenRange{first: seen.First, last: seen.Last}
		if len(seen.Missing) > 0 {
			r.missing = make(map[uint64]bool, len(seen.Missing))
			for _, n := range seen.Missing {
				r.missing[n] = true
			}
		}
		fs.senders[sender] = r
	}
	for _, id := range f.IDs {
		fs.ids[id] = true
	}
	return fs
}

// has reports whether the server the frontier came from had acted on the log entry e.
func (fs *frontierSet) has(e *logEntry) bool {
	switch e.kind {
	case entrySequenced:
		r, ok := fs.senders[e.sender]
		return ok && e.seq >= r.first && e.seq <= r.last && !r.missing[e.seq]
	case entryGlobalID:
		return fs.ids[e.offset]
	}
	return false
}
