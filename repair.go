package sqsadapter

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// Making again what AWS lost: a queue or subscription deleted out of band, a topic deleted, an
// emulator restarted. A lost queue is noticed by the next poll and a lost topic by the next
// publish; a lost subscription leaves the queue silent without any error, so it is checked.

// reprovision makes a new queue and subscription (and the topic, if it went too). failed is what
// the caller found broken; if another goroutine replaced it meanwhile, there is nothing to do.
// Then the cluster logic announces this node again, so that the other nodes count it.
func (t *transport) reprovision(ctx context.Context, failed *resources, cause error) {
	t.reprovisionMu.Lock()
	defer t.reprovisionMu.Unlock()
	if t.resources() != failed {
		return
	}
	t.errs.report(fmt.Errorf("making the queue and subscription again: %w", cause))
	t.markLost(cause) // Ready fails until they exist again
	res, err := t.provision(ctx)
	if err != nil {
		t.markLost(err)
		if ctx.Err() == nil {
			t.errs.report(fmt.Errorf("making the queue and subscription again failed: %w", err))
		}
		return
	}
	t.mu.Lock()
	closed := t.closed
	if !closed {
		t.res, t.lost = res, nil
	}
	t.mu.Unlock()
	cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.opts.ShutdownTimeout)
	defer cancel()
	if closed { // close ran meanwhile and removed the old set; remove the new one too
		if err := t.teardown(cleanupCtx, res); err != nil {
			t.errs.report(err)
		}
		return
	}
	atomic.AddUint64(&t.stats.s.Reprovisions, 1)
	t.log.Warn("sqsadapter: queue and subscription made again", "queue", res.queueURL, "topic", res.topicArn, "node", t.nodeID)
	// Whatever is left of the old set would keep receiving copies of every message.
	if err := t.teardown(cleanupCtx, failed); err != nil && !isNotFound(err) {
		t.log.Debug("sqsadapter: removing the old queue and subscription", "error", err)
	}
	t.up.rejoined()
}

// watchSubscription checks every SubscriptionCheckInterval that the subscription still exists.
func (t *transport) watchSubscription(ctx context.Context) {
	if t.opts.SubscriptionCheckInterval < 0 {
		return
	}
	tick := time.NewTicker(t.opts.SubscriptionCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		res := t.resources()
		_, err := t.sns.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: &res.subscriptionArn})
		if err == nil || ctx.Err() != nil {
			continue
		}
		err = opErr("sns:GetSubscriptionAttributes", res.subscriptionArn, err)
		if isNotFound(err) {
			t.reprovision(ctx, res, err)
		} else {
			t.log.Warn("sqsadapter: could not check the subscription", "error", err)
		}
	}
}
