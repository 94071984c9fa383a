package sqsadapter

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// publishRetryWindow is how long a message that SNS refused for a passing reason (throttling,
// a server error, the endpoint unreachable) is retried before it is dropped and reported; a
// cluster message older than this has outlived every timeout that could use it.
const publishRetryWindow = 30 * time.Second

// publisher sends cluster messages to SNS from one goroutine, in the order they were published.
// Callers only enqueue, so io.Emit never waits on an AWS round trip; messages that queue up
// while a request is in flight leave together, up to ten to a PublishBatch.
type publisher struct {
	t     *transport
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

func newPublisher(t *transport, size int) *publisher {
	return &publisher{
		t:     t,
		queue: make(chan *wire.Message, size),
		done:  make(chan struct{}),
	}
}

// enqueue queues m for publishing without blocking. It fails at once for a message over the SNS
// size limit, after close, and when the buffer is full; before the adapter is ready, messages
// wait in the buffer.
func (p *publisher) enqueue(m *wire.Message) error {
	if err := m.CheckSize(); err != nil {
		return err
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
		atomic.AddUint64(&p.t.stats.s.PublishDropped, 1)
		return fmt.Errorf("%w: %s on namespace %q dropped, %s wait for SNS",
			ErrPublishBufferFull, m.Type, m.Nsp, count(cap(p.queue), "message"))
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
		// Nothing was created, so there is no one to tell: what waits here are the server's own
		// announcements, or messages to a cluster this server never joined.
		if n := len(p.queue); n > 0 {
			p.t.log.Debug("sqsadapter: closed before Init succeeded; cluster messages not sent", "messages", n)
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
		return fmt.Errorf("%s not published before the shutdown deadline: %w", count(left, "cluster message"), ctx.Err())
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
		res := p.t.resources()
		retry, err := p.send(ctx, res.topicArn, batch)
		if len(retry) == 0 {
			if p.failures > 0 && err == nil {
				p.t.log.Info("sqsadapter: publishing again", "failedAttempts", p.failures)
				p.failures = 0
			}
			return
		}
		p.failures++
		if p.failures == 1 {
			p.t.errs.report(err)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			atomic.AddUint64(&p.t.stats.s.PublishFailures, uint64(len(retry)))
			p.t.errs.report(fmt.Errorf("%s dropped after retrying for %v: %w",
				count(len(retry), "cluster message"), publishRetryWindow, err))
			return
		}
		if isNotFound(err) {
			p.t.reprovision(ctx, res, err) // the topic went away: make it again, then retry
		}
		sleepCtx(ctx, backoff(attempt))
		batch = retry
	}
}

// send publishes one message alone (the idle case: no added latency) or several in one batch.
// It reports and counts what failed for good, and returns what is worth trying again with the
// error that says why.
func (p *publisher) send(ctx context.Context, topicArn string, batch []*wire.Message) (retry []*wire.Message, err error) {
	stats := &p.t.stats.s
	if len(batch) == 1 {
		m := batch[0]
		_, err := p.t.sns.Publish(ctx, m.PublishInput(topicArn))
		if err == nil {
			atomic.AddUint64(&stats.Published, 1)
			return nil, nil
		}
		err = fmt.Errorf("publishing %s on namespace %q: %w", m.Type, m.Nsp, opErr("sns:Publish", topicArn, err))
		if retryable(err) {
			return batch, err
		}
		atomic.AddUint64(&stats.PublishFailures, 1)
		p.t.errs.report(err)
		return nil, nil
	}
	entries := make([]snstypes.PublishBatchRequestEntry, len(batch))
	for i, m := range batch {
		entries[i] = m.BatchEntry(strconv.Itoa(i))
	}
	out, err := p.t.sns.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: &topicArn, PublishBatchRequestEntries: entries})
	if err != nil {
		err = fmt.Errorf("publishing %s: %w", count(len(batch), "cluster message"), opErr("sns:PublishBatch", topicArn, err))
		if retryable(err) {
			return batch, err
		}
		atomic.AddUint64(&stats.PublishFailures, uint64(len(batch)))
		p.t.errs.report(err)
		return nil, nil
	}
	atomic.AddUint64(&stats.Published, uint64(len(out.Successful)))
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
		atomic.AddUint64(&stats.PublishFailures, 1)
		p.t.errs.report(entryErr)
	}
	return retry, err
}

// count says n things, in the singular for one: "1 cluster message", "3 cluster messages".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}
