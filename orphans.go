package sqsadapter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// A node that crashes leaves its queue and subscription behind; SNS keeps copying every cluster
// message into the queue. The surviving nodes remove them: every queue this adapter creates is
// tagged with its node's id, every node hears the others' heartbeats, so a queue subscribed to
// the cluster's topic whose tag names a node nobody has heard for the heartbeat timeout belongs
// to a dead node. Queues without the tag (Node servers running upstream's adapter, anything
// else subscribed to the topic) are never touched. Deleting the queue of a node that was only
// cut off is not fatal: it finds its queue gone and makes a new one (see reprovision).

// nodeTag is the queue tag that names the node a queue belongs to.
const nodeTag = "socketio-sqsadapter:node"

// ErrTooEarly is returned by CleanupOrphans before this node has been up for twice the longer
// heartbeat timeout (GoHeartbeatTimeout): until then it may not have heard from every live node.
var ErrTooEarly = errors.New("sqsadapter: too early to tell live nodes from dead ones")

// cleanupOrphans removes the queues and subscriptions of dead nodes and the subscriptions whose
// queue is gone; see AdapterBuilder.CleanupOrphans.
func (t *transport) cleanupOrphans(ctx context.Context) ([]string, error) {
	res := t.resources()
	if res == nil {
		return nil, errors.New("CleanupOrphans before Init succeeded")
	}
	if up := time.Since(t.startedAt()); up < 2*t.opts.GoHeartbeatTimeout {
		return nil, fmt.Errorf("%w: up for %v, needs %v", ErrTooEarly, up.Round(time.Millisecond), 2*t.opts.GoHeartbeatTimeout)
	}
	live := t.up.liveNodeIDs()
	var removed []string
	var errs []error
	pages := sns.NewListSubscriptionsByTopicPaginator(t.sns, &sns.ListSubscriptionsByTopicInput{TopicArn: &res.topicArn})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return removed, opErr("sns:ListSubscriptionsByTopic", res.topicArn, err)
		}
		for _, s := range page.Subscriptions {
			if deref(s.Protocol) != "sqs" || deref(s.Endpoint) == res.queueArn || deref(s.SubscriptionArn) == res.subscriptionArn {
				continue
			}
			what, err := t.removeIfOrphan(ctx, deref(s.SubscriptionArn), deref(s.Endpoint), live)
			if what != "" {
				removed = append(removed, what)
			}
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// removeIfOrphan removes the subscription subArn and its queue queueArn if the queue is gone or
// belongs to a node of this adapter that is not live. It returns what it removed.
func (t *transport) removeIfOrphan(ctx context.Context, subArn, queueArn string, live map[string]bool) (string, error) {
	// arn:aws:sqs:region:account:name
	parts := strings.Split(queueArn, ":")
	if len(parts) != 6 {
		return "", nil
	}
	urlOut, err := t.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: &parts[5], QueueOwnerAWSAccountId: &parts[4]})
	if isNotFound(err) {
		_, err := t.sns.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: &subArn})
		if err = opErr("sns:Unsubscribe", subArn, err); err != nil && !isNotFound(err) {
			return "", err
		}
		t.log.Warn("sqsadapter: removed a subscription whose queue is gone", "subscription", subArn, "queue", queueArn)
		return subArn, nil // a subscription whose queue is gone serves no one
	}
	if err != nil {
		return "", opErr("sqs:GetQueueUrl", parts[5], err)
	}
	queueURL := deref(urlOut.QueueUrl)
	tags, err := t.sqs.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: &queueURL})
	if err != nil {
		return "", opErr("sqs:ListQueueTags", queueURL, err)
	}
	node, ours := tags.Tags[nodeTag]
	if !ours || live[node] {
		return "", nil
	}
	attrs, err := t.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &queueURL, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameCreatedTimestamp},
	})
	if err != nil {
		return "", opErr("sqs:GetQueueAttributes", queueURL, err)
	}
	created, err := strconv.ParseInt(attrs.Attributes[string(sqstypes.QueueAttributeNameCreatedTimestamp)], 10, 64)
	if err != nil || time.Since(time.Unix(created, 0)) < 2*t.opts.GoHeartbeatTimeout {
		return "", nil // a node that may still be starting
	}
	if err := t.teardown(ctx, &resources{queueURL: queueURL, subscriptionArn: subArn}); err != nil && !isNotFound(err) {
		return "", err // not found: another surviving node removed it first
	}
	t.log.Warn("sqsadapter: removed what a dead node left behind", "node", node, "queue", queueURL, "subscription", subArn)
	return queueURL, nil
}

// cleanupLoop runs cleanupOrphans every OrphanCleanupInterval, give or take a fifth so that the
// nodes of a cluster started together do not all list the topic at once.
func (t *transport) cleanupLoop(ctx context.Context) {
	if t.opts.OrphanCleanupInterval < 0 {
		return
	}
	for {
		d := t.opts.OrphanCleanupInterval
		sleepCtx(ctx, d-d/5+rand.N(2*d/5+1))
		if ctx.Err() != nil {
			return
		}
		if _, err := t.cleanupOrphans(ctx); err != nil && !errors.Is(err, ErrTooEarly) && ctx.Err() == nil {
			t.errs.report(fmt.Errorf("cleaning up after dead nodes: %w", err))
		}
	}
}
