package sqsadapter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// ErrClosed is returned (or reported) for work asked of an adapter after it closed.
var ErrClosed = errors.New("sqsadapter: adapter closed")

// MessageTooLargeError is reported for a cluster message over the SNS size limit; nothing is
// sent to AWS for it.
type MessageTooLargeError struct {
	Type  string // the cluster message type, e.g. "BROADCAST"
	Nsp   string
	Size  int // bytes, body and attributes as SNS counts them
	Limit int
}

func (e *MessageTooLargeError) Error() string {
	return fmt.Sprintf("sqsadapter: %s on namespace %q is %d bytes, over the SNS limit of %d bytes",
		e.Type, e.Nsp, e.Size, e.Limit)
}

// publishQueueSize bounds the messages waiting for SNS. When it is full, publishing waits for
// room (back-pressure on the emitting goroutine) instead of dropping messages.
const publishQueueSize = 4096

// maxBatch is the most entries SNS takes in one PublishBatch.
const maxBatch = 10

// publisher sends cluster messages to SNS from one goroutine, in the order they were published.
// Callers only encode and enqueue, so io.Emit never waits on an AWS round trip; messages that
// queue up while a request is in flight leave together, up to ten to a PublishBatch.
type publisher struct {
	b     *AdapterBuilder
	queue chan *wire.Message
	// stop is closed when the adapter starts closing: callers blocked on a full queue give up.
	stop chan struct{}
	// mu guards closed; enqueue holds it for reading so that close can wait for it to finish.
	mu      sync.RWMutex
	closed  bool
	started bool
	// abandon cancels the AWS calls in flight when close runs out of time.
	abandon context.CancelFunc
	done    chan struct{} // closed when run returns
}

func newPublisher(b *AdapterBuilder) *publisher {
	return &publisher{
		b:     b,
		queue: make(chan *wire.Message, publishQueueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// enqueue queues m for publishing. It fails at once for a message over the SNS size limit and
// after close; before the adapter is ready, messages wait in the queue.
func (p *publisher) enqueue(m *wire.Message) error {
	if size := m.Size(); size > wire.MaxMessageSize {
		return &MessageTooLargeError{Type: m.Type.String(), Nsp: m.Nsp, Size: size, Limit: wire.MaxMessageSize}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.queue <- m:
		return nil
	case <-p.stop:
		return ErrClosed
	}
}

// start runs the sending goroutine once the topic exists.
func (p *publisher) start(topicArn string) {
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.started = true
	p.abandon = cancel
	p.mu.Unlock()
	go func() {
		defer close(p.done)
		p.run(ctx, topicArn)
	}()
}

// close stops accepting messages and waits until the queued ones are sent, or ctx ends. It
// returns an error counting the messages that were not sent.
func (p *publisher) close(ctx context.Context) error {
	close(p.stop)
	p.mu.Lock()
	p.closed = true
	started := p.started
	p.mu.Unlock()
	close(p.queue)
	if !started {
		if n := len(p.queue); n > 0 {
			return fmt.Errorf("sqsadapter: %d cluster messages not published: the adapter closed before Init succeeded", n)
		}
		return nil
	}
	defer p.abandon()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		left := len(p.queue)
		p.abandon()
		<-p.done
		return fmt.Errorf("sqsadapter: %d cluster messages not published before the shutdown deadline: %w", left, ctx.Err())
	}
}

func (p *publisher) run(ctx context.Context, topicArn string) {
	var carry *wire.Message
	for {
		first := carry
		carry = nil
		if first == nil {
			m, ok := <-p.queue
			if !ok {
				return
			}
			first = m
		}
		batch, size := []*wire.Message{first}, first.Size()
	fill:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-p.queue:
				if !ok {
					break fill
				}
				if size+m.Size() > wire.MaxMessageSize {
					carry = m
					break fill
				}
				batch = append(batch, m)
				size += m.Size()
			default:
				break fill
			}
		}
		if ctx.Err() != nil {
			continue // abandoned by close, which reports what is left
		}
		p.send(ctx, topicArn, batch)
	}
}

// send publishes one message alone (the idle case: no added latency) or several in one batch.
func (p *publisher) send(ctx context.Context, topicArn string, batch []*wire.Message) {
	if len(batch) == 1 {
		m := batch[0]
		_, err := p.b.sns.Publish(ctx, &sns.PublishInput{
			TopicArn: &topicArn, Message: ptr(m.Body()), MessageAttributes: m.SNSAttributes(),
		})
		if err != nil {
			p.b.stats.publishFailures.Add(1)
			p.b.reportError(fmt.Errorf("publishing %s on namespace %q: %w", m.Type, m.Nsp, opErr("sns:Publish", topicArn, err)))
			return
		}
		p.b.stats.published.Add(1)
		return
	}
	entries := make([]snstypes.PublishBatchRequestEntry, len(batch))
	for i, m := range batch {
		entries[i] = snstypes.PublishBatchRequestEntry{
			Id: ptr(strconv.Itoa(i)), Message: ptr(m.Body()), MessageAttributes: m.SNSAttributes(),
		}
	}
	out, err := p.b.sns.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: &topicArn, PublishBatchRequestEntries: entries})
	if err != nil {
		p.b.stats.publishFailures.Add(uint64(len(batch)))
		p.b.reportError(fmt.Errorf("publishing %d cluster messages: %w", len(batch), opErr("sns:PublishBatch", topicArn, err)))
		return
	}
	for _, f := range out.Failed {
		m := batch[0]
		if i, err := strconv.Atoi(deref(f.Id)); err == nil && i >= 0 && i < len(batch) {
			m = batch[i]
		}
		p.b.stats.publishFailures.Add(1)
		p.b.reportError(fmt.Errorf("publishing %s on namespace %q: %w", m.Type, m.Nsp,
			opErr("sns:PublishBatch", topicArn, fmt.Errorf("entry failed: %s: %s", deref(f.Code), deref(f.Message)))))
	}
	p.b.stats.published.Add(uint64(len(out.Successful)))
}
