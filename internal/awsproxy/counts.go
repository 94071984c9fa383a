package awsproxy

import (
	"sync"
	"sync/atomic"
)

// Counts is what the proxy has done since Start. Every request it read is counted once in
// Requests and ends in exactly one of Forwarded, Throttled, ServerErrors or Abandoned:
//
//	Total() == Forwarded + Throttled + ServerErrors + Abandoned
//
// (give or take the requests in flight while Counts runs).
type Counts struct {
	// Requests counts requests by action ("Publish", "ReceiveMessage", ...; "Unknown" for a
	// request without one).
	Requests map[string]int64

	Forwarded    int64 // passed to the emulator
	Throttled    int64 // answered with a throttling error, not forwarded
	ServerErrors int64 // answered HTTP 500, not forwarded
	Abandoned    int64 // the client left (or Close ran) during the added latency

	// UpstreamErrors counts forwarded requests the emulator did not answer: the client left
	// during a long poll, Close ran, or the emulator was unreachable (answered HTTP 502).
	UpstreamErrors int64

	Reordered int64 // ReceiveMessage responses whose messages were shuffled into another order
	HeldBack  int64 // messages removed from ReceiveMessage responses (redelivered later by the queue)
	Delivered int64 // messages returned to clients in ReceiveMessage responses, after hold back

	URLsRewritten int64 // queue URLs whose emulator port was replaced by the proxy's
}

// Total is the number of requests, all actions together.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c.Requests {
		n += v
	}
	return n
}

type counters struct {
	byAction sync.Map // string -> *atomic.Int64

	forwarded, throttled, serverErrors, abandoned, upstreamErrors atomic.Int64
	reordered, heldBack, delivered, urlsRewritten                 atomic.Int64
}

func (c *counters) request(action string) {
	v, ok := c.byAction.Load(action)
	if !ok {
		v, _ = c.byAction.LoadOrStore(action, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Counts returns a snapshot of the counters.
func (px *Proxy) Counts() Counts {
	c := &px.c
	out := Counts{
		Requests:       map[string]int64{},
		Forwarded:      c.forwarded.Load(),
		Throttled:      c.throttled.Load(),
		ServerErrors:   c.serverErrors.Load(),
		Abandoned:      c.abandoned.Load(),
		UpstreamErrors: c.upstreamErrors.Load(),
		Reordered:      c.reordered.Load(),
		HeldBack:       c.heldBack.Load(),
		Delivered:      c.delivered.Load(),
		URLsRewritten:  c.urlsRewritten.Load(),
	}
	c.byAction.Range(func(k, v any) bool {
		out.Requests[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}
