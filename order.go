package sqsadapter

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// SNS standard topics and SQS standard queues keep no order, and this adapter publishes and
// receives with several requests in flight, so messages of one sender can arrive in any order.
// The orderer puts each Go sender's messages back in the order it numbered them (see
// wire.SequencedID): a message that arrives ahead of one still missing is held until the
// missing one arrives or the reorder window has passed since the gap was noticed; then the
// missing one is given up on, the held ones go on, and if the missing one comes after all it is
// delivered when it comes and counted as late. It also drops messages seen already (SQS
// delivers at least once; a retried publish reaches the topic twice). Messages without a
// sequence number (Node servers, emitters) pass straight through.

// orderForget is how long the orderer remembers a stream that went quiet, or a message it gave
// up on: past the queue's retention, nothing older can still arrive.
const orderForget = 2 * queueMessageRetention

// maxSkipped bounds how many given-up messages of one stream are remembered.
const maxSkipped = 10_000

type orderer struct {
	window time.Duration // negative: no ordering
	self   string        // this node's id: its own messages and others' responses are not ordered
	stats  *counters

	mu        sync.Mutex
	recent    *recentIDs
	streams   map[string]*stream // by "<sender>/<stream>"
	ready     []*wire.Message    // in delivery order
	room      chan struct{}      // closed when ready drains; nil when no one waits
	pausedAt  time.Time          // when a poller started waiting for room; zero while none waits
	lastSweep time.Time

	wake chan struct{} // something is ready, or a gap opened
}

// stream is what the orderer knows of one sender's numbered messages.
type stream struct {
	first    uint64                 // the first number heard: earlier ones may still come
	next     uint64                 // the number to deliver next
	held     map[uint64]heldMessage // arrived ahead of next
	gapSince time.Time              // when the oldest held message arrived
	skipped  map[uint64]time.Time   // given up on, and when
	lastSeen time.Time
}

type heldMessage struct {
	m       *wire.Message
	arrived time.Time
}

func newOrderer(window time.Duration, self string, stats *counters) *orderer {
	return &orderer{
		window:  window,
		self:    self,
		stats:   stats,
		recent:  newRecentIDs(10_000),
		streams: map[string]*stream{},
		wake:    make(chan struct{}, 1),
	}
}

// add takes a received message, checked and with its msgId (or SQS MessageId) in m.ID.
func (o *orderer) add(m *wire.Message, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if m.ID != "" && o.recent.seen(m.ID) {
		atomic.AddUint64(&o.stats.s.Duplicates, 1)
		return
	}
	sender, name, n, ok := wire.ParseSequencedID(m.ID)
	if !ok || o.window < 0 || sender == o.self || (name != wire.AllNodes && name != o.self) {
		o.push(m)
		return
	}
	key := sender + "/" + name
	s := o.streams[key]
	if s == nil {
		// The first message heard from this stream: whatever came before was sent before this
		// node listened, or overtaken by this one, and is delivered when it comes.
		s = &stream{first: n, next: n + 1, held: map[uint64]heldMessage{}, skipped: map[uint64]time.Time{}, lastSeen: now}
		o.streams[key] = s
		o.push(m)
		return
	}
	s.lastSeen = now
	switch {
	case n == s.next:
		o.push(m)
		s.next++
		o.release(s)
	case n > s.next:
		if _, dup := s.held[n]; dup {
			atomic.AddUint64(&o.stats.s.Duplicates, 1)
			return
		}
		if len(s.held) == 0 {
			s.gapSince = now
		}
		s.held[n] = heldMessage{m, now}
		atomic.AddUint64(&o.stats.s.Reordered, 1)
		o.signal()
	default: // n < s.next: given up on, from before the first heard, or delivered already
		if _, late := s.skipped[n]; late || n < s.first {
			delete(s.skipped, n) // a second copy of one before the first is caught by its msgId
			atomic.AddUint64(&o.stats.s.LateDeliveries, 1)
			o.push(m)
		} else {
			atomic.AddUint64(&o.stats.s.Duplicates, 1)
		}
	}
}

// release delivers the held messages that follow on from s.next.
func (o *orderer) release(s *stream) {
	for {
		h, ok := s.held[s.next]
		if !ok {
			break
		}
		delete(s.held, s.next)
		o.push(h.m)
		s.next++
	}
	s.gapSince = time.Time{}
	for _, h := range s.held {
		if s.gapSince.IsZero() || h.arrived.Before(s.gapSince) {
			s.gapSince = h.arrived
		}
	}
}

func (o *orderer) push(m *wire.Message) {
	if unresolved(m) { // an offloaded message that could not be read: its place is kept, it is dropped
		return
	}
	o.ready = append(o.ready, m)
	o.signal()
}

func (o *orderer) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// take gives up on the gaps older than the window, and returns the messages ready for delivery
// and when the next gap runs out (zero if none is open).
func (o *orderer) take(now time.Time) ([]*wire.Message, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	// While receiving paused, a missing message could not arrive: that time does not count
	// against the window.
	paused := time.Duration(0)
	if !o.pausedAt.IsZero() {
		paused = now.Sub(o.pausedAt)
		o.pausedAt = time.Time{}
	}
	var next time.Time
	sweep := now.Sub(o.lastSweep) > 10*time.Second
	if sweep {
		o.lastSweep = now
	}
	for key, s := range o.streams {
		if len(s.held) > 0 {
			s.gapSince = s.gapSince.Add(paused)
		}
		if len(s.held) > 0 && now.Sub(s.gapSince) >= o.window {
			first := uint64(math.MaxUint64)
			for n := range s.held {
				first = min(first, n)
			}
			for n := s.next; n < first; n++ {
				if len(s.skipped) < maxSkipped {
					s.skipped[n] = now
				}
			}
			s.next = first
			o.release(s)
		}
		if len(s.held) > 0 {
			if deadline := s.gapSince.Add(o.window); next.IsZero() || deadline.Before(next) {
				next = deadline
			}
		}
		if sweep {
			for n, at := range s.skipped {
				if now.Sub(at) > orderForget {
					delete(s.skipped, n)
				}
			}
			if len(s.held) == 0 && len(s.skipped) == 0 && now.Sub(s.lastSeen) > orderForget {
				delete(o.streams, key)
			}
		}
	}
	ready := o.ready
	o.ready = nil
	if o.room != nil {
		close(o.room)
		o.room = nil
	}
	return ready, next
}

// waitForRoom blocks while more than limit messages wait for delivery, so that receiving stops
// when handling cannot keep up.
func (o *orderer) waitForRoom(ctx context.Context, limit int) {
	for {
		o.mu.Lock()
		if len(o.ready) <= limit {
			o.mu.Unlock()
			return
		}
		if o.room == nil {
			o.room = make(chan struct{})
			o.pausedAt = time.Now()
		}
		room := o.room
		o.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return
		}
	}
}
