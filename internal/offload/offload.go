// Package offload keeps the data of cluster messages too large for SNS in S3, for the adapter
// and the emitter: the sender puts it in an object and publishes a pointer (see wire.Pointer);
// every receiver reads the object. Nobody deletes objects on receipt (with SNS fan-out no
// receiver knows it is the last one): they expire by a lifecycle rule on the prefix.
package offload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/socketio-go/aws-sqs-adapter/internal/awsop"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// S3API is the part of the S3 client that offloading uses; *s3.Client implements it. Each
// method is the SDK's method of the same name. The lifecycle methods are only called when the
// lifecycle rule is asked for.
type S3API interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	GetBucketLifecycleConfiguration(context.Context, *s3.GetBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error)
	PutBucketLifecycleConfiguration(context.Context, *s3.PutBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// Defaults shared by the adapter and the emitter.
const (
	DefaultPrefix = "socketio-sqsadapter/"
	// DefaultThreshold is the largest message (as wire.Message.Size counts it) published inline:
	// 180 KiB. SNS allows 256 KiB, but the fauxqs emulator counts a Binary attribute at the
	// length of its base64 text (4/3 of its bytes), which puts its limit near 192 KiB of data;
	// 180 KiB leaves room for the other attributes there too. On AWS it may be raised up to
	// wire.MaxMessageSize.
	DefaultThreshold = 180 * 1024
	DefaultTimeout   = 5 * time.Second
	// ExpirationDays is how long the lifecycle rule keeps an object: S3's shortest expiration.
	ExpirationDays = 1
)

// Store puts and gets the objects of offloaded messages.
type Store struct {
	Client    S3API
	Bucket    string
	Prefix    string
	Threshold int
	Timeout   time.Duration // bounds each PutObject and GetObject
}

// NewStore returns the store of bucket, with the defaults for a zero prefix, threshold or
// timeout: the adapter and the emitter describe it with the same options.
func NewStore(client S3API, bucket, prefix string, threshold int, timeout time.Duration) *Store {
	s := &Store{Client: client, Bucket: bucket, Prefix: prefix, Threshold: threshold, Timeout: timeout}
	if s.Prefix == "" {
		s.Prefix = DefaultPrefix
	}
	if s.Threshold == 0 {
		s.Threshold = DefaultThreshold
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	return s
}

// Wants reports whether m is to be offloaded: the store is configured, m's type may be
// offloaded (see wire.Type.Offloadable) and m is over the threshold.
func (s *Store) Wants(m *wire.Message) bool {
	return s != nil && s.Client != nil && s.Bucket != "" && m.Data != nil && m.Type.Offloadable() && m.Size() > s.Threshold
}

// Key is the object key of the message with msgId id from sender.
func (s *Store) Key(sender, id string) string {
	// msgIds of Go servers have slashes and a "*"; keep the key one path segment per sender.
	r := strings.NewReplacer("/", "_", "*", "all")
	return s.Prefix + r.Replace(sender) + "/" + r.Replace(id)
}

// Put stores m's data under key and returns m as it travels: with a pointer, and the stand-in
// for Node servers instead of its data (see wire.Message.Offloaded).
// An error is an *awsop.OpError (or a MessageTooLargeError for data S3 is not meant to carry).
func (s *Store) Put(ctx context.Context, m *wire.Message, key string) (*wire.Message, error) {
	if len(m.Data) > wire.MaxOffloadedSize {
		return nil, &wire.MessageTooLargeError{Type: m.Type.String(), Nsp: m.Nsp, Size: len(m.Data), Limit: wire.MaxOffloadedSize}
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	p := wire.PointerTo(s.Bucket, key, m.Data)
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.Bucket,
		Key:           &key,
		Body:          bytes.NewReader(m.Data),
		ContentLength: ptr(int64(len(m.Data))),
		ContentType:   ptr("application/x-msgpack"),
	})
	if err != nil {
		return nil, awsop.Wrap("s3:PutObject", s.Bucket+"/"+key, err)
	}
	return m.Offloaded(p), nil
}

// ErrForeignObject is wrapped by the error of a pointer outside the configured bucket and
// prefix: a receiver reads nothing else, whatever a message on the topic asks.
var ErrForeignObject = errors.New("the pointer names an object outside the configured bucket and prefix")

// Get reads the object p points at, within the timeout, and checks its size and SHA-256.
func (s *Store) Get(ctx context.Context, p *wire.Pointer) ([]byte, error) {
	if s == nil || s.Client == nil || s.Bucket == "" {
		return nil, errors.New("an offloaded message arrived, but large messages are not configured (no S3 bucket)")
	}
	if p.Bucket != s.Bucket || !strings.HasPrefix(p.Key, s.Prefix) {
		return nil, fmt.Errorf("%w: %s/%s", ErrForeignObject, p.Bucket, p.Key)
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &p.Bucket, Key: &p.Key})
	if err != nil {
		return nil, awsop.Wrap("s3:GetObject", p.Bucket+"/"+p.Key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, int64(p.Size)+1))
	if err != nil {
		return nil, awsop.Wrap("s3:GetObject", p.Bucket+"/"+p.Key, err)
	}
	if err := p.Verify(data); err != nil {
		return nil, err
	}
	return data, nil
}

// RuleID is the ID of the lifecycle rule EnsureLifecycle sets for prefix.
func RuleID(prefix string) string {
	id := "socketio-sqsadapter-expiry:" + prefix
	if len(id) > 255 { // S3's limit on rule IDs
		id = id[:255]
	}
	return id
}

// EnsureLifecycle makes sure the bucket has a rule that expires the objects under the prefix
// after ExpirationDays. PutBucketLifecycleConfiguration replaces a bucket's whole
// configuration, so the other rules are read first and kept; nothing is written when the rule
// is there already.
func (s *Store) EnsureLifecycle(ctx context.Context) error {
	var rules []s3types.LifecycleRule
	out, err := s.Client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &s.Bucket})
	var apiErr smithy.APIError
	switch {
	case err == nil:
		rules = out.Rules
	case errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchLifecycleConfiguration":
	default:
		return awsop.Wrap("s3:GetBucketLifecycleConfiguration", s.Bucket, err)
	}
	want := s.rule()
	kept := rules[:0:0]
	for _, r := range rules {
		if deref(r.ID) == *want.ID {
			if sameRule(r, want) {
				return nil
			}
			continue
		}
		kept = append(kept, r)
	}
	_, err = s.Client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket:                 &s.Bucket,
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: append(kept, want)},
	})
	return awsop.Wrap("s3:PutBucketLifecycleConfiguration", s.Bucket, err)
}

func (s *Store) rule() s3types.LifecycleRule {
	return s3types.LifecycleRule{
		ID:         ptr(RuleID(s.Prefix)),
		Status:     s3types.ExpirationStatusEnabled,
		Filter:     &s3types.LifecycleRuleFilter{Prefix: ptr(s.Prefix)},
		Expiration: &s3types.LifecycleExpiration{Days: ptr(int32(ExpirationDays))},
	}
}

func sameRule(a, b s3types.LifecycleRule) bool {
	return a.Status == b.Status && a.Filter != nil && deref(a.Filter.Prefix) == deref(b.Filter.Prefix) &&
		a.Filter.And == nil && a.Filter.Tag == nil &&
		a.Expiration != nil && a.Expiration.Days != nil && *a.Expiration.Days == *b.Expiration.Days
}

// Validate checks the settings of a configured store.
func (s *Store) Validate() error {
	switch {
	case s.Client == nil:
		return errors.New("LargeMessageBucket is set but S3Client is nil")
	case s.Threshold <= 0 || s.Threshold > wire.MaxMessageSize:
		return fmt.Errorf("LargeMessageThreshold (%d) must be between 1 and %d (the SNS limit)", s.Threshold, wire.MaxMessageSize)
	case s.Prefix == "" || len(s.Prefix) > 512:
		return fmt.Errorf("LargeMessagePrefix %q must be 1 to 512 characters", s.Prefix)
	case s.Timeout <= 0:
		return fmt.Errorf("LargeMessageTimeout (%v) must be positive", s.Timeout)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
