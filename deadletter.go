package sqsadapter

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// The dead-letter queue (Options.DeadLetterQueueURL): every received message the adapter drops
// as bad (not a cluster message, a payload of the wrong shape, a handler that panicked) is sent
// there, with its original body and message attributes, plus two attributes that say why:
//
//	sqsadapter-reason  "<kind>: <detail>", kind one of malformed, wrong-payload, handler-panic
//	sqsadapter-sender  the sender's uid, when the message has one
//
// SQS allows 10 message attributes. A cluster message carries at most 6, so the two fit; a
// message that already has more than 8 keeps them all, and its body is wrapped instead in a
// JSON object {"sqsadapter-reason": ..., "sqsadapter-sender": ..., "body": <original body>}.
//
// Sending never holds up the poll loop: dropped messages go through a small buffer to one
// goroutine of the transport, started with it and stopped (and waited for) by its close. A
// message that finds the buffer full, that SQS refuses, or that is still waiting when the
// close's deadline ends is dropped and counted in Stats.DeadLetterFailures; a streak of
// refusals is reported once.

// Kinds of dead letters: the start of the sqsadapter-reason attribute.
const (
	deadLetterMalformed    = "malformed"
	deadLetterWrongPayload = "wrong-payload"
	deadLetterPanic        = "handler-panic"
)

// Attributes added to a dead letter.
const (
	attrDeadLetterReason = "sqsadapter-reason"
	attrDeadLetterSender = "sqsadapter-sender"
)

const (
	deadLetterBuffer = 100  // dead letters waiting for SQS before more are dropped
	maxSQSAttributes = 10   // message attributes SQS accepts on one message
	maxReasonLen     = 1024 // bytes of the reason kept (a panic value can be long)
	maxSenderLen     = 256
)

type deadLetter struct {
	raw    *sqstypes.Message
	reason string
	sender string
}

type deadLetterQueue struct {
	t   *transport
	url string
	ch  chan deadLetter

	mu      sync.RWMutex // add holds it for reading: after close takes it, nothing more is queued
	closed  bool
	started bool
	stop    chan struct{}      // closed by close: send what is queued, then end
	abandon context.CancelFunc // cancels the send in flight when close runs out of time
	done    chan struct{}      // closed when run returns

	failing atomic.Bool // in a streak of failed sends, reported once
}

// newDeadLetterQueue returns nil without Options.DeadLetterQueueURL; a nil queue drops nothing
// more than the adapter already dropped.
func newDeadLetterQueue(t *transport) *deadLetterQueue {
	if t.opts.DeadLetterQueueURL == "" {
		return nil
	}
	return &deadLetterQueue{
		t:    t,
		url:  t.opts.DeadLetterQueueURL,
		ch:   make(chan deadLetter, deadLetterBuffer),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
}

// validateDeadLetterQueueURL checks Options.DeadLetterQueueURL, when set, before any AWS call.
func validateDeadLetterQueueURL(o *Options) error {
	if o.DeadLetterQueueURL == "" {
		return nil
	}
	u, err := url.Parse(o.DeadLetterQueueURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("%w: DeadLetterQueueURL %q is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)",
			ErrInvalidOptions, o.DeadLetterQueueURL)
	}
	return nil
}

// deadLetter sends a received message that the cluster logic dropped to the dead-letter queue.
func (t *transport) deadLetter(m *wire.Message, kind string, detail string) {
	t.dlq.add(m.Raw, kind+": "+detail, m.UID)
}

// add queues raw for the dead-letter queue without ever blocking.
func (q *deadLetterQueue) add(raw *sqstypes.Message, reason, sender string) {
	if q == nil || raw == nil {
		return
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if !q.closed {
		select {
		case q.ch <- deadLetter{raw: raw, reason: reason, sender: sender}:
			return
		default:
		}
	}
	atomic.AddUint64(&q.t.stats.s.DeadLetterFailures, 1)
	q.t.log.Warn("sqsadapter: dead-letter queue buffer full or closed; dropped message not kept",
		"messageId", deref(raw.MessageId), "reason", truncateReason(reason, 200))
}

// start runs the sending goroutine.
func (q *deadLetterQueue) start() {
	if q == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	q.mu.Lock()
	q.started, q.abandon = true, cancel
	q.mu.Unlock()
	go func() {
		defer close(q.done)
		q.run(ctx)
	}()
}

// close stops taking dead letters, sends those queued within ctx, and waits for the goroutine.
// What is not sent is counted in Stats.DeadLetterFailures.
func (q *deadLetterQueue) close(ctx context.Context) {
	if q == nil {
		return
	}
	q.mu.Lock()
	q.closed = true
	started := q.started
	q.mu.Unlock()
	if !started {
		if n := len(q.ch); n > 0 {
			atomic.AddUint64(&q.t.stats.s.DeadLetterFailures, uint64(n))
		}
		return
	}
	close(q.stop)
	select {
	case <-q.done:
	case <-ctx.Done():
		q.abandon()
		<-q.done
	}
	q.abandon()
}

func (q *deadLetterQueue) run(ctx context.Context) {
	for {
		select {
		case d := <-q.ch:
			q.send(ctx, d)
		case <-q.stop:
			for {
				select {
				case d := <-q.ch:
					q.send(ctx, d)
				default:
					return
				}
			}
		}
	}
}

func (q *deadLetterQueue) send(ctx context.Context, d deadLetter) {
	stats := &q.t.stats.s
	if ctx.Err() != nil { // abandoned by close
		atomic.AddUint64(&stats.DeadLetterFailures, 1)
		return
	}
	_, err := q.t.sqs.SendMessage(ctx, deadLetterInput(q.url, d), capSQSBackoff)
	if err != nil {
		atomic.AddUint64(&stats.DeadLetterFailures, 1)
		if ctx.Err() == nil && q.failing.CompareAndSwap(false, true) {
			q.t.errs.report(fmt.Errorf("keeping a dropped message in the dead-letter queue: %w",
				opErr("sqs:SendMessage", q.url, err)))
		}
		return
	}
	if q.failing.CompareAndSwap(true, false) {
		q.t.log.Info("sqsadapter: the dead-letter queue takes messages again", "queue", q.url)
	}
	atomic.AddUint64(&stats.DeadLettered, 1)
}

// deadLetterInput is the SendMessage request that keeps d: the original body and attributes,
// and the reason and sender as attributes, or in a JSON wrapper of the body when they would
// not fit in SQS's 10 attributes.
func deadLetterInput(queueURL string, d deadLetter) *sqs.SendMessageInput {
	reason := truncateReason(d.reason, maxReasonLen)
	sender := truncateReason(d.sender, maxSenderLen)
	attrs := make(map[string]sqstypes.MessageAttributeValue, len(d.raw.MessageAttributes)+2)
	for k, v := range d.raw.MessageAttributes {
		attrs[k] = sqstypes.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	body := deref(d.raw.Body)
	added := 1
	if sender != "" {
		added++
	}
	if len(attrs)+added <= maxSQSAttributes && body != "" {
		attrs[attrDeadLetterReason] = stringAttribute(reason)
		if sender != "" {
			attrs[attrDeadLetterSender] = stringAttribute(sender)
		}
	} else {
		wrapped, _ := json.Marshal(struct { // cannot fail: strings only
			Reason string `json:"sqsadapter-reason"`
			Sender string `json:"sqsadapter-sender,omitempty"`
			Body   string `json:"body"`
		}{reason, sender, body})
		body = string(wrapped)
	}
	in := &sqs.SendMessageInput{QueueUrl: &queueURL, MessageBody: &body}
	if len(attrs) > 0 {
		in.MessageAttributes = attrs
	}
	return in
}

func stringAttribute(v string) sqstypes.MessageAttributeValue {
	return sqstypes.MessageAttributeValue{DataType: ptr("String"), StringValue: &v}
}

// senderOf returns the uid attribute of a message that may be malformed: "" unless it is a
// String.
func senderOf(raw *sqstypes.Message) string {
	v, ok := raw.MessageAttributes[wire.AttrUID]
	if !ok || v.DataType == nil || *v.DataType != "String" {
		return ""
	}
	return deref(v.StringValue)
}

// truncateReason keeps at most n bytes of s, cut at a character boundary, and only the
// characters SQS accepts in a message (#x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD,
// #x10000 to #x10FFFF): a panic value or a hostile uid may hold anything.
func truncateReason(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '?'
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
