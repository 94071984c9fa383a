package testsupport

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Balancer is a TCP load balancer on loopback, as clients of a cluster reach it in production:
// each new connection goes to the address Pick returns then, so a client that reconnects after
// its server went away lands on another one. DropAll cuts every connection as a network failure
// would, and Hold makes new connections wait until Release.
type Balancer struct {
	// Pick returns the "host:port" a new connection goes to.
	Pick func() string

	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	held  chan struct{} // closed when new connections may go on; nil while they may
	wg    sync.WaitGroup
}

// NewBalancer listens on a loopback port.
func NewBalancer(pick func() string) (*Balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Balancer{Pick: pick, ln: ln, conns: map[net.Conn]bool{}}
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

// URL is the balancer's http URL.
func (b *Balancer) URL() string { return "http://" + b.ln.Addr().String() }

func (b *Balancer) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go b.serve(c)
	}
}

func (b *Balancer) serve(c net.Conn) {
	defer b.wg.Done()
	b.mu.Lock()
	held := b.held
	b.mu.Unlock()
	if held != nil {
		<-held
	}
	up, err := net.Dial("tcp", b.Pick())
	if err != nil {
		_ = c.Close()
		return
	}
	if !b.track(c, up) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	b.mu.Lock()
	delete(b.conns, c)
	delete(b.conns, up)
	b.mu.Unlock()
}

// track records a connection pair; false (both closed) once the balancer is closed.
func (b *Balancer) track(c, up net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		_ = c.Close()
		_ = up.Close()
		return false
	}
	b.conns[c], b.conns[up] = true, true
	return true
}

// DropAll closes every connection going through the balancer.
func (b *Balancer) DropAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		_ = c.Close()
	}
}

// Hold makes new connections wait, until Release.
func (b *Balancer) Hold() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held == nil {
		b.held = make(chan struct{})
	}
}

// Release lets the waiting connections and new ones go on.
func (b *Balancer) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held != nil {
		close(b.held)
		b.held = nil
	}
}

// Close stops listening, cuts every connection and waits for them to end.
func (b *Balancer) Close() error {
	err := b.ln.Close()
	b.Release()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.conns = nil
	b.mu.Unlock()
	b.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
