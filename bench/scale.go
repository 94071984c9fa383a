package main

// The scale run (-scale, `make bench-scale`): for several cluster sizes N, on each side, an
// idle cluster's AWS requests, how long membership takes to follow a server that joins and one
// that is killed, fetchSockets with every server answering, broadcast latency at a light rate,
// and the Go heap. It writes <out>/scale.json and <out>/scale.md.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/zishang520/socket.io/servers/socket/v3"

	sqsadapter "github.com/socketio-go/aws-sqs-adapter"
	"github.com/socketio-go/aws-sqs-adapter/internal/nodepeer"
	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// scaleConfig is what -scale runs.
type scaleConfig struct {
	GoSizes      []int   `json:"go_sizes"`
	NodeSizes    []int   `json:"node_sizes"`
	IdleSeconds  float64 `json:"idle_s"`
	LatencyRate  float64 `json:"latency_rate_per_s"`
	LatencySecs  float64 `json:"latency_s"`
	FetchRepeats int     `json:"fetch_repeats"`
	HeapSockets  int     `json:"heap_sockets"`
	// Option overrides of the Go servers (0: the default), to measure alternatives.
	GoHeartbeatInterval time.Duration `json:"go_heartbeat_interval_ns,omitempty"`
	HeartbeatGather     time.Duration `json:"heartbeat_gather_ns,omitempty"`
}

func (sc scaleConfig) tweak(o *sqsadapter.Options) {
	if sc.GoHeartbeatInterval != 0 {
		o.GoHeartbeatInterval = sc.GoHeartbeatInterval
	}
	if sc.HeartbeatGather != 0 {
		o.HeartbeatGather = sc.HeartbeatGather
	}
}

// goHeartbeatInterval is the Go servers' GoHeartbeatInterval.
func (sc scaleConfig) goHeartbeatInterval() time.Duration {
	if sc.GoHeartbeatInterval > 0 {
		return sc.GoHeartbeatInterval
	}
	return 3 * sqsadapter.DefaultHeartbeatInterval
}

// sleepToMidBeat waits until halfway between two aligned heartbeat instants of interval: an
// idle window that starts there and lasts a multiple of the interval holds every instant's
// heartbeats whole (a window that ends as a burst arrives counts part of it, or none).
func sleepToMidBeat(interval time.Duration) {
	now := time.Now().UnixNano()
	mid := now - now%int64(interval) + int64(interval)/2
	if mid < now {
		mid += int64(interval)
	}
	time.Sleep(time.Duration(mid - now))
}

// runScale runs every size of both sides, then the heap with many sockets.
func (b *bencher) runScale(ctx context.Context, sc scaleConfig) (*scaleResults, error) {
	res := &scaleResults{Config: sc, Machine: machineInfo(), StartedAt: time.Now().UTC().Format(time.RFC3339)}
	began := time.Now()
	for _, side := range []struct {
		name  string
		sizes []int
	}{{"go", sc.GoSizes}, {"node", sc.NodeSizes}} {
		for _, n := range side.sizes {
			r, err := b.runScaleSize(ctx, sc, side.name, n)
			if err != nil {
				return nil, fmt.Errorf("%s, %d servers: %w", side.name, n, err)
			}
			res.Runs = append(res.Runs, *r)
		}
	}
	if sc.HeapSockets > 0 {
		h, err := b.heapWithSockets(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("heap with %d sockets: %w", sc.HeapSockets, err)
		}
		res.SocketsHeap = h
	}
	res.Machine.LoadEnd = loadAvg()
	res.DurationSeconds = time.Since(began).Seconds()
	return res, nil
}

// runScaleSize measures one side at n servers, one client each: idle, fetchSockets, latency,
// then a server joins and is killed.
func (b *bencher) runScaleSize(ctx context.Context, sc scaleConfig, side string, n int) (*scaleRun, error) {
	began := time.Now()
	r := &scaleRun{Side: side, Nodes: n, LoadStart: loadAvg()}
	topic := testsupport.UniqueName(fmt.Sprintf("scale-%s%d", side, n))
	defer b.removeQueues(context.WithoutCancel(ctx), topic)
	b.s.Nodes, b.s.ClientsPerNode = n, 1
	b.s.LatencyRate, b.s.LatencySeconds = sc.LatencyRate, sc.LatencySecs
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	log.Printf("scale %s: starting %d servers", side, n)
	c, cl, err := b.startWarm(ctx, startCtx, side, topic)
	if err != nil {
		return nil, err
	}
	defer closeCluster(side, c)
	defer cl.close()
	if side == "go" {
		r.HeapPerServerMB = goHeapMB() / float64(n)
	}
	b.waitQuiet(ctx, topic, 30*time.Second)
	sleepToMidBeat(sc.goHeartbeatInterval())
	idle, _, err := b.measureIdle(ctx, side, c)
	if err != nil {
		return nil, err
	}
	r.Idle = idle
	r.IdlePerServerMinute = perServerMinute(idle, n)
	if r.FetchMs, err = b.measureFetch(ctx, c, n, sc.FetchRepeats); err != nil {
		return nil, err
	}
	lat, err := b.measureLatency(ctx, side, c, cl.tr, topic)
	if err != nil {
		return nil, err
	}
	r.P50ms, r.P99ms, r.Missing = lat.Clients.P50ms, lat.Clients.P99ms, lat.Clients.Missing
	r.DeliveriesPerBroadcast = deliveriesPerBroadcast(lat.AWS, idle, lat.Sent)
	if r.JoinSeconds, r.DropSeconds, err = b.joinAndKill(ctx, side, c, n, topic, sc); err != nil {
		return nil, err
	}
	r.LoadEnd = loadAvg()
	r.Seconds = time.Since(began).Seconds()
	log.Printf("scale %s %d: idle %.0f requests per server-minute, fetch p50 %.0f ms, p50/p99 %.1f/%.1f ms, join %.1f s, drop %.1f s",
		side, n, r.IdlePerServerMinute.Total, r.FetchMs.P50, r.P50ms, r.P99ms, r.JoinSeconds, r.DropSeconds)
	return r, nil
}

// measureFetch times fetchSockets from server 0, every server answering with its one socket.
func (b *bencher) measureFetch(ctx context.Context, c cluster, n, repeats int) (latencyStats, error) {
	var ms []float64
	for range repeats {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		t0 := time.Now()
		got, err := fetchAll(fctx, c)
		cancel()
		if err != nil {
			return latencyStats{}, fmt.Errorf("fetchSockets: %w", err)
		}
		if got != n {
			return latencyStats{}, fmt.Errorf("fetchSockets found %d sockets, want %d (one per server)", got, n)
		}
		ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		time.Sleep(300 * time.Millisecond)
	}
	return summarize(ms), nil
}

func fetchAll(ctx context.Context, c cluster) (int, error) {
	switch c := c.(type) {
	case *goCluster:
		type result struct {
			n   int
			err error
		}
		ch := make(chan result, 1)
		c.nodes[0].io.FetchSockets()(func(s []*socket.RemoteSocket, err error) { ch <- result{len(s), err} })
		select {
		case r := <-ch:
			return r.n, r.err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	case *nodeCluster:
		var sockets []any
		err := c.peers[0].CallInto(ctx, "fetchSockets", map[string]any{}, &sockets)
		return len(sockets), err
	}
	return 0, fmt.Errorf("unknown cluster %T", c)
}

// joinAndKill starts one more server, times until every server counts it (the newcomer
// counting all), kills it (SIGKILL: no ADAPTER_CLOSE) and times until every server dropped it.
func (b *bencher) joinAndKill(ctx context.Context, side string, c cluster, n int, topic string, sc scaleConfig) (join, drop float64, err error) {
	counters := c.serverCounters()
	var newcomer testsupport.ServerCounter
	var kill func()
	if side == "go" {
		child, err := startGoChild(topic, n+1, sc)
		if err != nil {
			return 0, 0, err
		}
		defer child.kill()
		kill, newcomer = child.kill, child
	} else {
		p, err := nodepeer.Launch(nodepeer.Config{Topic: topic, QueuePrefix: topic, Env: b.nodeEnv, Name: "node-new"})
		if err != nil {
			return 0, 0, err
		}
		defer p.Kill()
		kill, newcomer = p.Kill, p.ServerCounter("/")
	}
	t0 := time.Now()
	if err := awaitCounts(ctx, 2*time.Minute, int64(n+1), append(counters, newcomer)...); err != nil {
		return 0, 0, fmt.Errorf("join: %w", err)
	}
	join = time.Since(t0).Seconds()
	t0 = time.Now()
	kill()
	if err := awaitCounts(ctx, 2*time.Minute, int64(n), counters...); err != nil {
		return join, 0, fmt.Errorf("drop: %w", err)
	}
	return join, time.Since(t0).Seconds(), nil
}

// awaitCounts polls every 50 ms until every counter says want.
func awaitCounts(ctx context.Context, timeout time.Duration, want int64, counters ...testsupport.ServerCounter) error {
	deadline := time.Now().Add(timeout)
	for {
		all := true
		for _, c := range counters {
			if c.ServerCount() != want {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not every server counts %d after %v", want, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeQueues deletes the queues left on the topic (the killed server's; the others removed
// theirs as they closed), so that they do not fill up for the next sizes' quiet checks.
func (b *bencher) removeQueues(ctx context.Context, prefix string) {
	list, err := b.sqs.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: &prefix})
	if err != nil {
		log.Printf("  ListQueues: %v", err)
		return
	}
	for _, u := range list.QueueUrls {
		_, _ = b.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(u)})
	}
}

// goHeapMB is this process's heap in use after a collection, in MB.
func goHeapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

// goChild is one Go server in a process of its own (this program with -scale-child), so that
// it can be killed as a crash kills it.
type goChild struct {
	cmd     *exec.Cmd
	want    int64
	counted chan struct{} // closed when it counts want servers
}

func startGoChild(topic string, want int, sc scaleConfig) (*goChild, error) {
	cmd := exec.Command(os.Args[0], "-scale-child", topic, "-scale-child-count", fmt.Sprint(want),
		"-go-heartbeat", sc.GoHeartbeatInterval.String(), "-gather", sc.HeartbeatGather.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &goChild{cmd: cmd, want: int64(want), counted: make(chan struct{})}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		c.kill()
		return nil, fmt.Errorf("the child server did not start: %q", lines.Text())
	}
	go func() {
		for lines.Scan() {
			if lines.Text() == "counted" {
				close(c.counted)
			}
		}
	}()
	return c, nil
}

// ServerCount is what the parent learns of the child's count: want once it got there.
func (c *goChild) ServerCount() int64 {
	select {
	case <-c.counted:
		return c.want
	default:
		return 0
	}
}

func (c *goChild) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	}
}

// runScaleChild is the child's main: one Go server on topic, "ready" once Init succeeded,
// "counted" once it counts want servers; it runs until killed.
func runScaleChild(cfg aws.Config, topic string, want int, sc scaleConfig) {
	c, err := startGoCluster(context.Background(), cfg, 1, topic, sc.tweak)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready")
	a := c.nodes[0].io.Of("/", nil).Adapter()
	for a.ServerCount() < int64(want) {
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("counted")
	select {}
}

// runScaleMain runs -scale and writes its files.
func runScaleMain(ctx context.Context, s settings, sc scaleConfig, cfg aws.Config, endpoint, outDir string) {
	b := &bencher{s: s, cfg: cfg, sqs: sqs.NewFromConfig(cfg), endpoint: endpoint, pad: strings.Repeat("x", s.PayloadBytes), emu: emulatorPID(),
		goOptions: sc.tweak}
	res, err := b.runScale(ctx, sc)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		log.Fatal(err)
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	md := res.markdown()
	for name, data := range map[string][]byte{"scale.json": append(js, '\n'), "scale.md": []byte(md)} {
		if err := os.WriteFile(filepath.Join(outDir, name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Print(md)
	log.Printf("wrote %s and %s in %.0f s", filepath.Join(outDir, "scale.json"), filepath.Join(outDir, "scale.md"), res.DurationSeconds)
}
