package sqsadapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/socketio-go/aws-sqs-adapter/internal/offload"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Large messages: a cluster message over Options.LargeMessageThreshold has its data put in S3,
// and SNS carries a pointer to it in the "s3" attribute, with a stand-in in the data attribute
// that Node servers act on harmlessly (see internal/wire/pointer.go and wire.StandIn); every
// receiver reads the object before it hands the message to the orderer, so that the message
// keeps its place in its sender's order. Nobody deletes an object on receipt: with SNS fan-out
// no receiver knows it is the last to read it. Objects expire by a lifecycle rule on the prefix
// (Options.LargeMessageLifecycle sets it at Init).
//
// Costs per offloaded message in a cluster of N servers: one PutObject and N-1 GetObject, on
// top of the SNS publish and the N-1 SQS deliveries of the small pointer message.

// S3API is the part of the S3 client that large messages use; *s3.Client implements it. Each
// method is the SDK's method of the same name; the lifecycle methods are only called with
// Options.LargeMessageLifecycle.
type S3API interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	GetBucketLifecycleConfiguration(context.Context, *s3.GetBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error)
	PutBucketLifecycleConfiguration(context.Context, *s3.PutBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error)
}

var (
	_ S3API         = (*s3.Client)(nil)
	_ offload.S3API = S3API(nil) // the same methods: one is passed as the other
)

// DefaultLargeMessagePrefix and DefaultLargeMessageThreshold are the defaults of
// Options.LargeMessagePrefix and Options.LargeMessageThreshold.
const (
	DefaultLargeMessagePrefix    = offload.DefaultPrefix
	DefaultLargeMessageThreshold = offload.DefaultThreshold
	DefaultLargeMessageTimeout   = offload.DefaultTimeout
)

func largeMessageDefaults(o *Options) {
	if o.LargeMessageBucket == "" {
		return
	}
	orDefault(&o.LargeMessagePrefix, DefaultLargeMessagePrefix)
	orDefault(&o.LargeMessageThreshold, DefaultLargeMessageThreshold)
	orDefault(&o.LargeMessageTimeout, DefaultLargeMessageTimeout)
}

func (o *Options) validateLargeMessages() error {
	if o.LargeMessageBucket == "" {
		if o.LargeMessageLifecycle {
			return fmt.Errorf("%w: LargeMessageLifecycle is set without LargeMessageBucket", ErrInvalidOptions)
		}
		return nil
	}
	if err := o.largeStore().Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	return nil
}

// largeStore returns the store the options describe, nil without a bucket.
func (o *Options) largeStore() *offload.Store {
	if o.LargeMessageBucket == "" {
		return nil
	}
	return offload.NewStore(o.S3Client, o.LargeMessageBucket, o.LargeMessagePrefix, o.LargeMessageThreshold, o.LargeMessageTimeout)
}

// largeMessages offloads the transport's large messages and fetches the ones it receives.
type largeMessages struct {
	t     *transport
	store *offload.Store // nil: not configured

	ctx    context.Context // cancelled by close: ends the uploads and downloads in flight
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	uploads sync.WaitGroup
	pending atomic.Int64  // uploads started or waiting for a slot
	slots   chan struct{} // bounds the PutObject requests in flight

	goNodes sync.Map // ids of the Go servers heard from (their msgIds say so), to tell them from Node servers
}

func newLargeMessages(t *transport) *largeMessages {
	ctx, cancel := context.WithCancel(context.Background())
	return &largeMessages{
		t: t, store: t.opts.largeStore(), ctx: ctx, cancel: cancel,
		slots: make(chan struct{}, max(t.opts.MaxPublishRequests, 1)),
	}
}

// init sets the lifecycle rule when the options ask for it.
func (l *largeMessages) init(ctx context.Context) error {
	if l.store == nil || !l.t.opts.LargeMessageLifecycle {
		return nil
	}
	if err := l.store.EnsureLifecycle(ctx); err != nil {
		return fmt.Errorf("setting the expiry of large messages: %w", err)
	}
	return nil
}

// wants reports whether m goes through S3. Responses go through S3 only to a Go server: a
// Node server cannot read a pointer, so a response to one stays inline (and fails with
// MessageTooLargeError when too large). Go and Node uids look alike (16 hex digits); a Go
// server is known by the msgIds of the messages heard from it (see received).
func (l *largeMessages) wants(m *wire.Message) bool {
	if !l.store.Wants(m) {
		return false
	}
	if m.RequesterUID == "" {
		return true
	}
	return l.isGoNode(m.RequesterUID)
}

// maxPendingUploads bounds the large messages that wait for S3 (each holds its data in memory);
// one more is dropped like a message that finds the publish buffer full.
const maxPendingUploads = 64

// offload puts m's data in S3 in the background, then queues the pointer message for SNS: like
// publishing, it never makes the emitting goroutine wait on AWS. A failure is reported and
// counted in Stats.LargeMessageFailures.
func (l *largeMessages) offload(m *wire.Message) error {
	if len(m.Data) > wire.MaxOffloadedSize {
		return &MessageTooLargeError{Type: m.Type.String(), Nsp: m.Nsp, Size: len(m.Data), Limit: wire.MaxOffloadedSize}
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.pending.Load() >= maxPendingUploads {
		l.mu.Unlock()
		atomic.AddUint64(&l.t.stats.s.PublishDropped, 1)
		return fmt.Errorf("%w: large %s on namespace %q dropped, %d large messages wait for S3",
			ErrPublishBufferFull, m.Type, m.Nsp, maxPendingUploads)
	}
	l.uploads.Add(1)
	l.pending.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.uploads.Done()
		defer l.pending.Add(-1)
		select {
		case l.slots <- struct{}{}:
			defer func() { <-l.slots }()
		case <-l.ctx.Done():
			atomic.AddUint64(&l.t.stats.s.LargeMessageFailures, 1)
			return
		}
		stats := &l.t.stats.s
		out, err := l.store.Put(l.ctx, m, l.store.Key(l.t.nodeID, m.ID))
		if err == nil {
			atomic.AddUint64(&stats.LargeMessagesOffloaded, 1)
			err = l.t.pub.enqueue(out)
		}
		if err != nil {
			atomic.AddUint64(&stats.LargeMessageFailures, 1)
			l.t.errs.report(fmt.Errorf("large %s on namespace %q (%d bytes) not sent: %w", m.Type, m.Nsp, len(m.Data), err))
		}
	}()
	return nil
}

// received notes which servers are Go servers, and reads the data of an offloaded message into
// m.Data. On failure it reports, counts and leaves m.Data nil: the orderer keeps the message's
// place in its sender's order and drops it. It runs on a poller; each GetObject is bounded by
// Options.LargeMessageTimeout, and the other pollers go on meanwhile.
func (l *largeMessages) received(m *wire.Message) {
	if sender, _, _, ok := wire.ParseSequencedID(m.ID); ok && sender == nodeIDOf(m.UID, l.t.nodeID) {
		if _, known := l.goNodes.Load(sender); !known {
			l.goNodes.Store(sender, struct{}{})
		}
	}
	if m.Pointer == nil {
		return
	}
	// This node's own messages and responses to other nodes are dropped on delivery anyway
	// (they arrive with DisableSubscriptionFilter): not worth a GetObject. Left unresolved,
	// the orderer drops them.
	if nodeIDOf(m.UID, l.t.nodeID) == l.t.nodeID || (m.RequesterUID != "" && nodeIDOf(m.RequesterUID, l.t.nodeID) != l.t.nodeID) {
		atomic.AddUint64(&l.t.stats.s.NotForUs, 1)
		return
	}
	data, err := l.store.Get(l.ctx, m.Pointer)
	if err != nil {
		if l.ctx.Err() != nil {
			return // closing
		}
		atomic.AddUint64(&l.t.stats.s.LargeMessageFailures, 1)
		l.t.errs.report(fmt.Errorf("dropped large %s on namespace %q from %s: %w", m.Type, m.Nsp, m.UID, err))
		return
	}
	atomic.AddUint64(&l.t.stats.s.LargeMessagesFetched, 1)
	m.Data = data
}

// isGoNode reports whether the server of uid (or node id) is known as a Go server.
func (l *largeMessages) isGoNode(uid string) bool {
	_, ok := l.goNodes.Load(nodeIDOf(uid, l.t.nodeID))
	return ok
}

// unresolved reports whether m is an offloaded message whose data could not be read.
func unresolved(m *wire.Message) bool { return m.Pointer != nil && m.Data == nil }

// close waits for the uploads in flight, within ctx, so that their pointer messages are queued
// before the publisher flushes; then it ends what is still running.
func (l *largeMessages) close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	defer l.cancel()
	done := make(chan struct{})
	go func() {
		l.uploads.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	n := l.pending.Load()
	l.cancel()
	<-done
	if n == 0 {
		return nil
	}
	return errors.New(count(int(n), "large message") + " not put in S3 before the shutdown deadline")
}
