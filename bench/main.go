// Command bench runs the same workload on a cluster of Go servers using this adapter and on a
// cluster of Node servers using upstream's transport (interop/node/peer.js), one after the
// other on the same SNS+SQS endpoint, and writes the results side by side:
// <out>/results.json and <out>/results.md (also printed).
//
// It does so in two profiles, one after the other: "emulator", the endpoint as it is (the
// emulator answers in about 1 ms), and "aws-like", through a proxy started in this process
// (internal/awsproxy) that adds AWS's latency to every request, 15 ms + 0..10 ms by default
// (-proxy-latency, -proxy-jitter): both sides use the proxy as their endpoint. -profiles runs
// one of them alone. results.json keeps the emulator profile at its top level and has the
// AWS-like one, same shape, under "aws_like"; both files end with the targets, met or
// not, computed from the run.
//
// Run it through `make bench`, which starts the emulator and runs the codec microbenchmarks
// first; by hand:
//
//	scripts/with-emulator.sh go run ./bench -codec bench/out/codec.txt
//
// Per profile and side: start the nodes and connect the clients (real Go Socket.IO clients,
// websocket transport, the same for both sides), measure the AWS requests of an idle cluster,
// measure emit-to-receive latency at a light rate, then search the highest rate of broadcasts
// from node 0 that every client on the other nodes receives in full, in time (within the drain
// time after the last emit, p99 latency at most 1 s), doubling, then bisecting.
// AWS requests are counted in the SDK clients of each server, by action.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/awsproxy"
	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

type settings struct {
	Nodes          int     `json:"nodes"`
	ClientsPerNode int     `json:"clients_per_node"`
	PayloadBytes   int     `json:"payload_pad_bytes"`
	IdleSeconds    float64 `json:"idle_s"`
	LatencyRate    float64 `json:"latency_rate_per_s"`
	LatencySeconds float64 `json:"latency_s"`
	StepSeconds    float64 `json:"step_s"`
	DrainSeconds   float64 `json:"drain_s"`
	MinAchieved    float64 `json:"min_achieved_fraction"`
	MaxP99Ms       float64 `json:"max_p99_ms"`
	StartRate      float64 `json:"start_rate_per_s"`
	MaxRate        float64 `json:"max_rate_per_s"`
	Bisections     int     `json:"bisections"`
}

func main() {
	var s settings
	var outDir, codecFile, sides, profiles, cpuProfile string
	var idle, awsIdle, latDur, stepDur, drain, maxP99, proxyLatency, proxyJitter time.Duration
	flag.StringVar(&outDir, "out", "bench/out", "directory for results.json and results.md")
	flag.StringVar(&codecFile, "codec", "", "output of `go test -bench` for the codec microbenchmarks, to include")
	flag.StringVar(&profiles, "profiles", profileEmulator+","+profileAWSLike, "profiles to run, in order: "+profileEmulator+" (the endpoint as it is), "+profileAWSLike+" (through a latency proxy in this process)")
	flag.StringVar(&sides, "sides", "go,node", "sides to run in every profile, in order")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process (Go servers and clients) during the Go side's throughput search; the "+profileAWSLike+" profile's goes to the same name with ."+profileAWSLike+" appended")
	flag.IntVar(&s.Nodes, "nodes", 3, "servers per side")
	flag.IntVar(&s.ClientsPerNode, "clients", 2, "clients connected to each server")
	flag.IntVar(&s.PayloadBytes, "pad", 200, "bytes of padding in every broadcast's payload")
	flag.DurationVar(&idle, "idle", 60*time.Second, "idle window")
	flag.DurationVar(&awsIdle, "aws-idle", 30*time.Second, "idle window of the "+profileAWSLike+" profile, at most -idle (the idle requests are set by the heartbeats, not by the latency)")
	flag.DurationVar(&proxyLatency, "proxy-latency", 15*time.Millisecond, "latency the "+profileAWSLike+" profile's proxy adds to every request")
	flag.DurationVar(&proxyJitter, "proxy-jitter", 10*time.Millisecond, "uniform random 0..jitter the "+profileAWSLike+" profile's proxy adds on top of -proxy-latency")
	flag.Float64Var(&s.LatencyRate, "latency-rate", 20, "broadcasts per second of the latency phase")
	flag.DurationVar(&latDur, "latency", 10*time.Second, "duration of the latency phase")
	flag.DurationVar(&stepDur, "step", 4*time.Second, "duration of one rate step of the throughput search")
	flag.DurationVar(&drain, "drain", 1500*time.Millisecond, "after a step's last emit, how long every broadcast may take to arrive for the step to pass")
	flag.DurationVar(&maxP99, "max-p99", time.Second, "highest p99 latency of a passing step: a queue that grows during the step is not a sustained rate")
	flag.Float64Var(&s.MinAchieved, "min-achieved", 0.95, "fraction of the target rate the emitter must achieve for a step to pass")
	flag.Float64Var(&s.StartRate, "start-rate", 50, "first rate of the throughput search (broadcasts/s)")
	flag.Float64Var(&s.MaxRate, "max-rate", 12800, "highest rate the search tries")
	flag.IntVar(&s.Bisections, "bisect", 3, "bisection steps after the first failing rate")
	flag.Parse()
	s.IdleSeconds, s.LatencySeconds, s.StepSeconds, s.DrainSeconds = idle.Seconds(), latDur.Seconds(), stepDur.Seconds(), drain.Seconds()
	s.MaxP99Ms = float64(maxP99.Microseconds()) / 1000
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("bench: ")

	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	runProfiles, err := parseProfiles(profiles, endpoint)
	if err != nil {
		log.Fatal(err)
	}
	if endpoint == "" {
		log.Print("AWS_ENDPOINT_URL is not set: this runs against real AWS (and costs money); run `make bench` for the emulator")
	}
	ctx := context.Background()
	cfg, err := testsupport.LoadAWSConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	began := time.Now()
	res := results{
		StartedAt: began.UTC().Format(time.RFC3339),
		Profiles:  runProfiles,
		Machine:   machineInfo(),
		// Keys of a profile that did not run keep their shape: its settings, no sides.
		profileResult: profileResult{Settings: s, Endpoint: endpoint, Order: []string{}, Sides: map[string]*sideResult{}},
	}
	if codecFile != "" {
		res.Codec, err = parseGoBench(codecFile)
		if err != nil {
			log.Fatalf("reading %s: %v", codecFile, err)
		}
	}
	b := &bencher{s: s, cfg: cfg, cpuProfile: cpuProfile, sqs: sqs.NewFromConfig(cfg), endpoint: endpoint, pad: strings.Repeat("x", s.PayloadBytes), emu: emulatorPID()}
	if b.emu == 0 && endpoint != "" {
		log.Print("the emulator's process was not found: its CPU use is not reported")
	}
	sideList := strings.Split(sides, ",")
	for i := range sideList {
		sideList[i] = strings.TrimSpace(sideList[i])
	}
	for _, name := range runProfiles {
		var p *profileResult
		switch name {
		case profileEmulator:
			p, err = b.runProfile(ctx, name, s, cfg, nil, cpuProfile, sideList)
			if p != nil {
				res.profileResult = *p
			}
		case profileAWSLike:
			as := s
			as.IdleSeconds = min(awsIdle, idle).Seconds()
			prof := awsproxy.AWSLike()
			prof.Latency, prof.Jitter = proxyLatency, proxyJitter
			cpu := cpuProfile
			if cpu != "" {
				cpu += "." + profileAWSLike
			}
			p, err = b.runProfile(ctx, name, as, cfg, &prof, cpu, sideList)
			res.AWSLike = p
		}
		if err != nil {
			log.Fatalf("%s profile: %v", name, err)
		}
	}
	res.Targets = res.targets()
	res.Machine.LoadEnd = loadAvg()
	res.DurationSeconds = time.Since(began).Seconds()

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		log.Fatal(err)
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false) // the targets' "<=" as it is
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outDir, "results.json"), js.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	md := res.markdown()
	if err := os.WriteFile(filepath.Join(outDir, "results.md"), []byte(md), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Print(md)
	log.Printf("wrote %s and %s in %.0f s", filepath.Join(outDir, "results.json"), filepath.Join(outDir, "results.md"), res.DurationSeconds)
}

type bencher struct {
	s   settings   // the current profile's
	cfg aws.Config // the current profile's: its BaseEndpoint is the proxy in the AWS-like profile
	// nodeEnv is the current profile's extra environment of the Node peers (AWS_ENDPOINT_URL).
	nodeEnv []string
	// sqs watches queue depths, uncounted, straight on the endpoint (never through the proxy:
	// the waits between steps need no added latency).
	sqs *sqs.Client
	// endpoint is AWS_ENDPOINT_URL: the emulator ("" for real AWS).
	endpoint string
	pad      string
	emu      int // the emulator's pid, 0 if unknown

	cpuProfile string // the current profile's
	// baseline is the Go side's in-memory baseline, measured once (it makes no AWS request, so
	// every profile shares it).
	baseline *step
}

// window is what a cluster did between two snapshots.
type window struct {
	Seconds    float64           `json:"seconds"`
	Requests   map[string]uint64 `json:"requests"` // all nodes, by action
	Failed     map[string]uint64 `json:"failed"`   // requests that returned an error, by action
	Deliveries uint64            `json:"deliveries"`
	Published  uint64            `json:"published"`
	// PublishLost: cluster messages the servers gave up on (failed or dropped; Go only).
	PublishLost uint64 `json:"publish_lost"`
	// Wasted is the deliveries dropped on arrival; WastedCounted says whether the servers
	// counted them (Node peer) or they are derived: deliveries minus the messages of the other
	// nodes (Go: the adapter's Stats has no drop counter).
	Wasted        int64 `json:"wasted"`
	WastedCounted bool  `json:"wasted_counted"`
	WastedDerived int64 `json:"wasted_derived"`
}

func diff(a, b []nodeSnap, secs float64) window {
	w := window{Seconds: secs, Requests: map[string]uint64{}, Failed: map[string]uint64{}, WastedCounted: true}
	for i := range b {
		for k, v := range b[i].Requests {
			if d := v - a[i].Requests[k]; d > 0 {
				w.Requests[k] += d
			}
		}
		for k, v := range b[i].Failed {
			if d := v - a[i].Failed[k]; d > 0 {
				w.Failed[k] += d
			}
		}
		w.Deliveries += b[i].Deliveries - a[i].Deliveries
		w.Published += b[i].Published - a[i].Published
		w.PublishLost += b[i].PublishLost - a[i].PublishLost
		if b[i].Dropped < 0 {
			w.WastedCounted = false
		} else {
			w.Wasted += b[i].Dropped - a[i].Dropped
		}
	}
	// Every published message lands in every node's queue; only the other nodes' are useful
	// (the workload has no responses).
	w.WastedDerived = int64(w.Deliveries) - int64(len(b)-1)*int64(w.Published)
	if !w.WastedCounted {
		w.Wasted = w.WastedDerived
	}
	return w
}

func (w window) sum(actions ...string) uint64 {
	var n uint64
	for _, a := range actions {
		n += w.Requests[a]
	}
	return n
}

func (w window) total() uint64 { return sumValues(w.Requests) }

// sumValues adds up the counts of a map of counts by action.
func sumValues[V int64 | uint64](m map[string]V) V {
	var n V
	for _, v := range m {
		n += v
	}
	return n
}

type step struct {
	Rate     float64 `json:"rate_per_s"`
	Achieved float64 `json:"achieved_per_s"`
	Sent     int     `json:"sent"`
	Pass     bool    `json:"pass"`
	// Transient: the step failed only through an AWS error (every missing broadcast arrived
	// late, after the visibility timeout); the rate was tried again.
	Transient   bool       `json:"transient_failure,omitempty"`
	Clients     stepResult `json:"clients"`
	AWS         window     `json:"aws"`
	EmitCallP50 float64    `json:"emit_call_p50_us,omitempty"`
	EmitCallP99 float64    `json:"emit_call_p99_us,omitempty"`
	EmitCallMax float64    `json:"emit_call_max_us,omitempty"`
	CPU         cpuUse     `json:"cpu"` // from the first emit to the end of the drain wait
}

type sideResult struct {
	Metrics   metrics `json:"metrics"`
	Idle      window  `json:"idle"`
	IdleCPU   cpuUse  `json:"idle_cpu"`
	Latency   step    `json:"latency"`
	Steps     []step  `json:"throughput_steps"`
	Baseline  *step   `json:"baseline_in_memory,omitempty"` // Go: the latency workload on one server, in-memory adapter
	LoadStart string  `json:"loadavg_start"`
	LoadEnd   string  `json:"loadavg_end"`
	Seconds   float64 `json:"seconds"`
}

type metrics struct {
	Throughput        float64 `json:"throughput"`
	ThroughputCapped  bool    `json:"throughput_capped"` // the search's max rate passed
	P50ms             float64 `json:"p50_ms"`
	P99ms             float64 `json:"p99_ms"`
	SNSPer1000        float64 `json:"sns_publish_requests_per_1000"`
	SQSPer1000        float64 `json:"sqs_requests_per_1000_deliveries"`
	WastedPer1000     float64 `json:"wasted_deliveries_per_1000"`
	IdlePerNodeMinute float64 `json:"idle_requests_per_node_minute"`
	// TransientFailures counts the throughput steps retried after a transient AWS error.
	TransientFailures int `json:"transient_failures"`

	EmitCallP50us       *float64 `json:"emit_call_p50_us,omitempty"`
	EmitCallP99us       *float64 `json:"emit_call_p99_us,omitempty"`
	EmitCallP99usAtPeak *float64 `json:"emit_call_p99_us_at_throughput,omitempty"`
	// The same io.Emit, same clients and rate, on a lone server with the in-memory adapter.
	BaselineEmitCallP50us *float64 `json:"baseline_emit_call_p50_us,omitempty"`
	BaselineEmitCallP99us *float64 `json:"baseline_emit_call_p99_us,omitempty"`
}

// costAt are the per-1000 costs of one passing step, for comparing both sides at one rate.
type costAt struct {
	Rate          float64 `json:"rate_per_s"`
	SNSPer1000    float64 `json:"sns_publish_requests_per_1000"`
	SQSPer1000    float64 `json:"sqs_requests_per_1000_deliveries"`
	WastedPer1000 float64 `json:"wasted_deliveries_per_1000"`
	// AWSPerBroadcast is every AWS request of every server during the step (until its queues
	// were empty; all actions, SNS and SQS), per broadcast.
	AWSPerBroadcast float64 `json:"aws_requests_per_broadcast"`
}

// commonRateCosts compares the sides' costs at the highest rate that all of them passed (the
// per-1000 metrics at each side's own throughput rate compare different rates).
func commonRateCosts(sides map[string]*sideResult) map[string]costAt {
	passed := func(s *sideResult, rate float64) (step, bool) {
		for _, st := range s.Steps {
			if st.Pass && st.Rate == rate {
				return st, true
			}
		}
		return step{}, false
	}
	var best float64
	for _, s := range sides {
		for _, st := range s.Steps {
			all := st.Pass
			for _, o := range sides {
				_, ok := passed(o, st.Rate)
				all = all && ok
			}
			if all && st.Rate > best {
				best = st.Rate
			}
		}
	}
	if best == 0 {
		return nil
	}
	out := map[string]costAt{}
	for name, s := range sides {
		st, _ := passed(s, best)
		out[name] = costOf(st)
	}
	return out
}

func costOf(st step) costAt {
	return costAt{
		Rate:          st.Rate,
		SNSPer1000:    per1000(st.AWS.sum("Publish", "PublishBatch"), uint64(st.Sent)),
		SQSPer1000:    per1000(st.AWS.sum("ReceiveMessage", "DeleteMessageBatch"), st.AWS.Deliveries),
		WastedPer1000: per1000(uint64(max(0, st.AWS.Wasted)), uint64(st.Sent)),
		// per1000 rounds to 0.1 per 1000: three decimals per broadcast.
		AWSPerBroadcast: per1000(st.AWS.total(), uint64(st.Sent)) / 1000,
	}
}

// runSide runs the workload on one side, phase by phase: the baseline (Go only), the cluster and
// its clients, the warm-up, the idle window, latency, the throughput search, the metrics.
func (b *bencher) runSide(ctx context.Context, side string) (*sideResult, error) {
	began := time.Now()
	r := &sideResult{LoadStart: loadAvg()}
	topic := testsupport.UniqueName("bench-" + side)
	if side == "go" {
		// What io.Emit costs without any cluster: the latency workload on a lone server with the
		// in-memory adapter, before the cluster starts (once per run: no AWS request in it).
		if b.baseline == nil {
			log.Printf("go: baseline: one server, in-memory adapter, %.0f/s for %.0f s", b.s.LatencyRate, b.s.LatencySeconds)
			base, err := b.runBaseline(ctx)
			if err != nil {
				return nil, fmt.Errorf("baseline: %w", err)
			}
			b.baseline = &base
		}
		r.Baseline = b.baseline
	}
	startCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	c, err := b.startCluster(startCtx, side, topic)
	if err != nil {
		return nil, err
	}
	defer closeCluster(side, c)
	cl, err := b.connectClients(startCtx, side, c)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	if err := b.warmUp(ctx, side, c, cl, topic); err != nil {
		return nil, err
	}
	if r.Idle, r.IdleCPU, err = b.measureIdle(ctx, side, c); err != nil {
		return nil, err
	}
	if r.Latency, err = b.measureLatency(ctx, side, c, cl.tr, topic); err != nil {
		return nil, err
	}
	lo, hi, err := b.searchThroughput(ctx, side, c, cl.tr, topic, r)
	if err != nil {
		return nil, err
	}
	r.Metrics = b.sideMetrics(side, r, lo, hi)
	r.LoadEnd = loadAvg()
	r.Seconds = time.Since(began).Seconds()
	log.Printf("%s: throughput %.0f/s, p50 %.1f ms, p99 %.1f ms (%.0f s)", side, r.Metrics.Throughput, r.Metrics.P50ms, r.Metrics.P99ms, r.Seconds)
	return r, nil
}

// startCluster starts the side's servers on topic.
func (b *bencher) startCluster(ctx context.Context, side, topic string) (cluster, error) {
	log.Printf("%s: starting %d servers on topic %s", side, b.s.Nodes, topic)
	switch side {
	case "go":
		return startGoCluster(ctx, b.cfg, b.s.Nodes, topic)
	case "node":
		return startNodeCluster(ctx, b.s.Nodes, topic, b.nodeEnv)
	default:
		return nil, fmt.Errorf("unknown side %q (go, node)", side)
	}
}

func closeCluster(side string, c cluster) {
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.close(closeCtx); err != nil {
		log.Printf("%s: closing: %v", side, err)
	}
}

// sideClients are the clients of one side, and what they receive.
type sideClients struct {
	urls    []string // by client
	clients []*benchClient
	tr      *tracker
}

func (s *sideClients) close() {
	for _, cl := range s.clients {
		if cl != nil {
			cl.close()
		}
	}
}

// redial connects client i again.
func (s *sideClients) redial(i int) error {
	s.clients[i].close()
	var err error
	s.clients[i], err = dialClient(s.urls[i], i, s.tr)
	return err
}

// connectClients connects ClientsPerNode clients to every node (those on nodes other than node 0
// are "remote") and waits until the servers count each other.
func (b *bencher) connectClients(ctx context.Context, side string, c cluster) (*sideClients, error) {
	s := &sideClients{}
	var remote []bool
	for i, u := range c.urls() {
		for range b.s.ClientsPerNode {
			remote = append(remote, i != 0)
			s.urls = append(s.urls, u)
		}
	}
	s.tr = newTracker(remote)
	s.clients = make([]*benchClient, len(s.urls))
	for i, u := range s.urls {
		var err error
		if s.clients[i], err = dialClient(u, i, s.tr); err != nil {
			s.close()
			return nil, err
		}
	}
	if err := testsupport.AwaitServerCount(ctx, b.s.Nodes, c.serverCounters()...); err != nil {
		s.close()
		return nil, err
	}
	log.Printf("%s: %d servers see each other, %d clients connected", side, b.s.Nodes, len(s.urls))
	return s, nil
}

// warmUp runs step 0, in which every client must receive; the Go client (v3.0.1) now and then
// reports a connection that never delivers anything, and such a client is connected again.
func (b *bencher) warmUp(ctx context.Context, side string, c cluster, cl *sideClients, topic string) error {
	for attempt := 1; ; attempt++ {
		if _, err := b.runStep(ctx, c, cl.tr, topic, 0, b.s.LatencyRate, 5); err != nil {
			return err
		}
		silent := cl.tr.silent()
		if len(silent) == 0 {
			return nil
		}
		if attempt == 3 {
			return fmt.Errorf("clients %v receive nothing after %d attempts", silent, attempt)
		}
		log.Printf("%s: clients %v received nothing: connecting them again", side, silent)
		for _, i := range silent {
			if err := cl.redial(i); err != nil {
				return err
			}
		}
	}
}

// measureIdle measures the AWS requests and CPU of the idle cluster for IdleSeconds.
func (b *bencher) measureIdle(ctx context.Context, side string, c cluster) (window, cpuUse, error) {
	log.Printf("%s: idle for %v", side, time.Duration(b.s.IdleSeconds*float64(time.Second)))
	s0, err := c.snapshot(ctx)
	if err != nil {
		return window{}, cpuUse{}, err
	}
	pids := cpuPIDs{emulator: b.emu, peers: c.pids()}
	t0, cpu0 := time.Now(), sampleCPU(pids)
	time.Sleep(time.Duration(b.s.IdleSeconds * float64(time.Second)))
	s1, err := c.snapshot(ctx)
	if err != nil {
		return window{}, cpuUse{}, err
	}
	return diff(s0, s1, time.Since(t0).Seconds()), cpuBetween(cpu0, sampleCPU(pids), b.s.cores()), nil
}

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
