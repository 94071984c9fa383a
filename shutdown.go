package sqsadapter

import (
	"context"
	"sync"
	"time"
)

// shutdownScope is the context the clean-up of Close runs in. Several callers may wait for one
// clean-up (the Socket.IO server closing its last namespace with Options.ShutdownTimeout, the
// application calling Close with a deadline of its own): it goes on while any of them still
// waits, and its deadline, which decides how the time is shared between flushing and deleting
// the queue, is the latest of theirs.
type shutdownScope struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	waiting   int
	deadline  time.Time
	unbounded bool // a caller without a deadline waits
}

func (s *shutdownScope) init() {
	s.ctx, s.cancel = context.WithCancel(context.Background())
}

// join counts ctx among the waiting callers until it ends or done is closed, and returns the
// scope's context.
func (s *shutdownScope) join(ctx context.Context, done <-chan struct{}) context.Context {
	s.mu.Lock()
	s.waiting++
	if d, ok := ctx.Deadline(); !ok {
		s.unbounded = true
	} else if d.After(s.deadline) {
		s.deadline = d
	}
	s.mu.Unlock()
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
			s.mu.Lock()
			s.waiting--
			last := s.waiting == 0
			s.mu.Unlock()
			if last {
				s.cancel() // no one waits any more
			}
		}
	}()
	return scopeContext{s.ctx, s}
}

// scopeContext reports the scope's current deadline.
type scopeContext struct {
	context.Context
	s *shutdownScope
}

func (c scopeContext) Deadline() (time.Time, bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.unbounded || c.s.deadline.IsZero() {
		return time.Time{}, false
	}
	return c.s.deadline, true
}
