package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/zishang520/socket.io/servers/socket/v3"

	sqsadapter "github.com/socketio-go/aws-sqs-adapter"
	"github.com/socketio-go/aws-sqs-adapter/internal/nodepeer"
	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// cluster is one side of the benchmark: three servers on one topic of their own. The
// broadcasts of the workload are always emitted by node 0.
type cluster interface {
	urls() []string
	// serverCounters are the servers' namespace "/", for testsupport.AwaitServerCount.
	serverCounters() []testsupport.ServerCounter
	// emit sends count broadcasts of benchEvent from node 0 at rate per second.
	emit(ctx context.Context, step int, rate float64, count int, pad string) (emitResult, error)
	snapshot(ctx context.Context) ([]nodeSnap, error)
	// pids are the server processes other than this one.
	pids() []int
	close(ctx context.Context) error
}

type emitResult struct {
	sent    int
	elapsed time.Duration   // first emit to last emit
	calls   []time.Duration // how long each io.Emit call blocked (Go only)
}

// nodeSnap is one server's counters at one time.
type nodeSnap struct {
	Requests   map[string]uint64 // AWS requests by action, counted in the SDK client
	Failed     map[string]uint64 // of which returned an error (the SDK may have retried them)
	Deliveries uint64            // messages ReceiveMessage returned
	Published  uint64            // cluster messages SNS accepted
	// PublishLost counts cluster messages the server gave up on (Go: Stats().PublishFailures +
	// PublishDropped; the Node peer does not count them: upstream only logs).
	PublishLost uint64
	// Dropped counts deliveries dropped on arrival (own messages, responses for another
	// node), where the server counts them; -1 where it does not (the Go adapter's Stats).
	Dropped int64
}

// goCluster runs three Go Socket.IO servers with the adapter in this process, as a user would.
type goCluster struct {
	nodes []*goNode
}

type goNode struct {
	io      *socket.Server
	builder *sqsadapter.AdapterBuilder
	counter *awsCounter
	srv     *http.Server
	url     string
}

// startGoCluster starts n servers with the default options, changed by tweak when it is set.
func startGoCluster(ctx context.Context, cfg aws.Config, n int, topic string, tweak func(*sqsadapter.Options)) (*goCluster, error) {
	c := &goCluster{}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for i := 0; i < n; i++ {
		counter := newAWSCounter()
		ccfg := counter.config(cfg)
		aopts := &sqsadapter.Options{
			TopicName:   topic,
			QueuePrefix: topic,
			Logger:      logger.With("node", fmt.Sprintf("go-%d", i)),
		}
		if tweak != nil {
			tweak(aopts)
		}
		b := sqsadapter.NewAdapterBuilder(sns.NewFromConfig(ccfg), sqs.NewFromConfig(ccfg), aopts)
		opts := socket.DefaultServerOptions()
		opts.SetAdapter(b)
		node, err := serve(socket.NewServer(nil, opts))
		if err != nil {
			_ = c.close(ctx)
			return nil, err
		}
		node.builder, node.counter = b, counter
		c.nodes = append(c.nodes, node)
		if err := b.Init(ctx); err != nil {
			_ = c.close(ctx)
			return nil, fmt.Errorf("go node %d: Init: %w", i, err)
		}
	}
	return c, nil
}

// startLoneServer starts one Go server with the default in-memory adapter: the baseline.
func startLoneServer() (*goCluster, error) {
	node, err := serve(socket.NewServer(nil, socket.DefaultServerOptions()))
	if err != nil {
		return nil, err
	}
	return &goCluster{nodes: []*goNode{node}}, nil
}

// serve serves io on a loopback port of the kernel's choosing.
func serve(io *socket.Server) (*goNode, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		io.Close(nil)
		return nil, err
	}
	srv := &http.Server{Handler: io.ServeHandler(nil)}
	go func() { _ = srv.Serve(ln) }()
	return &goNode{io: io, srv: srv, url: "http://" + ln.Addr().String()}, nil
}

func (c *goCluster) urls() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.url
	}
	return out
}

func (c *goCluster) serverCounters() []testsupport.ServerCounter {
	out := make([]testsupport.ServerCounter, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.io.Of("/", nil).Adapter()
	}
	return out
}

func (c *goCluster) emit(ctx context.Context, step int, rate float64, count int, pad string) (emitResult, error) {
	io := c.nodes[0].io
	res := emitResult{calls: make([]time.Duration, 0, count)}
	start := time.Now()
	var last time.Time
	for res.sent < count {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		// Broadcast number n (from 0) is due n/rate seconds after the start; the loop catches up
		// after every sleep, as the Node peer's emitRate does.
		due := min(count, int(time.Since(start).Seconds()*rate)+1)
		for res.sent < due {
			payload := map[string]any{
				"step": step,
				"pad":  pad,
				"seq":  res.sent,
				"ts":   float64(time.Now().UnixNano()) / 1e6,
			}
			t0 := time.Now()
			io.Emit(benchEvent, payload)
			res.calls = append(res.calls, time.Since(t0))
			res.sent++
		}
		last = time.Now()
		if res.sent < count {
			next := start.Add(time.Duration(float64(res.sent) / rate * float64(time.Second)))
			time.Sleep(time.Until(next))
		}
	}
	res.elapsed = last.Sub(start)
	return res, nil
}

func (c *goCluster) snapshot(context.Context) ([]nodeSnap, error) {
	out := make([]nodeSnap, len(c.nodes))
	for i, n := range c.nodes {
		if n.builder == nil { // the baseline's lone server
			out[i] = nodeSnap{Requests: map[string]uint64{}}
			continue
		}
		req, failed, recv := n.counter.snapshot()
		st := n.builder.Stats()
		out[i] = nodeSnap{Requests: req, Failed: failed, Deliveries: recv, Published: st.Published, Dropped: -1,
			PublishLost: st.PublishFailures + st.PublishDropped}
	}
	return out, nil
}

func (c *goCluster) pids() []int { return nil }

func (c *goCluster) close(ctx context.Context) error {
	var errs []error
	for _, n := range c.nodes {
		n.io.Close(nil) // closes the adapter: ADAPTER_CLOSE, unsubscribe, delete the queue
		if n.builder != nil {
			errs = append(errs, n.builder.Close(ctx))
		}
		errs = append(errs, n.srv.Close())
	}
	return errors.Join(errs...)
}

// nodeCluster runs three Node peers (interop/node/peer.js: socket.io 4.8 with upstream's
// transport), with AWS request counting on (PEER_AWS_STATS=1) and env added to their
// environment (AWS_ENDPOINT_URL: the AWS-like profile's proxy; the later entry wins).
type nodeCluster struct {
	peers []*nodepeer.Peer
}

func startNodeCluster(ctx context.Context, n int, topic string, env []string) (*nodeCluster, error) {
	c := &nodeCluster{}
	for i := 0; i < n; i++ {
		p, err := nodepeer.Launch(nodepeer.Config{
			Topic:       topic,
			QueuePrefix: topic,
			Env:         append([]string{"PEER_AWS_STATS=1"}, env...),
			Name:        fmt.Sprintf("node-%d", i),
		})
		if err != nil {
			_ = c.close(ctx)
			return nil, err
		}
		c.peers = append(c.peers, p)
	}
	return c, nil
}

func (c *nodeCluster) urls() []string {
	out := make([]string, len(c.peers))
	for i, p := range c.peers {
		out[i] = fmt.Sprintf("http://127.0.0.1:%d", p.Port())
	}
	return out
}

func (c *nodeCluster) serverCounters() []testsupport.ServerCounter {
	out := make([]testsupport.ServerCounter, len(c.peers))
	for i, p := range c.peers {
		out[i] = p.ServerCounter("/")
	}
	return out
}

func (c *nodeCluster) emit(ctx context.Context, step int, rate float64, count int, pad string) (emitResult, error) {
	var r struct {
		Sent      int     `json:"sent"`
		ElapsedMs float64 `json:"elapsedMs"`
	}
	err := c.peers[0].CallInto(ctx, "emitRate", map[string]any{
		"event": benchEvent, "rate": rate, "count": count,
		"payload": map[string]any{"step": step, "pad": pad},
	}, &r)
	return emitResult{sent: r.Sent, elapsed: time.Duration(r.ElapsedMs * float64(time.Millisecond))}, err
}

func (c *nodeCluster) snapshot(ctx context.Context) ([]nodeSnap, error) {
	out := make([]nodeSnap, len(c.peers))
	for i, p := range c.peers {
		var s struct {
			Requests              map[string]uint64 `json:"requests"`
			Failed                map[string]uint64 `json:"failed"`
			MessagesReceived      uint64            `json:"messagesReceived"`
			OwnDropped            int64             `json:"ownDropped"`
			OtherRequesterDropped int64             `json:"otherRequesterDropped"`
		}
		if err := p.CallInto(ctx, "awsStats", nil, &s); err != nil {
			return nil, err
		}
		out[i] = nodeSnap{
			Requests:   s.Requests,
			Failed:     s.Failed,
			Deliveries: s.MessagesReceived,
			Published:  s.Requests["Publish"], // upstream publishes one message per request
			Dropped:    s.OwnDropped + s.OtherRequesterDropped,
		}
	}
	return out, nil
}

func (c *nodeCluster) pids() []int {
	out := make([]int, len(c.peers))
	for i, p := range c.peers {
		out[i] = p.Ready().PID
	}
	return out
}

func (c *nodeCluster) close(ctx context.Context) error {
	var errs []error
	for _, p := range c.peers {
		if err := p.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%w\n%s", err, p.Stderr()))
		}
	}
	return errors.Join(errs...)
}
