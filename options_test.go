package sqsadapter

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestOptionsHeartbeatTimeoutDefaultsToTwiceTheInterval(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		opts                      *Options
		wantInterval, wantTimeout time.Duration
	}{
		{"nil options", nil, 5 * time.Second, 10 * time.Second},
		{"both unset", &Options{}, DefaultHeartbeatInterval, DefaultHeartbeatTimeout},
		{"only the interval", &Options{HeartbeatInterval: 20 * time.Second}, 20 * time.Second, 40 * time.Second},
		{"a short interval alone", &Options{HeartbeatInterval: 500 * time.Millisecond}, 500 * time.Millisecond, time.Second},
		{"explicit timeout kept", &Options{HeartbeatInterval: 20 * time.Second, HeartbeatTimeout: 25 * time.Second}, 20 * time.Second, 25 * time.Second},
		{"only the timeout", &Options{HeartbeatTimeout: 30 * time.Second}, 5 * time.Second, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts.withDefaults()
			if o.HeartbeatInterval != tc.wantInterval || o.HeartbeatTimeout != tc.wantTimeout {
				t.Fatalf("interval %v, timeout %v; want %v, %v",
					o.HeartbeatInterval, o.HeartbeatTimeout, tc.wantInterval, tc.wantTimeout)
			}
			if err := o.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
		})
	}
	if DefaultHeartbeatTimeout != 2*DefaultHeartbeatInterval {
		t.Fatalf("DefaultHeartbeatTimeout %v is not twice DefaultHeartbeatInterval %v", DefaultHeartbeatTimeout, DefaultHeartbeatInterval)
	}
}

func TestOptionsHeartbeatTimeoutStillCheckedWhenSet(t *testing.T) {
	// An explicit timeout is never raised to fit the interval: a mistake is reported.
	o := (&Options{HeartbeatInterval: 20 * time.Second, HeartbeatTimeout: 10 * time.Second}).withDefaults()
	if err := o.validate(); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "HeartbeatTimeout") {
		t.Fatalf("validate: %v, want ErrInvalidOptions about HeartbeatTimeout", err)
	}
	// A negative interval is reported as such, not hidden by a derived timeout.
	o = (&Options{HeartbeatInterval: -time.Second}).withDefaults()
	if err := o.validate(); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "HeartbeatInterval is negative") {
		t.Fatalf("validate: %v, want ErrInvalidOptions: HeartbeatInterval is negative", err)
	}
}

// noNetwork is an HTTP client that fails the test if the SDK sends anything.
type noNetwork struct{ calls atomic.Int32 }

func (n *noNetwork) Do(*http.Request) (*http.Response, error) {
	n.calls.Add(1)
	return nil, errors.New("noNetwork: the SDK sent a request")
}

func TestRegionHintOnTheSDKsMissingRegionError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Real clients as a user builds them with no region anywhere: the SDK fails before sending.
	hc := &noNetwork{}
	cfg := aws.Config{
		Region:      "",
		Credentials: aws.AnonymousCredentials{},
		HTTPClient:  hc,
	}
	_, snsErr := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("socket-io")})
	_, sqsErr := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("socket-io-x")})
	if n := hc.calls.Load(); n != 0 {
		t.Fatalf("the SDK sent %d requests without a region", n)
	}
	for op, sdkErr := range map[string]error{"sns:CreateTopic": snsErr, "sqs:CreateQueue": sqsErr} {
		if sdkErr == nil || !strings.Contains(sdkErr.Error(), "Missing Region") {
			t.Fatalf("the SDK's error without a region is %v; regionHint looks for \"Missing Region\"", sdkErr)
		}
		// As Init returns it: an *OpError around the SDK's error.
		err := error(&OpError{Op: op, Resource: "socket-io", Err: sdkErr})
		got := regionHint(err)
		if !errors.Is(got, errMissingRegion) || !strings.Contains(got.Error(), "AWS_REGION") ||
			!strings.Contains(got.Error(), "config.WithRegion") {
			t.Fatalf("regionHint(%v) = %v, want the hint", err, got)
		}
		if !strings.HasPrefix(got.Error(), err.Error()) {
			t.Fatalf("regionHint changed the error's text: %q, want it to start with %q", got, err)
		}
		var oe *OpError
		if !errors.As(got, &oe) || oe.Op != op || !errors.Is(got, sdkErr) {
			t.Fatalf("regionHint(%v) = %v, no longer wraps the *OpError and the SDK's error", err, got)
		}
		if again := regionHint(got); again != got {
			t.Fatalf("regionHint added the hint twice: %v", again)
		}
		t.Logf("%v", got)
	}
}

func TestRegionHintLeavesOtherErrorsAlone(t *testing.T) {
	if regionHint(nil) != nil {
		t.Fatal("regionHint(nil) != nil")
	}
	other := error(&OpError{Op: "sns:Subscribe", Resource: "socket-io", Err: errors.New("AuthorizationError: not authorized")})
	if got := regionHint(other); got != other {
		t.Fatalf("regionHint(%v) = %v, want it unchanged", other, got)
	}
	// The SDK's older endpoint resolvers return aws.MissingRegionError.
	if got := regionHint(&aws.MissingRegionError{}); !errors.Is(got, errMissingRegion) {
		t.Fatalf("regionHint(aws.MissingRegionError) = %v, want the hint", got)
	}
}

// Init without a region says where a region comes from.
func TestInitWithoutARegionSaysHowToSetOne(t *testing.T) {
	cfg := aws.Config{Credentials: aws.AnonymousCredentials{}, HTTPClient: &noNetwork{}}
	b := NewAdapterBuilder(sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg), &Options{Logger: testLogger(t)})
	err := b.Init(context.Background())
	if !errors.Is(err, errMissingRegion) || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Fatalf("Init: %v, want the hint to set AWS_REGION", err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
