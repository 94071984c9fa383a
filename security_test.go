package sqsadapter

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// recordingQueue remembers the CreateQueue and SetQueueAttributes inputs.
type recordingQueue struct {
	*fakeAWS
	created *sqs.CreateQueueInput
	policy  string
}

func (r *recordingQueue) CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, o ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error) {
	r.created = in
	return r.fakeAWS.CreateQueue(ctx, in, o...)
}

func (r *recordingQueue) SetQueueAttributes(ctx context.Context, in *sqs.SetQueueAttributesInput, o ...func(*sqs.Options)) (*sqs.SetQueueAttributesOutput, error) {
	r.policy = in.Attributes["Policy"]
	return r.fakeAWS.SetQueueAttributes(ctx, in, o...)
}

func provisionWith(t *testing.T, opts Options) *recordingQueue {
	t.Helper()
	q := &recordingQueue{fakeAWS: &fakeAWS{}}
	opts.Logger = testLogger(t)
	b := NewAdapterBuilder(q.fakeAWS, q, &opts)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return q
}

func TestQueuePolicyAcceptsOnlyTheTopic(t *testing.T) {
	q := provisionWith(t, Options{TopicName: "my-topic"})
	var policy struct {
		Statement []struct {
			Effect, Action, Resource string
			Condition                map[string]map[string]string
		}
	}
	if err := json.Unmarshal([]byte(q.policy), &policy); err != nil {
		t.Fatal(err)
	}
	if len(policy.Statement) != 1 {
		t.Fatalf("policy %s", q.policy)
	}
	s := policy.Statement[0]
	if s.Effect != "Allow" || s.Action != "SQS:SendMessage" || s.Resource != "arn:aws:sqs:us-east-1:000000000000:q" ||
		s.Condition["ArnEquals"]["aws:SourceArn"] != "arn:aws:sns:us-east-1:000000000000:my-topic" {
		t.Fatalf("policy %s", q.policy)
	}
}

func TestQueueEncryption(t *testing.T) {
	q := provisionWith(t, Options{})
	if q.created.Attributes["SqsManagedSseEnabled"] != "true" {
		t.Fatalf("attributes %v, want SSE-SQS", q.created.Attributes)
	}
	q = provisionWith(t, Options{KMSKeyID: "alias/cluster"})
	if q.created.Attributes["KmsMasterKeyId"] != "alias/cluster" || q.created.Attributes["SqsManagedSseEnabled"] != "" {
		t.Fatalf("attributes %v, want SSE-KMS with the key", q.created.Attributes)
	}
	if q.created.Attributes["MessageRetentionPeriod"] != "60" || q.created.Tags[nodeTag] == "" {
		t.Fatalf("attributes %v tags %v", q.created.Attributes, q.created.Tags)
	}
}

func TestCredentialsNeverAppearInLogsOrErrors(t *testing.T) {
	const keyID, secret, token = "AKIAEXAMPLEKEYID1234", "s3cr3t/Example+Secret/Key0123456789abcd", "SessionTokenExample987"
	var logs bytes.Buffer
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, token),
		BaseEndpoint: aws.String("http://127.0.0.1:1"),
	}
	var reported []string
	b := NewAdapterBuilder(sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg), &Options{
		Logger:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnError: func(err error) { reported = append(reported, err.Error()) },
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := b.Init(ctx)
	if err == nil {
		t.Fatal("Init succeeded against a closed port")
	}
	_ = b.Close(context.Background())
	all := logs.String() + err.Error() + strings.Join(reported, "\n")
	for _, s := range []string{keyID, secret, token} {
		if strings.Contains(all, s) {
			t.Fatalf("%q appears in:\n%s", s, all)
		}
	}
}

func TestSubscriptionFilterPolicy(t *testing.T) {
	attrs := subscriptionAttributes(&Options{}, "0a1b2c3d")
	want := `{"$or":[{"requesterUid":[{"exists":false}]},{"requesterUid":[{"prefix":"0a1b2c3d"}]}],"uid":[{"anything-but":{"prefix":"0a1b2c3d"}}]}`
	if attrs["RawMessageDelivery"] != "true" || attrs["FilterPolicy"] != want {
		t.Fatalf("attributes %v", attrs)
	}
	if attrs := subscriptionAttributes(&Options{DisableSubscriptionFilter: true}, "0a1b2c3d"); len(attrs) != 1 {
		t.Fatalf("attributes %v, want raw delivery only", attrs)
	}
}
