package sqsadapter

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SNSAPI is the part of the SNS client the adapter uses; *sns.Client implements it. Each method
// is the SDK's method of the same name.
type SNSAPI interface {
	CreateTopic(context.Context, *sns.CreateTopicInput, ...func(*sns.Options)) (*sns.CreateTopicOutput, error)
	Subscribe(context.Context, *sns.SubscribeInput, ...func(*sns.Options)) (*sns.SubscribeOutput, error)
	Unsubscribe(context.Context, *sns.UnsubscribeInput, ...func(*sns.Options)) (*sns.UnsubscribeOutput, error)
	GetSubscriptionAttributes(context.Context, *sns.GetSubscriptionAttributesInput, ...func(*sns.Options)) (*sns.GetSubscriptionAttributesOutput, error)
	ListSubscriptionsByTopic(context.Context, *sns.ListSubscriptionsByTopicInput, ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error)
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
	PublishBatch(context.Context, *sns.PublishBatchInput, ...func(*sns.Options)) (*sns.PublishBatchOutput, error)
}

// SQSAPI is the part of the SQS client the adapter uses; *sqs.Client implements it. Each method
// is the SDK's method of the same name.
type SQSAPI interface {
	CreateQueue(context.Context, *sqs.CreateQueueInput, ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	SetQueueAttributes(context.Context, *sqs.SetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error)
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	DeleteQueue(context.Context, *sqs.DeleteQueueInput, ...func(*sqs.Options)) (*sqs.DeleteQueueOutput, error)
	GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	ListQueueTags(context.Context, *sqs.ListQueueTagsInput, ...func(*sqs.Options)) (*sqs.ListQueueTagsOutput, error)
}

var (
	_ SNSAPI = (*sns.Client)(nil)
	_ SQSAPI = (*sqs.Client)(nil)
)

// OpError is the error of one AWS call: Op names it ("sns:CreateTopic", "sqs:ReceiveMessage",
// ...), Resource is the topic, queue or subscription it acted on when there was one. errors.As
// reaches the AWS error (smithy.APIError) through it.
type OpError struct {
	Op       string
	Resource string
	Err      error
}

// Error names the action and the resource, then the AWS error.
func (e *OpError) Error() string {
	if e.Resource == "" {
		return "sqsadapter: " + e.Op + ": " + e.Err.Error()
	}
	return "sqsadapter: " + e.Op + " " + e.Resource + ": " + e.Err.Error()
}

// Unwrap returns the AWS SDK's error.
func (e *OpError) Unwrap() error { return e.Err }

func opErr(op, resource string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Resource: resource, Err: err}
}

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
func provision(ctx context.Context, snsClient SNSAPI, sqsClient SQSAPI, o *Options, nodeID string) (res *resources, err error) {
	res = &resources{}
	defer func() {
		if err != nil {
			cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
			defer cancel()
			if cleanupErr := res.teardown(cleanupCtx, snsClient, sqsClient); cleanupErr != nil {
				err = errors.Join(err, fmt.Errorf("sqsadapter: removing what Init created: %w", cleanupErr))
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

	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: &o.TopicName, Tags: snsTags(o.TopicTags)})
	if err != nil {
		return res, opErr("sns:CreateTopic", o.TopicName, err)
	}
	res.topicArn = deref(topic.TopicArn)

	queueAttrs := map[string]string{
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(int(queueMessageRetention.Seconds())),
	}
	if o.KMSKeyID != "" {
		queueAttrs[string(sqstypes.QueueAttributeNameKmsMasterKeyId)] = o.KMSKeyID
	} else {
		queueAttrs[string(sqstypes.QueueAttributeNameSqsManagedSseEnabled)] = "true"
	}
	tags := map[string]string{nodeTag: nodeID} // lets the surviving nodes remove it if this one dies
	for k, v := range o.QueueTags {
		tags[k] = v
	}
	queue, err := sqsClient.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: &res.queueName, Tags: tags, Attributes: queueAttrs,
	})
	if err != nil {
		return res, opErr("sqs:CreateQueue", res.queueName, err)
	}
	res.queueURL = deref(queue.QueueUrl)

	attrs, err := sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       &res.queueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return res, opErr("sqs:GetQueueAttributes", res.queueURL, err)
	}
	res.queueArn = attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]

	if _, err := sqsClient.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   &res.queueURL,
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): queuePolicy(res.queueArn, res.topicArn)},
	}); err != nil {
		return res, opErr("sqs:SetQueueAttributes", res.queueURL, err)
	}

	sub, err := snsClient.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn:              &res.topicArn,
		Protocol:              ptr("sqs"),
		Endpoint:              &res.queueArn,
		Attributes:            subscriptionAttributes(o, nodeID),
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
func (r *resources) teardown(ctx context.Context, snsClient SNSAPI, sqsClient SQSAPI) error {
	var errs []error
	if r.subscriptionArn != "" {
		_, err := snsClient.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: &r.subscriptionArn})
		errs = append(errs, opErr("sns:Unsubscribe", r.subscriptionArn, err))
	}
	if r.queueURL != "" {
		_, err := sqsClient.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &r.queueURL})
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

// poll receives from the queue until ctx is cancelled, hands every message to handle and
// deletes the batch. Receive errors are retried with capped exponential backoff and jitter, and
// reported once per streak of failures, not once per attempt.
func (b *AdapterBuilder) poll(ctx context.Context) {
	res := b.resources()
	var failures int
	for ctx.Err() == nil {
		out, err := b.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:              &res.queueURL,
			MaxNumberOfMessages:   10,
			WaitTimeSeconds:       pollWaitSeconds,
			VisibilityTimeout:     receiveVisibilitySeconds,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			err = opErr("sqs:ReceiveMessage", res.queueURL, err)
			if isNotFound(err) {
				b.reprovision(ctx, res, err)
				if next := b.resources(); next != res {
					res, failures = next, 0
					continue
				}
			}
			failures++
			if failures == 1 {
				b.reportError(err)
			}
			sleepCtx(ctx, backoff(failures))
			continue
		}
		if failures > 0 {
			b.log.Info("sqsadapter: receiving again", "queue", res.queueURL, "failedAttempts", failures)
			failures = 0
		}
		if len(out.Messages) == 0 {
			continue
		}
		for i := range out.Messages {
			b.handleSQSMessage(&out.Messages[i])
			select {
			case b.deletes <- handled{res.queueURL, deref(out.Messages[i].ReceiptHandle)}:
			case <-ctx.Done():
				return // the queue is going away with what is left in it
			}
		}
	}
}

// handled is a received message to delete.
type handled struct{ queueURL, receiptHandle string }

// deleteLinger is how long a handled message may wait for others to share its
// DeleteMessageBatch; well within the receive visibility timeout.
const deleteLinger = time.Second

// deleteLoop deletes handled messages ten to a request, or after deleteLinger: under light load
// one request then serves several receives instead of one each. It stops with polling, leaving
// undeleted only what the queue's deletion (or replacement) takes away anyway.
func (b *AdapterBuilder) deleteLoop(ctx context.Context) {
	var batch []handled
	var linger <-chan time.Time
	flush := func() {
		if len(batch) > 0 {
			b.deleteMessages(ctx, batch)
		}
		batch, linger = nil, nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-linger:
			flush()
		case h := <-b.deletes:
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

func (b *AdapterBuilder) deleteMessages(ctx context.Context, batch []handled) {
	queueURL := batch[0].queueURL
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(batch))
	for i, h := range batch {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: ptr(strconv.Itoa(i)), ReceiptHandle: ptr(h.receiptHandle)}
	}
	out, err := b.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &queueURL, Entries: entries})
	if err != nil {
		if ctx.Err() == nil { // else closing: the queue goes with its messages
			b.reportError(opErr("sqs:DeleteMessageBatch", queueURL, err))
		}
		return
	}
	for _, f := range out.Failed {
		b.reportError(opErr("sqs:DeleteMessageBatch", queueURL,
			fmt.Errorf("entry %s failed: %s: %s", deref(f.Id), deref(f.Code), deref(f.Message))))
	}
}

// resources returns what provisioning made, nil before Init.
func (b *AdapterBuilder) resources() *resources {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.res
}

// reprovision makes a new queue and subscription (and the topic, if it went too) after AWS lost
// them: a queue or subscription deleted out of band, an emulator restarted. failed is what the
// caller found broken; if another goroutine replaced it meanwhile, there is nothing to do. Then
// every namespace announces itself again, so that the other nodes count this one.
func (b *AdapterBuilder) reprovision(ctx context.Context, failed *resources, cause error) {
	b.reprovisionMu.Lock()
	defer b.reprovisionMu.Unlock()
	if b.resources() != failed {
		return
	}
	b.reportError(fmt.Errorf("sqsadapter: making the queue and subscription again: %w", cause))
	res, err := provision(ctx, b.sns, b.sqs, &b.opts, b.nodeID)
	if err != nil {
		if ctx.Err() == nil {
			b.reportError(fmt.Errorf("sqsadapter: making the queue and subscription again failed: %w", err))
		}
		return
	}
	b.mu.Lock()
	closed := b.closed
	if !closed {
		b.res = res
	}
	b.mu.Unlock()
	cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.ShutdownTimeout)
	defer cancel()
	if closed { // Close ran meanwhile and removed the old set; remove the new one too
		if err := res.teardown(cleanupCtx, b.sns, b.sqs); err != nil {
			b.reportError(err)
		}
		return
	}
	b.stats.reprovisions.Add(1)
	b.log.Warn("sqsadapter: queue and subscription made again", "queue", res.queueURL, "topic", res.topicArn)
	// Whatever is left of the old set would keep receiving copies of every message.
	if err := failed.teardown(cleanupCtx, b.sns, b.sqs); err != nil && !isNotFound(err) {
		b.log.Debug("sqsadapter: removing the old queue and subscription", "error", err)
	}
	for _, a := range b.namespaceAdapters() {
		a.publishOrReport(wire.InitialHeartbeat, nil)
	}
}

// watchSubscription checks every SubscriptionCheckInterval that the subscription still exists:
// a subscription removed out of band leaves the queue silent without any error to notice.
func (b *AdapterBuilder) watchSubscription(ctx context.Context) {
	if b.opts.SubscriptionCheckInterval < 0 {
		return
	}
	t := time.NewTicker(b.opts.SubscriptionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res := b.resources()
		_, err := b.sns.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: &res.subscriptionArn})
		if err == nil || ctx.Err() != nil {
			continue
		}
		err = opErr("sns:GetSubscriptionAttributes", res.subscriptionArn, err)
		if isNotFound(err) {
			b.reprovision(ctx, res, err)
		} else {
			b.log.Warn("sqsadapter: could not check the subscription", "error", err)
		}
	}
}

// backoff is the wait after the n-th consecutive failure: 100 ms doubling up to 10 s, with
// full jitter so that nodes that failed together do not retry together.
func backoff(n int) time.Duration {
	const base, ceiling = 100 * time.Millisecond, 10 * time.Second
	d := ceiling
	if n < 10 {
		d = min(base<<(n-1), ceiling)
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = cryptorand.Read(b) // never fails
	return hex.EncodeToString(b)
}

func snsTags(tags map[string]string) []snstypes.Tag {
	out := make([]snstypes.Tag, 0, len(tags))
	for k, v := range tags {
		out = append(out, snstypes.Tag{Key: ptr(k), Value: ptr(v)})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
