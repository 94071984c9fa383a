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

// publisher sends cluster messages to SNS in the background. Callers only enqueue, so io.Emit
// never waits on an AWS round trip; messages that queue up while requests are in flight leave
// together, up to ten to a PublishBatch, with several requests in flight under load (see run).
// Requests may overtake each other, as SNS may anyway: receivers restore each sender's order
// (see orderer).
type publisher struct {
	t     *transport
	queue chan *wire.Message
	// mu guards closed; enqueue holds it for reading so that close can wait for it to finish.
	mu      sync.RWMutex
	closed  bool
	started bool
	// abandon cancels the AWS calls in flight when close runs out of time.
	abandon context.CancelFunc
	done    chan struct{} // closed when run returns
	// failingSince is when the current streak of failed publishes began (unix ns), 0 outside
	// one.
	failingSince atomic.Int64
	// waiting counts the messages queued or in a batch that waits for a request slot: what
	// PublishBufferSize bounds. A batch being sent no longer counts.
	waiting  atomic.Int64
	dropping atomic.Bool  // the buffer was full for the last message offered
	sending  atomic.Int64 // messages in requests in flight or waiting to be retried
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
	return p.enqueueAll([]*wire.Message{m})
}

// enqueueAll queues the messages (the parts of one message) all, or none of them.
func (p *publisher) enqueueAll(ms []*wire.Message) error {
	for _, m := range ms {
		if err := m.CheckSize(); err != nil {
			return err
		}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	n := int64(len(ms))
	if p.waiting.Add(n) > int64(cap(p.queue)) {
		p.waiting.Add(-n)
		atomic.AddUint64(&p.t.stats.s.PublishDropped, uint64(n))
		m := ms[0]
		err := fmt.Errorf("%w: %s on namespace %q dropped, %s wait for SNS",
			ErrPublishBufferFull, m.Type, m.Nsp, count(cap(p.queue), "message"))
		if !p.dropping.CompareAndSwap(false, true) {
			return quiet(err) // reported once per streak; counted in Stats.PublishDropped
		}
		return err
	}
	for _, m := range ms {
		p.queue <- m // never blocks: waiting bounds what the queue holds
	}
	if p.dropping.Load() && p.dropping.CompareAndSwap(true, false) {
		p.t.log.Info("sqsadapter: publish buffer has room again", "dropped", p.t.stats.snapshot().PublishDropped)
	}
	return nil
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
	// Flushing may take at most half of the time to ctx's deadline, so that deleting the queue
	// (which stops its bill) still gets its turn when SNS is slow or down. The deadline is read
	// again when the half is up: a caller that joined the close meanwhile may have moved it.
	start := time.Now()
	for {
		var halfway <-chan time.Time
		if deadline, ok := ctx.Deadline(); ok {
			halfway = time.After(time.Until(start.Add(deadline.Sub(start) / 2)))
		}
		select {
		case <-p.done:
			return nil
		case <-halfway:
			if deadline, ok := ctx.Deadline(); ok && time.Now().Before(start.Add(deadline.Sub(start)/2)) {
				continue
			}
		case <-ctx.Done():
		}
		left := int(p.waiting.Load() + p.sending.Load())
		p.abandon()
		<-p.done
		return fmt.Errorf("%s not published before the shutdown deadline", count(left, "cluster message"))
	}
}

// run sends what is queued until the queue is closed and empty. An idle publisher sends each
// message at once, alone; messages that queue up while requests are in flight leave ten to a
// PublishBatch, and full batches leave at once, up to MaxPublishRequests in flight, so that a
// backlog is not bound by one round trip at a time. A partial batch waits while a request is in
// flight, for more messages or for that request to end: light load keeps its batching.
func (p *publisher) run(ctx context.Context) {
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	slots := make(chan struct{}, max(p.t.opts.MaxPublishRequests, 1))
	ended := make(chan struct{}, 1) // a request ended
	var carry *wire.Message
	open := true
	for open || carry != nil {
		var batch []*wire.Message
		size := 0
		add := func(m *wire.Message) bool {
			// A part goes alone: its budget leaves no room for a batch's neighbours where the
			// data attribute is counted as base64 (see wire.PartChunkSize).
			if len(batch) > 0 && (size+m.Size() > wire.MaxMessageSize || m.Type == wire.Part || batch[0].Type == wire.Part) {
				carry = m
				return false
			}
			batch = append(batch, m)
			size += m.Size()
			return true
		}
		if carry != nil {
			m := carry
			carry = nil
			add(m)
		} else if m, ok := <-p.queue; ok {
			add(m)
		} else {
			return
		}
		select { // an end noticed before this batch says nothing about the requests now in flight
		case <-ended:
		default:
		}
	fill:
		for len(batch) < maxBatch && carry == nil {
			if len(slots) == 0 { // nothing in flight: send what is there now
				select {
				case m, ok := <-p.queue:
					if !ok {
						open = false
						break fill
					}
					add(m)
				default:
					break fill
				}
				continue
			}
			select { // a request in flight: wait for more messages, or for it to end
			case m, ok := <-p.queue:
				if !ok {
					open = false
					break fill
				}
				add(m)
			case <-ended:
				break fill
			}
		}
		if ctx.Err() != nil {
			continue // abandoned by close, which reports what is left
		}
		slots <- struct{}{}
		p.waiting.Add(-int64(len(batch)))
		p.sending.Add(int64(len(batch)))
		inFlight.Add(1)
		go func() {
			defer inFlight.Done()
			defer p.sending.Add(-int64(len(batch)))
			p.sendWithRetries(ctx, batch)
			<-slots
			select {
			case ended <- struct{}{}:
			default:
			}
		}()
	}
}

// sendWithRetries publishes batch, retrying what failed for a passing reason with capped
// exponential backoff for up to publishRetryWindow. A streak of failures is reported once, when
// it starts, and logged when it ends; what cannot succeed is reported at once and dropped.
func (p *publisher) sendWithRetries(ctx context.Context, batch []*wire.Message) {
	deadline := time.Now().Add(publishRetryWindow)
	for attempt := 1; ; attempt++ {
		res := p.t.resources()
		sent := time.Now().UnixNano()
		retry, err := p.send(ctx, res.topicArn, batch)
		if len(retry) == 0 {
			// Only a request sent after the streak began ends it: requests in flight overlap.
			if since := p.failingSince.Load(); err == nil && since != 0 && sent > since && p.failingSince.CompareAndSwap(since, 0) {
				p.t.log.Info("sqsadapter: publishing again", "failingFor", time.Duration(time.Now().UnixNano()-since).Round(time.Millisecond))
			}
			return
		}
		if ctx.Err() != nil { // abandoned by close, which reports what was not sent
			atomic.AddUint64(&p.t.stats.s.PublishFailures, uint64(len(retry)))
			return
		}
		if p.failingSince.CompareAndSwap(0, time.Now().UnixNano()) {
			p.t.errs.report(err) // once per streak
		}
		if time.Now().After(deadline) {
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
		_, err := p.t.sns.Publish(ctx, m.PublishInput(topicArn), capSNSBackoff)
		if err == nil {
			atomic.AddUint64(&stats.Published, 1)
			return nil, nil
		}
		err = fmt.Errorf("publishing %s on namespace %q: %w", m.Type, m.Nsp, opErr("sns:Publish", topicArn, err))
		if retryable(err) || ctx.Err() != nil {
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
	out, err := p.t.sns.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: &topicArn, PublishBatchRequestEntries: entries}, capSNSBackoff)
	if err != nil {
		err = fmt.Errorf("publishing %s: %w", count(len(batch), "cluster message"), opErr("sns:PublishBatch", topicArn, err))
		if retryable(err) || ctx.Err() != nil {
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
