package sqsadapter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// transport moves cluster messages between this server and the cluster's topic: it provisions
// this server's queue and its subscription (queue.go), publishes (publisher.go), receives
// (queue.go), makes again what AWS lost (repair.go) and removes what dead nodes left behind
// (orphans.go). It knows nothing of namespaces: what it receives goes up to the cluster logic
// through the clusterHooks interface, and the cluster logic hands it messages to publish.
type transport struct {
	sns    SNSAPI
	sqs    SQSAPI
	opts   *Options
	nodeID string // starts the uid of every namespace adapter of this server
	log    *slog.Logger
	errs   reporter
	stats  *counters
	up     clusterHooks
	pub    *publisher
	// metrics is nil without Options.MeterProvider; see metrics.go.
	metrics *metrics
	// dlq is nil without Options.DeadLetterQueueURL; see deadletter.go.
	dlq   *deadLetterQueue
	large *largeMessages
	parts *reassembly // messages received in parts (parts.go)

	reprovisionMu sync.Mutex // serialises reprovision

	mu      sync.Mutex
	res     *resources // nil until start succeeds
	readyAt time.Time  // when start succeeded
	closed  bool
	lost    error // why the queue and subscription are being made again; nil while they exist

	stopLoops   context.CancelFunc // stops polling, delivering and the other loops
	loops       sync.WaitGroup     // polling, deletes, subscription check, orphan clean-up
	deliverDone chan struct{}
	// deliverGoroutine is the id of the goroutine that runs the handlers: a close called from
	// a handler must not wait for it to end.
	deliverGoroutine atomic.Uint64
	handlerCloses    chan struct{} // closed when a handler calls Close: close must not wait for it
	handlerClosing   sync.Once
	receivers        atomic.Int32 // pollers running beside the long poll

	order   *orderer
	deletes chan handled // from the pollers to the delete goroutine

	seqMu sync.Mutex
	seq   map[string]uint64 // the last number given in each stream
}

// clusterHooks is what the transport needs of the cluster logic above it.
type clusterHooks interface {
	// admit reports whether a received message may be handled (its signature, with
	// Options.SigningKeys); a refused one is counted and reported, and is to be deleted. It
	// must run before anything uses the message's msgId (de-duplication, ordering), so that a
	// forgery cannot take the msgId of a genuine message.
	admit(*wire.Message) bool
	// sign signs a message this node publishes (with Options.SigningKeys): the parts of a split
	// message are signed each.
	sign(*wire.Message)
	// deliver acts on a received message, checked, de-duplicated and in its sender's order. It
	// runs on the delivery goroutine, one message at a time.
	deliver(*wire.Message)
	// rejoined is called after the queue and subscription were made again: the other nodes may
	// have dropped this one meanwhile.
	rejoined()
	// liveNodeIDs returns the ids of the nodes heard within the heartbeat timeout, this one
	// included.
	liveNodeIDs() map[string]bool
}

func newTransport(snsClient SNSAPI, sqsClient SQSAPI, opts *Options, nodeID string, stats *counters, up clusterHooks) *transport {
	t := &transport{
		sns:           snsClient,
		sqs:           sqsClient,
		opts:          opts,
		nodeID:        nodeID,
		log:           opts.Logger,
		errs:          reporter{log: opts.Logger, onError: opts.OnError},
		stats:         stats,
		up:            up,
		order:         newOrderer(opts.ReorderWindow, nodeID, stats),
		deletes:       make(chan handled, 100),
		seq:           map[string]uint64{},
		handlerCloses: make(chan struct{}),
	}
	t.pub = newPublisher(t, max(opts.PublishBufferSize, 1)) // a negative size fails validation
	t.metrics = newMetrics(t)
	t.metrics.instrument(t)
	t.dlq = newDeadLetterQueue(t)
	t.large = newLargeMessages(t)
	t.parts = newReassembly(t)
	return t
}

// start provisions the queue and its subscription, then starts polling, publishing and the
// background loops. On failure nothing is left behind and start may be called again.
func (t *transport) start(ctx context.Context) error {
	if err := t.large.init(ctx); err != nil {
		return err
	}
	res, err := t.provision(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed { // close ran while provisioning
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.opts.ShutdownTimeout)
		defer cancel()
		return errors.Join(ErrClosed, t.teardown(cleanupCtx, res))
	}
	t.res = res
	t.readyAt = time.Now()
	loopCtx, cancel := context.WithCancel(context.Background())
	t.stopLoops = cancel
	t.deliverDone = make(chan struct{})
	go func() {
		defer close(t.deliverDone)
		t.deliverLoop(loopCtx)
	}()
	for _, loop := range []func(context.Context){t.poll, t.watchSubscription, t.cleanupLoop, t.deleteLoop} {
		t.loops.Add(1)
		go func() {
			defer t.loops.Done()
			loop(loopCtx)
		}()
	}
	t.pub.start()
	t.dlq.start()
	t.log.Info("sqsadapter: subscribed", "topic", res.topicArn, "queue", res.queueURL, "node", t.nodeID)
	return nil
}

// publish queues m for SNS without waiting for AWS; see publisher.enqueue. A message over the
// large-message threshold goes through S3 first (see largeMessages.offload); without S3, one
// over the SNS limit goes in parts when only Go servers read it (see publishParts).
func (t *transport) publish(m *wire.Message) error {
	if t.large.wants(m) {
		return t.large.offload(m)
	}
	if m.Size() > wire.MaxMessageSize {
		return t.publishParts(m)
	}
	return t.pub.enqueue(m)
}

// close stops polling (cancelling the long poll in flight), sends what is still queued for SNS,
// unsubscribes and deletes the queue, and waits for the transport's goroutines, within ctx.
func (t *transport) close(ctx context.Context) error {
	t.mu.Lock()
	t.closed = true
	res, stopLoops, deliverDone := t.res, t.stopLoops, t.deliverDone
	t.mu.Unlock()
	if stopLoops != nil {
		stopLoops()
	}
	errs := []error{t.large.close(ctx), t.pub.close(ctx)}
	if res != nil {
		errs = append(errs, t.teardown(ctx, res))
	}
	t.loops.Wait()
	if deliverDone != nil {
		select {
		case <-deliverDone:
		case <-t.handlerCloses: // the handler waits for this close: it ends after
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("a handler is still running: %w", ctx.Err()))
		}
	}
	t.dlq.close(ctx) // after the loops that drop messages have ended
	t.metrics.stop()
	return errors.Join(errs...)
}

// nodeIDOf returns the node id a uid starts with (the id its queue is tagged with), for a uid of
// this adapter; uids of Node servers have no node id and are returned whole.
func nodeIDOf(uid, ownNodeID string) string {
	if len(uid) == 2*len(ownNodeID) {
		return uid[:len(ownNodeID)]
	}
	return uid
}

// messageID numbers m in its stream (see wire.SequencedID): the messages to the whole cluster
// in one, the responses to each node in one of their own.
func (t *transport) messageID(m *wire.Message) string {
	stream := wire.AllNodes
	if m.RequesterUID != "" {
		stream = nodeIDOf(m.RequesterUID, t.nodeID)
	}
	t.seqMu.Lock()
	defer t.seqMu.Unlock()
	t.seq[stream]++
	return wire.SequencedID(t.nodeID, stream, t.seq[stream])
}

// noteCloseFromHandler tells close not to wait for the handler that runs now, when the caller
// is that handler (it waits for close to end).
func (t *transport) noteCloseFromHandler() {
	if t.deliverGoroutine.Load() == goroutineID() {
		t.handlerClosing.Do(func() { close(t.handlerCloses) })
	}
}

// resources returns what provisioning made, nil before start succeeded.
func (t *transport) resources() *resources {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.res
}

func (t *transport) startedAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.readyAt
}

// goroutineID returns the runtime's id of the calling goroutine, read from the first line of its
// stack ("goroutine 42 [running]:"). Go has no other way to ask; it is only used to tell whether
// a close runs on the goroutine that runs the handlers (a handler closing the server).
func goroutineID() uint64 {
	var buf [64]byte
	line := bytes.TrimPrefix(buf[:runtime.Stack(buf[:], false)], []byte("goroutine "))
	if i := bytes.IndexByte(line, ' '); i > 0 {
		line = line[:i]
	}
	id, _ := strconv.ParseUint(string(line), 10, 64)
	return id
}
