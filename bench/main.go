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
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	sqsadapter "github.com/socketio-go/aws-sqs-adapter"
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
	var sc scaleConfig
	var scale bool
	var scaleGo, scaleNode, scaleChild string
	var scaleIdle time.Duration
	var childCount int
	flag.BoolVar(&scale, "scale", false, "run the scale measurements instead (make bench-scale): "+scaleUsage)
	flag.StringVar(&scaleGo, "scale-go", "3,10,30,50", "-scale: cluster sizes of the Go side")
	flag.StringVar(&scaleNode, "scale-node", "3,10,30", "-scale: cluster sizes of the Node side (one process per server)")
	flag.DurationVar(&scaleIdle, "scale-idle", 60*time.Second, "-scale: idle window per size (a multiple of the 15 s Go heartbeat interval keeps the count exact)")
	flag.IntVar(&sc.FetchRepeats, "scale-fetch", 10, "-scale: fetchSockets calls per size")
	flag.IntVar(&sc.HeapSockets, "scale-sockets", 10_000, "-scale: sockets on one Go server for the heap measurement (0: none)")
	flag.DurationVar(&sc.GoHeartbeatInterval, "go-heartbeat", 0, "-scale: GoHeartbeatInterval of the Go servers (0: the default)")
	flag.DurationVar(&sc.HeartbeatGather, "gather", 0, "-scale: HeartbeatGather of the Go servers (0: the default, negative: none)")
	flag.StringVar(&scaleChild, "scale-child", "", "internal: run one Go server on this topic (the server -scale kills)")
	flag.IntVar(&childCount, "scale-child-count", 0, "internal: with -scale-child, say \"counted\" once this many servers are counted")
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
	if scaleChild != "" {
		runScaleChild(cfg, scaleChild, childCount, sc)
		return
	}
	if scale {
		sc.IdleSeconds, sc.LatencyRate, sc.LatencySecs = scaleIdle.Seconds(), s.LatencyRate, latDur.Seconds()
		if sc.GoSizes, err = parseSizes(scaleGo); err == nil {
			sc.NodeSizes, err = parseSizes(scaleNode)
		}
		if err != nil {
			log.Fatal(err)
		}
		s.IdleSeconds = sc.IdleSeconds
		runScaleMain(ctx, s, sc, cfg, endpoint, outDir)
		return
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

	// goOptions, when set, changes the Go servers' options (-scale's -go-heartbeat, -gather).
	goOptions func(*sqsadapter.Options)

	cpuProfile string // the current profile's
	// baseline is the Go side's in-memory baseline, measured once (it makes no AWS request, so
	// every profile shares it).
	baseline *step
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
	c, cl, err := b.startWarm(ctx, startCtx, side, topic)
	if err != nil {
		return nil, err
	}
	defer closeCluster(side, c)
	defer cl.close()
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

// startWarm starts the side's servers and their clients, and warms them up; on success the
// caller closes both.
func (b *bencher) startWarm(ctx, startCtx context.Context, side, topic string) (cluster, *sideClients, error) {
	c, err := b.startCluster(startCtx, side, topic)
	if err != nil {
		return nil, nil, err
	}
	cl, err := b.connectClients(startCtx, side, c)
	if err == nil {
		if err = b.warmUp(ctx, side, c, cl, topic); err != nil {
			cl.close()
		}
	}
	if err != nil {
		closeCluster(side, c)
		return nil, nil, err
	}
	return c, cl, nil
}

// startCluster starts the side's servers on topic.
func (b *bencher) startCluster(ctx context.Context, side, topic string) (cluster, error) {
	log.Printf("%s: starting %d servers on topic %s", side, b.s.Nodes, topic)
	switch side {
	case "go":
		return startGoCluster(ctx, b.cfg, b.s.Nodes, topic, b.goOptions)
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
