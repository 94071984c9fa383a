// Package awsproxy is a loopback HTTP proxy that makes a local SNS/SQS emulator (fauxqs) behave
// more like AWS, for benchmarks and reliability tests.
//
// The emulator answers in about a millisecond and returns messages in order; AWS answers in
// 15-30 ms, reorders messages (standard topics and queues), redelivers late, throttles and
// sometimes fails with 5xx. The proxy adds those on top of the emulator, as set by a Profile
// that can change at run time. Point any client at it: aws-sdk-go-v2 with BaseEndpoint (or
// AWS_ENDPOINT_URL), a Node process with AWS_ENDPOINT_URL set to Proxy.URL.
//
// It understands the protocols current SDKs speak: SNS's AWS query protocol (form-encoded
// POST, XML responses) and SQS's AWS JSON 1.0 (X-Amz-Target: AmazonSQS.<Action>), plus SQS's
// older query protocol. The Host header is passed through unchanged (fauxqs builds queue URLs
// from it, so queues created through the proxy have the proxy's address in their URL), and
// queue URLs that carry the emulator's port are rewritten to the proxy's.
package awsproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxRequestBody bounds what the proxy reads of a request (SQS messages are at most 1 MiB).
const maxRequestBody = 8 << 20

// Proxy is a running proxy. Its methods are safe for concurrent use.
type Proxy struct {
	url      string
	ln       net.Listener
	srv      *http.Server
	rp       *httputil.ReverseProxy
	tr       *http.Transport
	rewriter *portRewriter

	settings atomic.Pointer[settings]
	rngMu    sync.Mutex
	rng      *rand.Rand

	// ctx is cancelled by Close: it ends latency waits and upstream requests (long polls).
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex // guards closed and the Add side of handlers and conns
	closed    bool
	handlers  sync.WaitGroup
	conns     sync.WaitGroup
	serveDone chan struct{}
	closeOnce sync.Once
	closeErr  error

	c counters
}

// Start starts a proxy on a free port of 127.0.0.1 that forwards to upstream, the emulator's
// URL (http://127.0.0.1:<port>). upstream must be a loopback address: the proxy rewrites
// nothing that would let it front a remote endpoint (request signatures cover the Host header
// it keeps).
func Start(upstream string, p Profile) (*Proxy, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("awsproxy: upstream %q: %w", upstream, err)
	}
	if target.Scheme != "http" || target.Host == "" {
		return nil, fmt.Errorf("awsproxy: upstream %q: want http://host:port", upstream)
	}
	if !isLoopback(target.Hostname()) {
		return nil, fmt.Errorf("awsproxy: upstream %q is not a loopback address", upstream)
	}
	upstreamPort := target.Port()
	if upstreamPort == "" {
		upstreamPort = "80"
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("awsproxy: listen: %w", err)
	}
	proxyPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	px := &Proxy{
		url:       "http://" + ln.Addr().String(),
		ln:        ln,
		rewriter:  newPortRewriter(upstreamPort, proxyPort),
		serveDone: make(chan struct{}),
	}
	px.ctx, px.cancel = context.WithCancel(context.Background())
	px.tr = &http.Transport{
		Proxy:               nil, // never an HTTP(S)_PROXY from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		// Below the emulator's keep-alive timeout (fastify: 72 s; Node: 5 s), so that the proxy
		// never reuses a connection the emulator is closing (a POST is not retried).
		IdleConnTimeout:    4 * time.Second,
		DisableCompression: true,
	}
	px.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // fauxqs builds queue URLs from it; SigV4 signs it
		},
		Transport:      px.tr,
		ModifyResponse: px.modifyResponse,
		ErrorHandler:   px.upstreamError,
		// A client that leaves mid-response is not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	px.srv = &http.Server{
		Handler:           px,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         px.connState,
	}
	px.SetProfile(p)

	go func() {
		defer close(px.serveDone)
		_ = px.srv.Serve(ln)
	}()
	return px, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL is the proxy's base URL, http://127.0.0.1:<port>: a client's endpoint.
func (px *Proxy) URL() string { return px.url }

// SetProfile replaces the profile; requests already waiting keep the one they started with.
// A non-zero Seed restarts the random sequence from it.
func (px *Proxy) SetProfile(p Profile) {
	s := newSettings(p)
	px.rngMu.Lock()
	if p.Seed != 0 || px.rng == nil {
		seed := p.Seed
		if seed == 0 {
			seed = rand.Uint64()
		}
		px.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	}
	px.settings.Store(s)
	px.rngMu.Unlock()
}

// Profile returns the current profile (FaultActions filled in with the defaults if it was empty).
func (px *Proxy) Profile() Profile {
	p := px.settings.Load().Profile
	p.FaultActions = append([]string(nil), p.FaultActions...)
	return p
}

// Close stops the listener, cancels the requests in flight (long polls included), and waits for
// the proxy's goroutines to end.
func (px *Proxy) Close() error {
	px.closeOnce.Do(func() {
		px.mu.Lock()
		px.closed = true
		px.mu.Unlock()
		// Connections first, so that no cancelled request gets an answer on the way out.
		if err := px.srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			px.closeErr = err
		}
		px.cancel()
		<-px.serveDone
		px.handlers.Wait()
		px.conns.Wait()
		px.tr.CloseIdleConnections()
	})
	return px.closeErr
}

// connState tracks the server's connections so that Close can wait for them.
func (px *Proxy) connState(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		px.conns.Add(1) // from Serve's goroutine, which Close waits for before conns.Wait
	case http.StateClosed, http.StateHijacked:
		px.conns.Done()
	}
}

func (px *Proxy) enter() bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.closed {
		return false
	}
	px.handlers.Add(1)
	return true
}

// exchange travels with a forwarded request to modifyResponse.
type exchange struct {
	call     call
	settings *settings
}

type exchangeKey struct{}

// ServeHTTP is the proxy's handler: read, classify, count, wait the latency, maybe fail, forward.
func (px *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !px.enter() {
		http.Error(w, "awsproxy: closed", http.StatusServiceUnavailable)
		return
	}
	defer px.handlers.Done()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		http.Error(w, "awsproxy: reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	c := classify(r, body)
	px.c.request(c.action)
	s := px.settings.Load()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(px.ctx, cancel)()

	if d := s.Latency + px.jitter(s.Jitter); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			px.c.abandoned.Add(1)
			panic(http.ErrAbortHandler) // no response: returning would send an empty 200
		}
	}

	if s.faults[c.action] && s.Throttle+s.ServerError > 0 {
		switch u := px.float(); {
		case u < s.Throttle:
			px.c.throttled.Add(1)
			writeFault(w, c, faultThrottle, px.requestID(), "")
			return
		case u < s.Throttle+s.ServerError:
			px.c.serverErrors.Add(1)
			writeFault(w, c, faultServer, px.requestID(), "")
			return
		}
	}

	px.c.forwarded.Add(1)
	out := r.WithContext(context.WithValue(ctx, exchangeKey{}, &exchange{call: c, settings: s}))
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	px.rp.ServeHTTP(w, out)
}

// upstreamError answers a request the emulator did not answer: no response if the client left
// or the proxy is closing, else a 502 server fault in the request's protocol.
func (px *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	px.c.upstreamErrors.Add(1)
	if r.Context().Err() != nil {
		// The client left or Close runs: drop the connection. Returning would send an empty
		// 200, which an SDK reads as a successful empty receive.
		panic(http.ErrAbortHandler)
	}
	ex, _ := r.Context().Value(exchangeKey{}).(*exchange)
	var c call
	if ex != nil {
		c = ex.call
	}
	writeFault(w, c, faultUpstream, px.requestID(), err.Error())
}

// modifyResponse reorders and holds back the messages of ReceiveMessage responses, and points
// queue URLs at the proxy.
func (px *Proxy) modifyResponse(resp *http.Response) error {
	ex, _ := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil || ex.call.service != serviceSQS || resp.StatusCode != http.StatusOK {
		return nil
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return nil // fauxqs does not compress; leave anything else alone
	}
	receive := ex.call.action == "ReceiveMessage"
	if !receive && !queueURLActions[ex.call.action] {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if receive {
		body = px.editReceive(ex, body)
	} else {
		var n int
		body, n = px.rewriter.rewrite(body)
		px.c.urlsRewritten.Add(int64(n))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Del("Transfer-Encoding")
	return nil
}

// editReceive applies hold back and reorder to a ReceiveMessage response body.
func (px *Proxy) editReceive(ex *exchange, body []byte) []byte {
	s := ex.settings
	delivered := 0
	edit := func(msgs [][]byte) [][]byte {
		px.rngMu.Lock()
		defer px.rngMu.Unlock()
		if s.HoldBack > 0 {
			kept := msgs[:0:0]
			for _, m := range msgs {
				if px.rng.Float64() < s.HoldBack {
					px.c.heldBack.Add(1)
					continue
				}
				kept = append(kept, m)
			}
			msgs = kept
		}
		if s.Reorder && len(msgs) > 1 {
			order := px.rng.Perm(len(msgs))
			shuffled := make([][]byte, len(msgs))
			moved := false
			for i, j := range order {
				shuffled[i] = msgs[j]
				moved = moved || i != j
			}
			if moved {
				px.c.reordered.Add(1)
			}
			msgs = shuffled
		}
		delivered = len(msgs)
		return msgs
	}
	var out []byte
	var ok bool
	if ex.call.protocol == protocolJSON {
		out, ok = editJSONMessages(body, edit)
	} else {
		out, ok = editXMLMessages(body, edit)
	}
	if !ok {
		return body // an empty receive (no Messages), or not a response we understand
	}
	px.c.delivered.Add(int64(delivered))
	return out
}

func (px *Proxy) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	px.rngMu.Lock()
	defer px.rngMu.Unlock()
	return time.Duration(px.rng.Int64N(int64(max) + 1))
}

func (px *Proxy) float() float64 {
	px.rngMu.Lock()
	defer px.rngMu.Unlock()
	return px.rng.Float64()
}

// requestID is a random UUID-shaped id for the errors the proxy makes up (not from the seeded
// sequence, so that it does not shift the draws).
func (px *Proxy) requestID() string {
	a, b := rand.Uint64(), rand.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, b>>48&0x3fff|0x8000, b&0xffffffffffff)
}
