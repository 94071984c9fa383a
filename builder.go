package sqsadapter

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// AdapterBuilder builds the adapter of every namespace of one Socket.IO server, and owns what
// they share: the transport (this server's SQS queue and its subscription, the goroutines that
// poll it and publish to SNS) and the goroutine that sends heartbeats. Pass it to
// ServerOptions.SetAdapter, then call Init.
type AdapterBuilder struct {
	opts      Options
	log       *slog.Logger
	errs      reporter
	nodeID    string // starts the uid of every namespace adapter of this builder
	stats     counters
	transport *transport

	handshakes *handshakeFilter // what of a handshake leaves this server
	guard      *guard           // signs what this server publishes, checks what it receives

	// seen is what this server acted on of each Go sender's messages, kept while a namespace
	// has connection state recovery (frontier.go).
	seen     *seenMessages
	recovery atomic.Bool

	initMu sync.Mutex // serialises Init

	mu             sync.Mutex
	adapters       map[string]*namespaceAdapter // by namespace name
	ready          bool                         // Init succeeded
	closed         bool
	stopHeartbeats context.CancelFunc
	heartbeats     sync.WaitGroup

	closing    atomic.Bool
	closeScope shutdownScope
	closeDone  chan struct{}
	closeErr   error
}

var (
	_ interface {
		New(socket.Namespace) socket.Adapter
	} = (*AdapterBuilder)(nil)
	_ clusterHooks = (*AdapterBuilder)(nil)
)

// NewAdapterBuilder returns a builder that uses the given clients; opts may be nil for the
// defaults. It makes no AWS call: Init provisions.
func NewAdapterBuilder(snsClient SNSAPI, sqsClient SQSAPI, opts *Options) *AdapterBuilder {
	b := &AdapterBuilder{
		opts:      opts.withDefaults(),
		nodeID:    randomHex(4),
		adapters:  map[string]*namespaceAdapter{},
		closeDone: make(chan struct{}),
		seen:      newSeenMessages(),
	}
	b.closeScope.init()
	b.log = b.opts.Logger
	b.errs = reporter{log: b.log, onError: b.opts.OnError}
	b.handshakes = newHandshakeFilter(&b.opts)
	b.guard = newGuard(&b.opts, &b.stats, b.errs)
	b.transport = newTransport(snsClient, sqsClient, &b.opts, b.nodeID, &b.stats, b)
	return b
}

// Init validates the options, creates (or finds) the topic, creates this server's queue with a
// policy that lets only the topic send to it, subscribes the queue with raw delivery, and starts
// polling. It returns once the queue is subscribed, or with the error of the step that failed,
// within ctx's deadline; whatever it created before a failure is deleted again, and Init may be
// called again. Messages published before Init (the server publishes one per namespace as it
// starts) wait and leave once it succeeds. Init after success returns nil at once. A ctx without
// a deadline is bounded by Options.InitTimeout.
func (b *AdapterBuilder) Init(ctx context.Context) error {
	b.initMu.Lock()
	defer b.initMu.Unlock()
	b.mu.Lock()
	closed, ready := b.closed, b.ready
	b.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case ready:
		return nil
	}
	if err := b.opts.validate(); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.InitTimeout)
		defer cancel()
	}
	b.log.Info("sqsadapter: joining the cluster", "topic", b.opts.TopicName, "node", b.nodeID)
	if err := b.transport.start(ctx); err != nil {
		return prefixed(regionHint(err))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed { // Close ran meanwhile; it closed the transport too
		return ErrClosed
	}
	b.ready = true
	loopCtx, cancel := context.WithCancel(context.Background())
	b.stopHeartbeats = cancel
	b.heartbeats.Add(1)
	go func() {
		defer b.heartbeats.Done()
		b.heartbeatLoop(loopCtx)
	}()
	return nil
}

// Close publishes ADAPTER_CLOSE for every namespace, stops polling (cancelling the long poll in
// flight), sends what is still queued for SNS, unsubscribes and deletes this server's queue, and
// waits for the adapter's goroutines to end, within ctx. Closing the Socket.IO server does the
// same with Options.ShutdownTimeout. Close is idempotent: a later call waits for the first and
// returns its result. The clean-up goes on while any caller still waits, until the latest of
// their deadlines: a Close(ctx) with a longer deadline than the server's ShutdownTimeout gets
// its whole deadline. Each call returns by its own ctx.
func (b *AdapterBuilder) Close(ctx context.Context) error {
	b.transport.noteCloseFromHandler()
	scope := b.closeScope.join(ctx, b.closeDone)
	if b.closing.CompareAndSwap(false, true) {
		go func() {
			b.closeErr = b.shutdown(scope)
			close(b.closeDone)
		}()
	}
	select {
	case <-b.closeDone:
		return b.closeErr
	case <-ctx.Done():
		select {
		case <-b.closeDone: // finished just as ctx ended: its result says more
			return b.closeErr
		default:
			return ctx.Err()
		}
	}
}

func (b *AdapterBuilder) shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	adapters := b.adapters
	b.adapters = map[string]*namespaceAdapter{}
	ready, stopHeartbeats := b.ready, b.stopHeartbeats
	b.mu.Unlock()

	for _, a := range adapters {
		a.close(ready)
	}
	if stopHeartbeats != nil {
		stopHeartbeats()
	}
	err := b.transport.close(ctx)
	b.heartbeats.Wait()
	if err != nil {
		err = prefixed(err)
		b.errs.report(err)
	} else if ready {
		b.log.Info("sqsadapter: closed", "node", b.nodeID)
	}
	return err
}

// Stats returns the counters.
func (b *AdapterBuilder) Stats() Stats { return b.stats.snapshot() }

// CleanupOrphans removes the queues and subscriptions of nodes of this cluster that stopped
// without closing (a crash, a SIGKILL), and the subscriptions of the topic whose queue no longer
// exists. It returns the queue URLs (or subscription ARNs) it removed. Nodes run it by
// themselves every Options.OrphanCleanupInterval; call it to clean up at a time of your choice.
// Before this node has been up for twice GoHeartbeatTimeout it fails with ErrTooEarly.
func (b *AdapterBuilder) CleanupOrphans(ctx context.Context) ([]string, error) {
	removed, err := b.transport.cleanupOrphans(ctx)
	return removed, prefixed(err)
}

// New builds the adapter of one namespace; the Socket.IO server calls it for "/" as it starts
// and for every namespace created later.
func (b *AdapterBuilder) New(nsp socket.Namespace) socket.Adapter {
	a := &namespaceAdapter{
		Adapter:  socket.MakeAdapter(),
		b:        b,
		uid:      b.nodeID + randomHex(4),
		name:     nsp.Name(),
		nodes:    map[string]peer{},
		requests: map[string]*pendingRequest{},
		acks:     map[string]*pendingAck{},
	}
	a.Prototype(a)
	a.Construct(nsp)
	if maxAge, ok := recoverySettings(nsp.Server().Opts()); ok {
		b.recovery.Store(true)
		a.rec = newRecovery(a, maxAge, b.opts.RecoveryMaxPackets, time.Now())
	}
	a.lastPublish.Store(time.Now().UnixNano())
	b.mu.Lock()
	if b.closed {
		a.closed = true
	} else {
		b.adapters[a.name] = a
	}
	b.mu.Unlock()
	return a
}

func (b *AdapterBuilder) namespaceAdapters() []*namespaceAdapter {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*namespaceAdapter, 0, len(b.adapters))
	for _, a := range b.adapters {
		out = append(out, a)
	}
	return out
}

// admit checks a received message's signature; see guard.admit.
func (b *AdapterBuilder) admit(m *wire.Message) bool { return b.guard.admit(m) }

// sign signs a message this server publishes; see guard.sign.
func (b *AdapterBuilder) sign(m *wire.Message) { b.guard.sign(m) }

// deliver hands a received message to the adapter of its namespace. A signed message acted on
// before is refused; a payload of the wrong shape is logged, counted and dropped; a handler that
// panics is recovered, counted and reported.
func (b *AdapterBuilder) deliver(m *wire.Message) {
	if !b.guard.fresh(m) {
		return
	}
	b.mu.Lock()
	a := b.adapters[m.Nsp]
	b.mu.Unlock()
	if b.recovery.Load() && m.UID != wire.EmitterUID && !m.Type.IsResponse() {
		defer b.seen.addMessage(m, time.Now())
	}
	if a == nil {
		atomic.AddUint64(&b.stats.s.UnknownNamespaces, 1)
		return
	}
	defer func() {
		if p := recover(); p != nil {
			atomic.AddUint64(&b.stats.s.HandlerPanics, 1)
			b.errs.report(fmt.Errorf("handling %s from %s on namespace %q (message %s) panicked: %v\n%s",
				m.Type, m.UID, m.Nsp, m.ID, p, debug.Stack()))
			b.transport.deadLetter(m, deadLetterPanic, fmt.Sprint(p))
		}
	}()
	if err := a.onMessage(m); err != nil {
		atomic.AddUint64(&b.stats.s.Malformed, 1)
		b.log.Warn("sqsadapter: dropped malformed message", "messageId", m.ID, "type", m.Type, "from", m.UID,
			"nsp", m.Nsp, "error", err)
		b.transport.deadLetter(m, deadLetterWrongPayload, err.Error())
	}
}

// rejoined announces every namespace again after the queue was made again.
func (b *AdapterBuilder) rejoined() {
	for _, a := range b.namespaceAdapters() {
		a.publishOrReport(wire.InitialHeartbeat, nil)
	}
}
