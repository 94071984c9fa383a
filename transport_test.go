package sqsadapter

// The transport through the AWS-like proxy (internal/awsproxy): round trips of 15-25 ms, and
// on demand the faults AWS shows and the emulator does not.

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/socketio-go/aws-sqs-adapter/internal/awsproxy"
	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// startProxy puts an AWS-like proxy with profile p in front of the endpoint under test.
func startProxy(t testing.TB, p awsproxy.Profile) *awsproxy.Proxy {
	t.Helper()
	testsupport.RequireAWS(t) // skips, or fails under CI, without an endpoint
	px, err := awsproxy.Start(os.Getenv("AWS_ENDPOINT_URL"), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() })
	return px
}

// proxiedConfig is the AWS configuration of the endpoint under test, reached through px.
func proxiedConfig(t testing.TB, px *awsproxy.Proxy) aws.Config {
	cfg := testsupport.AWSConfig(t)
	cfg.BaseEndpoint = aws.String(px.URL())
	return cfg
}

// proxiedCluster starts size nodes whose AWS clients go through px; tweak, if set, changes the
// options of node i.
func proxiedCluster(t testing.TB, px *awsproxy.Proxy, size int, opts *Options, tweak ...func(i int, o *Options)) []*node {
	t.Helper()
	cfg := proxiedConfig(t, px)
	nodes := make([]*node, size)
	for i := range nodes {
		o := *opts
		for _, f := range tweak {
			f(i, &o)
		}
		nodes[i] = startNodeWith(t, NewAdapterBuilder(sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg), &o))
	}
	waitServerCount(t, nodes, "/", size)
	return nodes
}

// orderRecorder records the ids of event "n" that one client receives, from each sender.
type orderRecorder struct {
	mu  sync.Mutex
	ids map[int][]int // sender => ids in arrival order
}

func recordOrder(cl *testClient) *orderRecorder {
	r := &orderRecorder{ids: map[int][]int{}}
	_ = cl.On("n", func(args ...any) {
		sender, id := int(args[0].(float64)), int(args[1].(float64))
		r.mu.Lock()
		r.ids[sender] = append(r.ids[sender], id)
		r.mu.Unlock()
	})
	return r
}

// check counts, for the ids 0..sent-1 of sender: missing, duplicated, and inversions (an id
// received after a higher one).
func (r *orderRecorder) check(sender, sent int) (received, missing, duplicated, inversions int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int]int{}
	last := -1
	for _, id := range r.ids[sender] {
		seen[id]++
		if id < last {
			inversions++
		}
		last = max(last, id)
	}
	for id := range sent {
		switch seen[id] {
		case 0:
			missing++
		case 1:
		default:
			duplicated++
		}
	}
	return len(r.ids[sender]), missing, duplicated, inversions
}

// 2000 broadcasts from one server, emitted as fast as it can, through a proxy that reorders
// every receive and adds AWS's round trips: every client of the other servers sees them all,
// once each, in the order they were emitted.
func TestBroadcastsKeepTheirSendersOrderThroughReordering(t *testing.T) {
	p := awsproxy.AWSLike()
	p.Reorder = true
	px := startProxy(t, p)
	opts := testOptions(t)
	opts.HeartbeatTimeout = 10 * time.Second // a loaded machine must not expire live nodes
	nodes := proxiedCluster(t, px, 3, opts)
	var recorders []*orderRecorder
	for _, n := range nodes[1:] {
		for range 2 {
			cl, _ := connect(t, n, "/", nil)
			recorders = append(recorders, recordOrder(cl))
		}
	}
	const sent = 2000
	start := time.Now()
	for id := range sent {
		nodes[0].io.Emit("n", 0, id)
	}
	emitted := time.Since(start)
	eventually(t, 60*time.Second, func() bool {
		for _, r := range recorders {
			if got, _, _, _ := r.check(0, sent); got < sent {
				return false
			}
		}
		return true
	}, "every client received %d broadcasts", sent)
	took := time.Since(start)
	for i, r := range recorders {
		got, missing, duplicated, inversions := r.check(0, sent)
		if missing != 0 || duplicated != 0 || inversions != 0 {
			t.Errorf("client %d: %d received, %d missing, %d duplicated, %d out of order", i, got, missing, duplicated, inversions)
		}
	}
	var reordered uint64
	for i, n := range nodes[1:] {
		reordered += n.builder.Stats().Reordered
		t.Logf("node %d: %+v", i+1, n.builder.Stats())
	}
	t.Logf("%d broadcasts emitted in %v, all received in %v; %d held by receivers to restore the order; proxy: %+v",
		sent, emitted.Round(time.Millisecond), took.Round(time.Millisecond), reordered, px.Counts())
	if px.Counts().Reordered == 0 {
		t.Fatal("the proxy reordered nothing: the test proves nothing")
	}
}

// Throttled publishes are retried with backoff, not in a tight loop; the streak is reported
// once, and what was emitted during it arrives once SNS answers again.
func TestThrottledPublishesAreRetriedWithBackoffAndReportedOnce(t *testing.T) {
	px := startProxy(t, awsproxy.Profile{})
	opts := testOptions(t)
	opts.HeartbeatTimeout = 10 * time.Second
	sink := &countingSink{} // the sender's: the other node's heartbeats are throttled too
	nodes := proxiedCluster(t, px, 2, opts, func(i int, o *Options) {
		if i == 0 {
			o.OnError = sink.onError
		}
	})
	cl, _ := connect(t, nodes[1], "/", nil)
	r := recordOrder(cl)

	throttled := awsproxy.Profile{Throttle: 1, FaultActions: []string{"Publish", "PublishBatch"}}
	px.SetProfile(throttled)
	before := px.Counts()
	const sent = 50
	for id := range sent {
		nodes[0].io.Emit("n", 0, id)
	}
	time.Sleep(3 * time.Second) // SNS refuses everything for 3 s
	during := px.Counts()
	px.SetProfile(awsproxy.Profile{})
	eventually(t, 30*time.Second, func() bool { got, _, _, _ := r.check(0, sent); return got >= sent },
		"the client received the %d broadcasts emitted while SNS throttled", sent)
	// A batch retried for seconds arrives after the reorder window: late, and counted.
	_, missing, duplicated, inversions := r.check(0, sent)
	if late := nodes[1].builder.Stats().LateDeliveries; missing+duplicated != 0 || uint64(inversions) > late {
		t.Fatalf("%d missing, %d duplicated, %d out of order with %d counted late", missing, duplicated, inversions, late)
	}
	attempts := during.Throttled - before.Throttled
	// The SDK tries each request 3 times, then the adapter backs off from 100 ms up to 10 s:
	// a few dozen requests in 3 s, where a tight loop would make thousands.
	if attempts == 0 || attempts > 100 {
		t.Fatalf("%d publish requests throttled in 3 s", attempts)
	}
	var reports int
	for _, err := range sink.snapshot() {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "Throttling" {
			reports++
		}
	}
	if reports != 1 {
		t.Fatalf("the throttling streak was reported %d times, want once: %v", reports, sink.snapshot())
	}
	t.Logf("%d publish requests throttled in 3 s, reported once", attempts)
}
