package sqsadapter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// ErrClosed is returned (or reported) for work asked of an adapter after it closed.
var ErrClosed = errors.New("sqsadapter: adapter closed")

// MessageTooLargeError is reported for a cluster message over the SNS size limit; nothing is
// sent to AWS for it.
type MessageTooLargeError struct {
	Type  string // the cluster message type, e.g. "BROADCAST"
	Nsp   string // the namespace it was published on
	Size  int    // bytes, body and attributes as SNS counts them
	Limit int    // the SNS limit, 262144 bytes
}

// Error says which message, its size and the limit.
func (e *MessageTooLargeError) Error() string {
	return fmt.Sprintf("sqsadapter: %s on namespace %q is %d bytes, over the SNS limit of %d bytes",
		e.Type, e.Nsp, e.Size, e.Limit)
}

// ErrPublishBufferFull is reported (and counted in Stats.PublishDropped) for a cluster message
// dropped because Options.PublishBufferSize messages were already waiting for SNS: publishing
// never blocks the emitting goroutine.
var ErrPublishBufferFull = errors.New("sqsadapter: publish buffer full")

// maxBatch is the most entries SNS takes in one PublishBatch.
const maxBatch = 10

// publishRetryWindow is how long a message that SNS refused for a passing reason (throttling,
// a server error, the endpoint unreachable) is retried before it is dropped and reported; a
// cluster message older than this has outlived every timeout that could use it.
const publishRetryWindow = 30 * time.Second

// publisher sends cluster messages to SNS from one goroutine, in the order they were published.
// Callers only encode and enqueue, so io.Emit never waits on an AWS round trip; messages that
// queue up while a request is in flight leave together, up to ten to a PublishBatch.
type publisher struct {
	b     *AdapterBuilder
	queue chan *wire.Message
	// mu guards closed; enqueue holds it for reading so that close can wait for it to finish.
	mu      sync.RWMutex
	closed  bool
	started bool
	// abandon cancels the AWS calls in flight when close runs out of time.
	abandon  context.CancelFunc
	done     chan struct{} // closed when run returns
	failures int           // consecutive failed attempts, touched by run only
}

func newPublisher(b *AdapterBuilder, size int) *publisher {
	return &publisher{
		b:     b,
		queue: make(chan *wire.Message, size),
		done:  make(chan struct{}),
	}
}

// enqueue queues m for publishing without blocking. It fails at once for a message over the SNS
// size limit, after close, and when the buffer is full; before the adapter is ready, messages
// wait in the buffer.
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
	default:
		p.b.stats.publishDropped.Add(1)
		return fmt.Errorf("%w: %s on namespace %q dropped, %d messages wait for SNS", ErrPublishBufferFull, m.Type, m.Nsp, cap(p.queue))
	}
}

// start runs the sending goroutine once the topic exists.
func (p *publisher) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.started = true
	p.abandon = cancel
	p.mu.Unlock()
	go func() {
		defer close(p.done)
		p.run(ctx)
	}()
}

// close stops accepting messages and waits until the queued ones are sent, or ctx ends. It
// returns an error counting the messages that were not sent.
func (p *publisher) close(ctx context.Context) error {
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

func (p *publisher) run(ctx context.Context) {
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
		p.sendWithRetries(ctx, batch)
	}
}

// sendWithRetries publishes batch, retrying what failed for a passing reason with capped
// exponential backoff for up to publishRetryWindow. A streak of failures is reported once, when
// it starts, and logged when it ends; what cannot succeed is reported at once and dropped.
func (p *publisher) sendWithRetries(ctx context.Context, batch []*wire.Message) {
	deadline := time.Now().Add(publishRetryWindow)
	for attempt := 1; ; attempt++ {
		res := p.b.resources()
		retry, err := p.send(ctx, res.topicArn, batch)
		if len(retry) == 0 {
			if p.failures > 0 && err == nil {
				p.b.log.Info("sqsadapter: publishing again", "failedAttempts", p.failures)
				p.failures = 0
			}
			return
		}
		p.failures++
		if p.failures == 1 {
			p.b.reportError(err)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			p.b.stats.publishFailures.Add(uint64(len(retry)))
			p.b.reportError(fmt.Errorf("sqsadapter: %d cluster messages dropped after retrying for %v: %w",
				len(retry), publishRetryWindow, err))
			return
		}
		if isNotFound(err) {
			p.b.reprovision(ctx, res, err) // the topic went away: make it again, then retry
		}
		sleepCtx(ctx, backoff(attempt))
		batch = retry
	}
}

// send publishes one message alone (the idle case: no added latency) or several in one batch.
// It reports and counts what failed for good, and returns what is worth trying again with the
// error that says why.
func (p *publisher) send(ctx context.Context, topicArn string, batch []*wire.Message) (retry []*wire.Message, err error) {
	if len(batch) == 1 {
		m := batch[0]
		_, err := p.b.sns.Publish(ctx, &sns.PublishInput{
			TopicArn: &topicArn, Message: ptr(m.Body()), MessageAttributes: m.SNSAttributes(),
		})
		if err == nil {
			p.b.stats.published.Add(1)
			return nil, nil
		}
		err = fmt.Errorf("publishing %s on namespace %q: %w", m.Type, m.Nsp, opErr("sns:Publish", topicArn, err))
		if retryable(err) {
			return batch, err
		}
		p.b.stats.publishFailures.Add(1)
		p.b.reportError(err)
		return nil, nil
	}
	entries := make([]snstypes.PublishBatchRequestEntry, len(batch))
	for i, m := range batch {
		entries[i] = snstypes.PublishBatchRequestEntry{
			Id: ptr(strconv.Itoa(i)), Message: ptr(m.Body()), MessageAttributes: m.SNSAttributes(),
		}
	}
	out, err := p.b.sns.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: &topicArn, PublishBatchRequestEntries: entries})
	if err != nil {
		err = fmt.Errorf("publishing %d cluster messages: %w", len(batch), opErr("sns:PublishBatch", topicArn, err))
		if retryable(err) {
			return batch, err
		}
		p.b.stats.publishFailures.Add(uint64(len(batch)))
		p.b.reportError(err)
		return nil, nil
	}
	p.b.stats.published.Add(uint64(len(out.Successful)))
	for _, f := range out.Failed {
		i, convErr := strconv.Atoi(deref(f.Id))
		if convErr != nil || i < 0 || i >= len(batch) {
			continue // not an entry of ours
		}
		m := batch[i]
		entryErr := fmt.Errorf("publishing %s on namespace %q: %w", m.Type, m.Nsp, opErr("sns:PublishBatch", topicArn,
			fmt.Errorf("entry failed: %s: %s", deref(f.Code), deref(f.Message))))
		if !f.SenderFault {
			retry, err = append(retry, m), entryErr
			continue
		}
		p.b.stats.publishFailures.Add(1)
		p.b.reportError(entryErr)
	}
	return retry, err
}

// retryable reports whether a failed AWS call may succeed if tried again: throttling, a server
// fault, or no answer at all (the endpoint unreachable, the connection dropped). A topic or queue
// that does not exist counts too: reprovision makes it again.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return true // no response from AWS
	}
	switch apiErr.ErrorCode() {
	case "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "RequestLimitExceeded",
		"TooManyRequestsException", "KMSThrottling":
		return true
	}
	return apiErr.ErrorFault() == smithy.FaultServer || isNotFound(err)
}

// isNotFound reports whether err says the topic or the queue does not exist.
func isNotFound(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "NotFound", "NotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist":
		return true
	}
	return false
}
