package sqsadapter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/offload"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// hangingS3 never answers GetObject: it waits for the request's context.
type hangingS3 struct {
	offload.S3API
	gets atomic.Int64
}

func (h *hangingS3) GetObject(ctx context.Context, _ *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	h.gets.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// pointerMessage is an SQS message from another Go server that points at key.
func pointerMessage(bucket, key string) *sqstypes.Message {
	return pointerMessageFrom("0123456789abcdef", bucket, key)
}

func pointerMessageFrom(uid, bucket, key string) *sqstypes.Message {
	m := &wire.Message{Type: wire.Broadcast, Nsp: "/", UID: uid, ID: uid[:8] + "/*/1"}
	m = m.Offloaded(wire.PointerTo(bucket, key, []byte{1, 2, 3}))
	attrs := map[string]sqstypes.MessageAttributeValue{}
	for name, v := range m.SNSAttributes() {
		attrs[name] = sqstypes.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return &sqstypes.Message{Body: ptr(m.Body()), MessageAttributes: attrs, MessageId: ptr("sqs-1")}
}

// A GetObject that never answers holds a receive for LargeMessageTimeout, no longer; a
// pointer outside the configured bucket and prefix is not fetched at all; both are reported,
// counted and dropped. Without a bucket, a pointer is reported and dropped too.
func TestLargeMessageFetchIsBounded(t *testing.T) {
	fake := &hangingS3{}
	var mu sync.Mutex
	var reported []error
	b := NewAdapterBuilder(nil, nil, &Options{
		S3Client: fake, LargeMessageBucket: "bucket", LargeMessageTimeout: 200 * time.Millisecond,
		Logger: discardLogger(), OnError: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() },
	})
	start := time.Now()
	b.handleSQSMessage(pointerMessage("bucket", DefaultLargeMessagePrefix+"01234567/x"))
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Fatalf("receiving took %v, want about the 200ms timeout", d)
	}
	b.handleSQSMessage(pointerMessage("other-bucket", DefaultLargeMessagePrefix+"x"))
	b.handleSQSMessage(pointerMessage("bucket", "elsewhere/x"))
	b.handleSQSMessage(pointerMessageFrom(b.nodeID+"01234567", "bucket", DefaultLargeMessagePrefix+"own"))
	if n := fake.gets.Load(); n != 1 {
		t.Fatalf("%d GetObject, want 1 (none for pointers outside the bucket and prefix, nor for own messages)", n)
	}
	if s := b.Stats(); s.LargeMessageFailures != 3 || s.LargeMessagesFetched != 0 || s.UnknownNamespaces != 0 || s.NotForUs != 1 {
		t.Fatalf("stats %+v: want 3 failures and nothing delivered", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 3 || !errors.Is(reported[0], context.DeadlineExceeded) || !errors.Is(reported[1], offload.ErrForeignObject) {
		t.Fatalf("reported %v", reported)
	}

	plain := NewAdapterBuilder(nil, nil, &Options{Logger: discardLogger()})
	plain.handleSQSMessage(pointerMessage("bucket", DefaultLargeMessagePrefix+"x"))
	if s := plain.Stats(); s.LargeMessageFailures != 1 || s.Malformed != 0 {
		t.Fatalf("without a bucket: %+v, want 1 large-message failure", s)
	}
}

// lifecycleS3 keeps a bucket's lifecycle configuration, or fails the read with failGet.
type lifecycleS3 struct {
	offload.S3API
	rules   []s3types.LifecycleRule
	has     bool
	failGet error
	puts    int
}

func (l *lifecycleS3) GetBucketLifecycleConfiguration(context.Context, *s3.GetBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error) {
	if l.failGet != nil {
		return nil, l.failGet
	}
	if !l.has {
		return nil, apiError("NoSuchLifecycleConfiguration")
	}
	return &s3.GetBucketLifecycleConfigurationOutput{Rules: l.rules}, nil
}

func (l *lifecycleS3) PutBucketLifecycleConfiguration(_ context.Context, in *s3.PutBucketLifecycleConfigurationInput, _ ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error) {
	l.puts++
	l.rules, l.has = in.LifecycleConfiguration.Rules, true
	return &s3.PutBucketLifecycleConfigurationOutput{}, nil
}

// Init sets the expiry rule on a bucket without a lifecycle configuration, leaves it alone the
// second time; Init fails with the S3 call when it may not read the configuration, and
// provisions nothing.
func TestLargeMessageLifecycleRule(t *testing.T) {
	ls := &lifecycleS3{}
	store := &offload.Store{Client: ls, Bucket: "b", Prefix: "p/", Threshold: 1, Timeout: time.Second}
	for range 2 {
		if err := store.EnsureLifecycle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if ls.puts != 1 || len(ls.rules) != 1 || *ls.rules[0].Filter.Prefix != "p/" || *ls.rules[0].Expiration.Days != 1 {
		t.Fatalf("%d puts, rules %+v: want one put of one rule expiring p/ after 1 day", ls.puts, ls.rules)
	}

	f := &fakeAWS{}
	b := NewAdapterBuilder(f, f, &Options{
		Logger: discardLogger(), S3Client: &lifecycleS3{failGet: apiError("AccessDenied")},
		LargeMessageBucket: "b", LargeMessageLifecycle: true,
	})
	err := b.Init(context.Background())
	var opErr *OpError
	if !errors.As(err, &opErr) || opErr.Op != "s3:GetBucketLifecycleConfiguration" {
		t.Fatalf("Init: %v, want the s3:GetBucketLifecycleConfiguration error", err)
	}
	if b.resources() != nil {
		t.Fatal("Init provisioned although the lifecycle rule failed")
	}
	_ = b.Close(context.Background())
}
