package main

// The phases that emit and measure: latency, the throughput search, the baseline, one step,
// and waiting for the queues to empty.

import (
	"context"
	"fmt"
	"log"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// Step ids: 0 for the warm-up, 1 for latency, 2.. for the throughput search.
const latencyStep = 1

// measureLatency runs the latency step: LatencyRate for LatencySeconds.
func (b *bencher) measureLatency(ctx context.Context, side string, c cluster, tr *tracker, topic string) (step, error) {
	log.Printf("%s: latency at %.0f/s for %.0f s", side, b.s.LatencyRate, b.s.LatencySeconds)
	return b.runStep(ctx, c, tr, topic, latencyStep, b.s.LatencyRate, int(b.s.LatencyRate*b.s.LatencySeconds))
}

// searchThroughput doubles the rate from StartRate until a step fails, then bisects between the
// last passing and the first failing rate. It adds every step to r.Steps, counts the retried
// ones in r.Metrics.TransientFailures, and returns the highest passing rate (lo) and the lowest
// failing one (hi, 0 when MaxRate passed). With -cpuprofile, the Go side's search is profiled.
func (b *bencher) searchThroughput(ctx context.Context, side string, c cluster, tr *tracker, topic string, r *sideResult) (lo, hi float64, err error) {
	if side == "go" && b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, 0, err
		}
		defer pprof.StopCPUProfile()
	}
	stepID := latencyStep
	// A step that failed only because an AWS request failed (the messages that request had
	// taken come back after the visibility timeout; the SDK's retry backoff holds up that
	// node's polling meanwhile) measures that transient, not the rate: it is recorded, counted,
	// and the rate is tried once more.
	try := func(rate float64) (step, error) {
		for attempt := 1; ; attempt++ {
			stepID++
			st, err := b.runStep(ctx, c, tr, topic, stepID, rate, max(1, int(rate*b.s.StepSeconds)))
			if err != nil {
				return st, err
			}
			st.Transient = !st.Pass && len(st.AWS.Failed) > 0 && st.Clients.Late == st.Clients.Missing &&
				st.Sent == max(1, int(rate*b.s.StepSeconds)) && st.Achieved >= b.s.MinAchieved*rate
			r.Steps = append(r.Steps, st)
			if !st.Transient || attempt == 2 {
				return st, nil
			}
			r.Metrics.TransientFailures++
			log.Printf("  step %d failed on a transient AWS error only: trying %.0f/s again", stepID, rate)
		}
	}
	for rate := b.s.StartRate; rate <= b.s.MaxRate; rate *= 2 {
		st, err := try(rate)
		if err != nil {
			return 0, 0, err
		}
		if !st.Pass {
			hi = rate
			break
		}
		lo = rate
	}
	for i := 0; hi > 0 && i < b.s.Bisections && hi/max(lo, 1) > 1.08; i++ {
		mid := math.Round((lo + hi) / 2)
		st, err := try(mid)
		if err != nil {
			return 0, 0, err
		}
		if st.Pass {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, hi, nil
}

// sideMetrics sums up the side: throughput lo (capped when hi is 0), latency, the per-1000 costs
// at the throughput rate's longest passing step, and the emit call times (Go).
func (b *bencher) sideMetrics(side string, r *sideResult, lo, hi float64) metrics {
	m := metrics{
		Throughput:        lo,
		ThroughputCapped:  hi == 0,
		P50ms:             r.Latency.Clients.P50ms,
		P99ms:             r.Latency.Clients.P99ms,
		IdlePerNodeMinute: float64(r.Idle.total()) / float64(b.s.Nodes) / (r.Idle.Seconds / 60),
	}
	peak := -1
	for i, st := range r.Steps {
		if st.Pass && st.Rate == lo && (peak < 0 || st.Sent > r.Steps[peak].Sent) {
			peak = i
		}
	}
	if peak >= 0 {
		st := r.Steps[peak]
		cost := costOf(st)
		m.SNSPer1000, m.SQSPer1000, m.WastedPer1000 = cost.SNSPer1000, cost.SQSPer1000, cost.WastedPer1000
		if side == "go" {
			v := st.EmitCallP99
			m.EmitCallP99usAtPeak = &v
		}
	}
	if side == "go" {
		p50, p99 := r.Latency.EmitCallP50, r.Latency.EmitCallP99
		m.EmitCallP50us, m.EmitCallP99us = &p50, &p99
		if r.Baseline != nil {
			b50, b99 := r.Baseline.EmitCallP50, r.Baseline.EmitCallP99
			m.BaselineEmitCallP50us, m.BaselineEmitCallP99us = &b50, &b99
		}
	}
	m.TransientFailures = r.Metrics.TransientFailures
	return m
}

// baseline runs the latency workload on one Go server with the default in-memory adapter and
// ClientsPerNode clients (counted as remote: their latency is local delivery's).
func (b *bencher) runBaseline(ctx context.Context) (step, error) {
	c, err := startLoneServer()
	if err != nil {
		return step{}, err
	}
	defer c.close(ctx)
	remote := make([]bool, b.s.ClientsPerNode)
	for i := range remote {
		remote[i] = true
	}
	tr := newTracker(remote)
	for i := range remote {
		cl, err := dialClient(c.urls()[0], i, tr)
		if err != nil {
			return step{}, err
		}
		defer cl.close()
	}
	return b.runStep(ctx, c, tr, testsupport.UniqueName("bench-none"), 1, b.s.LatencyRate, int(b.s.LatencyRate*b.s.LatencySeconds))
}

func per1000(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return math.Round(float64(n)/float64(of)*1000*10) / 10
}

// runStep emits count broadcasts at rate from node 0 and checks that every remote client got
// every one of them within the drain time after the last emit. It then waits for the queues to
// empty, so that the AWS counters include the deliveries and deletes of the step.
func (b *bencher) runStep(ctx context.Context, c cluster, tr *tracker, topic string, id int, rate float64, count int) (step, error) {
	b.waitQuiet(ctx, topic, 30*time.Second)
	before, err := c.snapshot(ctx)
	if err != nil {
		return step{}, err
	}
	tr.begin(id, count)
	pids := cpuPIDs{emulator: b.emu, peers: c.pids()}
	t0, cpu0 := time.Now(), sampleCPU(pids)
	emitCtx, cancel := context.WithTimeout(ctx, time.Duration(float64(count)/rate*float64(time.Second))+60*time.Second)
	er, err := c.emit(emitCtx, id, rate, count, b.pad)
	cancel()
	if err != nil {
		return step{}, fmt.Errorf("emitting at %.0f/s: %w", rate, err)
	}
	deadline := time.Now().Add(time.Duration(b.s.DrainSeconds * float64(time.Second)))
	for !tr.complete(er.sent) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cr := tr.result(er.sent)
	st := step{Rate: rate, Sent: er.sent, Clients: cr, CPU: cpuBetween(cpu0, sampleCPU(pids), b.s.cores())}
	if er.elapsed > 0 && er.sent > 1 {
		st.Achieved = math.Round(float64(er.sent-1)/er.elapsed.Seconds()*10) / 10
	} else {
		st.Achieved = rate
	}
	st.Pass = cr.Missing == 0 && er.sent == count && st.Achieved >= b.s.MinAchieved*rate && cr.P99ms <= b.s.MaxP99Ms
	if len(er.calls) > 0 {
		us := make([]float64, len(er.calls))
		for i, d := range er.calls {
			us[i] = float64(d.Nanoseconds()) / 1e3
		}
		slices.Sort(us)
		st.EmitCallP50, st.EmitCallP99, st.EmitCallMax = round1(percentile(us, 50)), round1(percentile(us, 99)), round1(us[len(us)-1])
	}
	b.waitQuiet(ctx, topic, 30*time.Second)
	st.Clients.Late = tr.lateArrivals()
	after, err := c.snapshot(ctx)
	if err != nil {
		return step{}, err
	}
	st.AWS = diff(before, after, time.Since(t0).Seconds())
	verdict := "pass"
	if !st.Pass {
		verdict = "FAIL"
	}
	log.Printf("  step %d: %.0f/s (achieved %.1f/s) sent %d, missing %d of %d (%d arrived late), p50 %.1f ms p99 %.1f ms max %.1f ms; CPU%% emulator %.0f bench %.0f peers %.0f others %.0f: %s",
		id, rate, st.Achieved, er.sent, cr.Missing, er.sent*cr.remoteCnt, st.Clients.Late, cr.P50ms, cr.P99ms, cr.MaxMs,
		st.CPU.Emulator, st.CPU.Bench, st.CPU.Peers, st.CPU.Others, verdict)
	return st, nil
}

func (s settings) cores() int { return runtime.NumCPU() }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// waitQuiet waits until every queue of the topic's servers is empty (nothing visible, nothing
// in flight) twice in a row, or timeout. Queue names start with the topic name.
func (b *bencher) waitQuiet(ctx context.Context, prefix string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	quiet := 0
	for time.Now().Before(deadline) && quiet < 2 {
		if b.queuesEmpty(ctx, prefix) {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	if quiet < 2 {
		log.Printf("  queues of %s still not empty after %v", prefix, timeout)
	}
}

func (b *bencher) queuesEmpty(ctx context.Context, prefix string) bool {
	list, err := b.sqs.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: &prefix})
	if err != nil {
		log.Printf("  ListQueues: %v", err)
		return false
	}
	for _, u := range list.QueueUrls {
		out, err := b.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(u),
			AttributeNames: []sqstypes.QueueAttributeName{
				sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			},
		})
		if err != nil {
			return false
		}
		for _, v := range out.Attributes {
			if v != "0" {
				return false
			}
		}
	}
	return true
}
