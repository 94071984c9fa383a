package nodepeer

import (
	"context"
	"sync"
	"time"
)

// ServerCounter is one namespace of a peer's server as testsupport.WaitServerCount and
// AwaitServerCount poll it, beside the namespace adapters of Go servers.
type ServerCounter struct {
	p   *Peer
	nsp string

	mu  sync.Mutex
	err error
}

// ServerCounter returns namespace nsp of p's server as a server counter.
func (p *Peer) ServerCounter(nsp string) *ServerCounter { return &ServerCounter{p: p, nsp: nsp} }

// serverCountTimeout bounds one serverCount command.
const serverCountTimeout = 10 * time.Second

// ServerCount asks the peer how many servers its namespace counts (command serverCount); it is
// -1 when the peer does not answer, and Err then says why.
func (c *ServerCounter) ServerCount() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), serverCountTimeout)
	defer cancel()
	var n int64
	err := c.p.CallInto(ctx, "serverCount", map[string]any{"nsp": c.nsp}, &n)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
	if err != nil {
		return -1
	}
	return n
}

// Err is the error of the last ServerCount, nil when it had an answer.
func (c *ServerCounter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
