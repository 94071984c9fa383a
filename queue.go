package sqsadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// This server's queue: how it is made and subscribed, how it is polled, how handled messages
// are deleted, and how it is removed.

// resources are what provisioning created for one node.
type resources struct {
	topicArn        string
	queueName       string
	queueURL        string
	queueArn        string
	subscriptionArn string
}

// queueMessageRetention is the shortest retention SQS allows. Cluster messages are worthless
// after the heartbeat timeout, and a crashed node's queue then stops holding (and billing for)
// traffic a minute after it stops polling.
const queueMessageRetention = 60 * time.Second

// provision creates the topic (or finds it: CreateTopic is idempotent), this node's queue with
// a policy that lets only the topic send to it, and the raw-delivery subscription. On failure it
// removes what it created and returns the error of the step that failed.
func (t *transport) provision(ctx context.Context) (res *resources, err error) {
	o := t.opts
	res = &resources{}
	defer func() {
		if err != nil {
			cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
			defer cancel()
			if cleanupErr := t.teardown(cleanupCtx, res); cleanupErr != nil {
				err = errors.Join(err, fmt.Errorf("removing what Init created: %w", cleanupErr))
			}
			res = nil
		}
	}()

	id := randomHex(8)
	res.queueName = o.QueuePrefix + "-" + id
	if o.QueueName != nil {
		res.queueName = o.QueueName(id)
		if err := validateQueueName(res.queueName); err != nil {
			return res, err
		}
	}

	topic, err := t.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: &o.TopicName, Tags: snsTags(o.TopicTags)})
	if err != nil {
		return res, opErr("sns:CreateTopic", o.TopicName, err)
	}
	res.topicArn = deref(topic.TopicArn)
	if err := t.setTopicPolicy(ctx, res.topicArn); err != nil {
		return res, err
	}

	queueAttrs := map[string]string{
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(int(queueMessageRetention.Seconds())),
	}
	if o.KMSKeyID != "" {
		queueAttrs[string(sqstypes.QueueAttributeNameKmsMasterKeyId)] = o.KMSKeyID
	} else {
		queueAttrs[string(sqstypes.QueueAttributeNameSqsManagedSseEnabled)] = "true"
	}
	tags := map[string]string{nodeTag: t.nodeID} // lets the surviving nodes remove it if this one dies
	for k, v := range o.QueueTags {
		tags[k] = v
	}
	queue, err := t.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: &res.queueName, Tags: tags, Attributes: queueAttrs,
	})
	if err != nil {
		return res, opErr("sqs:CreateQueue", res.queueName, err)
	}
	res.queueURL = deref(queue.QueueUrl)

	attrs, err := t.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       &res.queueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return res, opErr("sqs:GetQueueAttributes", res.queueURL, err)
	}
	res.queueArn = attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]

	if _, err := t.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   &res.queueURL,
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): queuePolicy(res.queueArn, res.topicArn)},
	}); err != nil {
		return res, opErr("sqs:SetQueueAttributes", res.queueURL, err)
	}

	sub, err := t.sns.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn:              &res.topicArn,
		Protocol:              ptr("sqs"),
		Endpoint:              &res.queueArn,
		Attributes:            subscriptionAttributes(o, t.nodeID),
		ReturnSubscriptionArn: true,
	})
	if err != nil {
		return res, opErr("sns:Subscribe", res.topicArn, err)
	}
	res.subscriptionArn = deref(sub.SubscriptionArn)
	return res, nil
}

// subscriptionAttributes asks for raw delivery, as upstream does, and unless disabled a filter
// policy that keeps out of this node's queue what it would only drop: its own messages (every
// uid of this node starts with its id) and responses to other nodes. Upstream's Node servers
// subscribe without a filter, so a mixed cluster works unchanged.
func subscriptionAttributes(o *Options, nodeID string) map[string]string {
	attrs := map[string]string{"RawMessageDelivery": "true"}
	if o.DisableSubscriptionFilter {
		return attrs
	}
	policy, _ := json.Marshal(map[string]any{ // cannot fail: maps of strings
		"uid": []any{map[string]any{"anything-but": map[string]string{"prefix": nodeID}}},
		"$or": []any{
			map[string]any{"requesterUid": []any{map[string]bool{"exists": false}}},
			map[string]any{"requesterUid": []any{map[string]string{"prefix": nodeID}}},
		},
	})
	attrs["FilterPolicy"] = string(policy)
	return attrs
}

// teardown unsubscribes and deletes the queue, whichever of them exist; it returns both errors.
// The SDK's waits between attempts are capped, so that with AWS unreachable it fails within the
// shutdown deadline, with the errors, instead of running out of it.
func (t *transport) teardown(ctx context.Context, r *resources) error {
	var errs []error
	if r.subscriptionArn != "" {
		_, err := t.sns.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: &r.subscriptionArn}, capSNSBackoff)
		errs = append(errs, opErr("sns:Unsubscribe", r.subscriptionArn, err))
	}
	if r.queueURL != "" {
		_, err := t.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &r.queueURL}, capSQSBackoff)
		errs = append(errs, opErr("sqs:DeleteQueue", r.queueURL, err))
	}
	return errors.Join(errs...)
}

// queuePolicy is upstream's policy, byte for byte: only the topic may send to the queue.
func queuePolicy(queueArn, topicArn string) string {
	type condition struct {
		ArnEquals map[string]string `json:"ArnEquals"`
	}
	type statement struct {
		Sid       string    `json:"Sid"`
		Effect    string    `json:"Effect"`
		Principal string    `json:"Principal"`
		Action    string    `json:"Action"`
		Resource  string    `json:"Resource"`
		Condition condition `json:"Condition"`
	}
	policy := struct {
		Version   string      `json:"Version"`
		ID        string      `json:"Id"`
		Statement []statement `json:"Statement"`
	}{"2012-10-17", "__default_policy_ID", []statement{{
		Sid: "__owner_statement", Effect: "Allow", Principal: "*", Action: "SQS:SendMessage",
		Resource: queueArn, Condition: condition{ArnEquals: map[string]string{"aws:SourceArn": topicArn}},
	}}}
	b, _ := json.Marshal(policy) // cannot fail: strings only
	return string(b)
}

// receiveVisibilitySeconds hides a received message from other receives until it is deleted.
// It is short so that a batch whose response never reached us (a long poll abandoned by a
// dropped connection still takes messages off the queue) comes back within seconds instead of
// SQS's default 30 s; a message handled twice this way is dropped by its MessageId.
const receiveVisibilitySeconds = 5

// pollWaitSeconds is the long-poll wait: the longest SQS allows, so an idle node makes three
// receive requests a minute (upstream waits 5 s: twelve). Close cancels the wait at once.
const pollWaitSeconds = 20

// extraPollWaitSeconds is the wait of the receives that poll beside the long poll while the
// queue has a backlog: short, since one that comes back less than full ends its poller anyway.
const extraPollWaitSeconds = 1

// maxReady is how many received messages may wait for their handlers before receiving pauses.
const maxReady = 1000

// poll keeps one long poll on the queue until ctx is cancelled. A receive that comes back full
// means a backlog: it starts another poller beside it (up to Options.MaxReceiveRequests), which
// ends at its first receive that is not full. Receive errors are retried with capped
// exponential backoff and jitter, and reported once per streak of failures, not once per
// attempt.
func (t *transport) poll(ctx context.Context) {
	res := t.resources()
	var failures int
	var extra sync.WaitGroup
	defer extra.Wait()
	var gather heartbeatGather
	for ctx.Err() == nil {
		out, err := t.receiveBatch(ctx, res, pollWaitSeconds)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if isNotFound(err) {
				t.reprovision(ctx, res, err)
				if next := t.resources(); next != res {
					res, failures = next, 0
					continue
				}
			}
			failures++
			if failures == 1 {
				t.errs.report(err)
			}
			sleepCtx(ctx, backoff(failures))
			continue
		}
		t.parts.expire(time.Now()) // at least once per long poll, when no part comes
		if failures > 0 {
			t.log.Info("sqsadapter: receiving again", "queue", res.queueURL, "failedAttempts", failures)
			failures = 0
		}
		if len(out) == maxBatch {
			t.startExtraPoller(ctx, res, &extra)
		}
		if pause := gather.pause(out, time.Now(), t.opts.HeartbeatGather); pause > 0 {
			sleepCtx(ctx, pause)
		}
	}
}

// startExtraPoller starts a poller beside the long poll, unless MaxReceiveRequests are running.
func (t *transport) startExtraPoller(ctx context.Context, res *resources, wg *sync.WaitGroup) {
	if int(t.receivers.Add(1)) >= t.opts.MaxReceiveRequests { // the long poll is one of them
		t.receivers.Add(-1)
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer t.receivers.Add(-1)
		for ctx.Err() == nil {
			out, err := t.receiveBatch(ctx, res, extraPollWaitSeconds)
			if err != nil || len(out) < maxBatch {
				return // the long poll reports errors; a partial batch means the backlog is gone
			}
			t.startExtraPoller(ctx, res, wg)
		}
	}()
}

// receiveBatch makes one receive request and hands what it got to the orderer and the deletes.
// It waits first while too many received messages wait for their handlers.
func (t *transport) receiveBatch(ctx context.Context, res *resources, waitSeconds int32) ([]sqstypes.Message, error) {
	t.order.waitForRoom(ctx, maxReady)
	out, err := t.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:              &res.queueURL,
		MaxNumberOfMessages:   maxBatch,
		WaitTimeSeconds:       waitSeconds,
		VisibilityTimeout:     receiveVisibilitySeconds,
		MessageAttributeNames: []string{"All"},
		// SentTimestamp, for the receive latency metric, only when there are metrics.
		MessageSystemAttributeNames: t.metrics.systemAttributes(),
	}, capSQSBackoff)
	if err != nil {
		return nil, opErr("sqs:ReceiveMessage", res.queueURL, err)
	}
	now := time.Now()
	for i := range out.Messages {
		t.receive(&out.Messages[i], now)
	}
	for i := range out.Messages { // after all are received: a full delete queue must not hold any up
		select {
		case t.deletes <- handled{res.queueURL, deref(out.Messages[i].ReceiptHandle)}:
		case <-ctx.Done():
			return out.Messages, nil // the queue is going away with what is left in it
		}
	}
	return out.Messages, nil
}

// receive checks one received message and hands it to the orderer. Bad input is logged, counted
// and dropped (it is deleted like any other); nothing it holds can stop the poll loop.
func (t *transport) receive(raw *sqstypes.Message, now time.Time) {
	atomic.AddUint64(&t.stats.s.Received, 1)
	m, err := wire.FromSQS(raw.Body, raw.MessageAttributes)
	if err != nil {
		atomic.AddUint64(&t.stats.s.Malformed, 1)
		t.log.Warn("sqsadapter: dropped malformed message", "messageId", deref(raw.MessageId), "error", err)
		t.dlq.add(raw, deadLetterMalformed+": "+strings.TrimPrefix(err.Error(), wire.ErrMalformed.Error()+": "), senderOf(raw))
		return
	}
	m.Raw = raw
	// An offloaded message's data is read first: the signature covers the data, which the
	// pointer's SHA-256 ties to the object. Then, before ordering, so that it keeps its place.
	t.large.received(m)
	if !t.up.admit(m) {
		return
	}
	if m.Type == wire.Part {
		// The whole message is checked again, against the signature it was sent with.
		if m = t.parts.add(m, now); m == nil || !t.up.admit(m) {
			return
		}
	}
	// A message published twice (a retried publish) has two SQS message ids but one msgId;
	// a message without a msgId (from a Node server) is known by its SQS message id.
	if m.ID == "" {
		m.ID = deref(raw.MessageId)
	}
	t.order.add(m, now)
}

// deliverLoop hands received messages to the cluster logic, one at a time, in the order the
// orderer releases them, until ctx is cancelled.
func (t *transport) deliverLoop(ctx context.Context) {
	t.deliverGoroutine.Store(goroutineID())
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.order.wake:
		case <-gap.C:
		}
		ready, next := t.order.take(time.Now())
		for _, m := range ready {
			if ctx.Err() != nil {
				return // closing: the queue goes, and the cluster is told
			}
			t.metrics.delivering(m)
			t.up.deliver(m)
		}
		if !next.IsZero() {
			gap.Reset(time.Until(next))
		}
	}
}

// handled is a received message to delete.
type handled struct{ queueURL, receiptHandle string }

// deleteLinger is how long a handled message may wait for others to share its
// DeleteMessageBatch; well within the receive visibility timeout. Longer would batch an idle
// server's deletes better (3 s: 30 a minute for 3 servers instead of 40), but a queue then
// almost never looks empty, which is what operators and make bench watch for.
const deleteLinger = time.Second

// maxBatch is the most entries SNS takes in one PublishBatch, and SQS in one
// DeleteMessageBatch or ReceiveMessage.
const maxBatch = 10

// deleteLoop deletes received messages ten to a request, or after deleteLinger: under light
// load one request then serves several receives instead of one each. Full batches under load
// leave at once, up to MaxReceiveRequests requests at a time. It stops with polling, leaving
// undeleted only what the queue's deletion (or replacement) takes away anyway.
func (t *transport) deleteLoop(ctx context.Context) {
	var batch []handled
	var linger <-chan time.Time
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	slots := make(chan struct{}, max(t.opts.MaxReceiveRequests, 1))
	flush := func() {
		if len(batch) > 0 {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			inFlight.Add(1)
			go func(batch []handled) {
				defer inFlight.Done()
				defer func() { <-slots }()
				t.deleteMessages(ctx, batch)
			}(batch)
		}
		batch, linger = nil, nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-linger:
			flush()
		case h := <-t.deletes:
			if len(batch) > 0 && batch[0].queueURL != h.queueURL {
				flush() // re-provisioned meanwhile
			}
			batch = append(batch, h)
			if len(batch) == 1 {
				linger = time.After(deleteLinger)
			}
			if len(batch) == maxBatch {
				flush()
			}
		}
	}
}

// deleteAttempts bounds the tries of one DeleteMessageBatch that fails for a passing reason; a
// message left undeleted only comes back after the visibility timeout and is dropped then.
const deleteAttempts = 3

func (t *transport) deleteMessages(ctx context.Context, batch []handled) {
	queueURL := batch[0].queueURL
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(batch))
	for i, h := range batch {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: ptr(strconv.Itoa(i)), ReceiptHandle: ptr(h.receiptHandle)}
	}
	var out *sqs.DeleteMessageBatchOutput
	var err error
	for attempt := 1; ; attempt++ {
		out, err = t.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &queueURL, Entries: entries}, capSQSBackoff)
		if err == nil || attempt == deleteAttempts || !retryable(err) || isNotFound(err) {
			break
		}
		sleepCtx(ctx, backoff(attempt))
	}
	if err != nil {
		if ctx.Err() == nil { // else closing: the queue goes with its messages
			t.errs.report(opErr("sqs:DeleteMessageBatch", queueURL, err))
		}
		return
	}
	for _, f := range out.Failed {
		t.errs.report(opErr("sqs:DeleteMessageBatch", queueURL,
			fmt.Errorf("entry %s failed: %s: %s", deref(f.Id), deref(f.Code), deref(f.Message))))
	}
}

// recentIDs remembers the last n message ids, to drop SQS's at-least-once redeliveries.
type recentIDs struct {
	ids  map[string]struct{}
	ring []string
	next int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// has reports whether id is recorded, without recording it.
func (r *recentIDs) has(id string) bool {
	_, ok := r.ids[id]
	return ok
}

// seen records id and reports whether it was recorded already.
func (r *recentIDs) seen(id string) bool {
	if _, ok := r.ids[id]; ok {
		return true
	}
	delete(r.ids, r.ring[r.next])
	r.ring[r.next] = id
	r.ids[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
	return false
}
