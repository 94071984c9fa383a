package sqsadapter

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
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
	SetTopicAttributes(context.Context, *sns.SetTopicAttributesInput, ...func(*sns.Options)) (*sns.SetTopicAttributesOutput, error)
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
	// SendMessage is only called with Options.DeadLetterQueueURL, on that queue.
	SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var (
	_ SNSAPI = (*sns.Client)(nil)
	_ SQSAPI = (*sqs.Client)(nil)
)

// sdkMaxBackoff caps the AWS SDK's own wait between the attempts of one data-path request
// (publish, receive, delete) and of the clean-up on close. The SDK's default waits up to 2 s after the first throttled or
// failed attempt, more than the reorder window: a message delayed that long would overtake
// nothing but arrive late. A capped, fixed wait still backs off; a streak that outlasts the
// SDK's attempts falls back on the adapter's own capped exponential backoff.
const sdkMaxBackoff = 200 * time.Millisecond

func capSNSBackoff(o *sns.Options) {
	if o.Retryer != nil {
		o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, sdkMaxBackoff)
	}
}

func capSQSBackoff(o *sqs.Options) {
	if o.Retryer != nil {
		o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, sdkMaxBackoff)
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
