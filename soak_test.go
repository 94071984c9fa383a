//go:build soak

package sqsadapter

// The soak: `make test` runs it on its own, without the race detector, so that hundreds of
// clients and thousands of broadcasts fit in its time on two cores:
//
//	go test -tags soak -run TestSoak -count=1 -v .

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/awsproxy"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestSoak: three nodes, SOAK_CLIENTS clients spread over them, SOAK_BROADCASTS broadcasts from
// all three nodes, mixed with broadcasts with acknowledgements to a room and fetchSockets.
// Every client must receive every broadcast exactly once.
func TestSoak(t *testing.T) {
	clientsPerNode := envInt("SOAK_CLIENTS", 300) / 3
	broadcasts := envInt("SOAK_BROADCASTS", 2000)
	opts := testOptions(t)
	opts.HeartbeatTimeout = 10 * time.Second // a loaded machine must not expire live nodes
	opts.RequestTimeout = 30 * time.Second   // answers queue behind thousands of broadcasts
	nodes := cluster(t, 3, opts)

	type counts struct {
		mu   sync.Mutex
		seen map[int]int
		lost bool // the client's connection closed under it: not the adapter's doing
	}
	var all []*counts
	var ackers []*testClient
	var ended atomic.Bool // set once counted: the clients then disconnect as the test ends
	for i, n := range nodes {
		for j := range clientsPerNode {
			cl, s := connect(t, n, "/", nil)
			c := &counts{seen: map[int]int{}}
			all = append(all, c)
			_ = cl.On("disconnect", func(args ...any) {
				if ended.Load() {
					return
				}
				// The Go client and server libraries drop a websocket now and then on a loaded
				// machine; with reconnection off the client is gone, so it is left out of the
				// count and reported.
				c.mu.Lock()
				c.lost = true
				c.mu.Unlock()
				t.Logf("client of node %d lost its connection: %v", i, args)
			})
			_ = cl.On("b", func(args ...any) {
				id := int(args[0].(float64))
				c.mu.Lock()
				c.seen[id]++
				c.mu.Unlock()
			})
			if j < 5 { // five clients per node answer acknowledgements, in room "ack"
				s.Join("ack")
				_ = cl.On("q", func(args ...any) { args[len(args)-1].(func([]any, error))([]any{i}, nil) })
				ackers = append(ackers, cl)
			}
		}
	}
	total := len(all)
	// A connect retried by the harness may leave one more socket than clients.
	sockets := 0
	for _, n := range nodes {
		sockets += n.io.Sockets().Sockets().Len()
	}
	t.Logf("%d clients connected to 3 nodes (%d sockets)", total, sockets)

	var ackRounds, ackOK, fetchRounds, fetchOK atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond) // at most 500 broadcasts/s
	for id := range broadcasts {
		<-tick.C
		nodes[id%3].io.Emit("b", id)
		switch {
		case id%50 == 0:
			wg.Add(1)
			ackRounds.Add(1)
			ch := make(chan ackResult, 1)
			nodes[id%3].io.To("ack").Timeout(30*time.Second).Emit("q", ackInto(ch))
			go func() {
				defer wg.Done()
				if r := <-ch; r.err == nil && len(r.responses) == len(ackers) {
					ackOK.Add(1)
				} else {
					t.Errorf("ack round: %d responses of %d, err %v", len(r.responses), len(ackers), r.err)
				}
			}()
		case id%100 == 25:
			wg.Add(1)
			fetchRounds.Add(1)
			go func(n *node) {
				defer wg.Done()
				done := make(chan int, 1)
				n.io.FetchSockets()(func(s []*socket.RemoteSocket, err error) {
					if err != nil {
						t.Errorf("fetchSockets: %v", err)
					}
					done <- len(s)
				})
				if got := <-done; got == sockets {
					fetchOK.Add(1)
				} else {
					t.Errorf("fetchSockets found %d of %d sockets", got, sockets)
				}
			}(nodes[id%3])
		}
	}
	tick.Stop()
	emitted := time.Since(start)
	wg.Wait()

	deadline := time.Now().Add(60 * time.Second)
	var missing, duplicated, lost int
	for {
		missing, duplicated, lost = 0, 0, 0
		for _, c := range all {
			c.mu.Lock()
			if c.lost {
				lost++
				c.mu.Unlock()
				continue
			}
			for id := range broadcasts {
				switch c.seen[id] {
				case 0:
					missing++
				case 1:
				default:
					duplicated++
				}
			}
			c.mu.Unlock()
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // deliveries still arriving: nothing announces the last one
	}
	ended.Store(true)
	expected := (total - lost) * broadcasts
	report := fmt.Sprintf("soak: %d clients (%d lost their connection), %d broadcasts in %v (%.0f/s), %d deliveries expected, "+
		"%d delivered, %d missing, %d duplicated; %d/%d ack rounds complete, %d/%d fetchSockets complete",
		total, lost, broadcasts, emitted.Round(time.Millisecond), float64(broadcasts)/emitted.Seconds(), expected,
		expected-missing, missing, duplicated, ackOK.Load(), ackRounds.Load(), fetchOK.Load(), fetchRounds.Load())
	t.Log(report)
	for i, n := range nodes {
		t.Logf("node %d: %+v", i, n.builder.Stats())
	}
	if missing != 0 || duplicated != 0 || lost > total/100 || ackOK.Load() != ackRounds.Load() || fetchOK.Load() != fetchRounds.Load() {
		t.Fatal(report)
	}
}

// TestSoakThroughAWSLikeProxy: three nodes behind the AWS-like proxy (15-25 ms a request, every
// receive reordered, 1% of data-path requests throttled and 1% answered HTTP 500), clients on
// every node, SOAK_PROXY_BROADCASTS broadcasts from all three nodes. Every client receives every
// broadcast exactly once. Without held-back messages every client sees each other node's
// broadcasts in the order that node emitted them; with 1% of received messages held back (SQS
// hands them back after the visibility timeout, later than the reorder window), a message may
// arrive out of order only if its node counted it late.
func TestSoakThroughAWSLikeProxy(t *testing.T) {
	for _, holdBack := range []float64{0, 0.01} {
		t.Run(fmt.Sprintf("holdBack=%v", holdBack), func(t *testing.T) {
			p := awsproxy.AWSLike()
			p.Reorder = true
			p.HoldBack = holdBack
			p.Throttle = 0.01
			p.ServerError = 0.01
			soakThroughProxy(t, p, envInt("SOAK_PROXY_CLIENTS", 30)/3, envInt("SOAK_PROXY_BROADCASTS", 2000))
		})
	}
}

func soakThroughProxy(t *testing.T, p awsproxy.Profile, clientsPerNode, broadcasts int) {
	px := startProxy(t, p)
	opts := testOptions(t)
	opts.HeartbeatTimeout = 10 * time.Second
	nodes := proxiedCluster(t, px, 3, opts)
	type client struct {
		node int
		*orderRecorder
	}
	var clients []client
	for i, n := range nodes {
		for range clientsPerNode {
			cl, _ := connect(t, n, "/", nil)
			clients = append(clients, client{i, recordOrder(cl)})
		}
	}
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond) // at most 500 broadcasts/s
	next := make([]int, 3)
	for i := range broadcasts {
		<-tick.C
		sender := i % 3
		nodes[sender].io.Emit("n", sender, next[sender])
		next[sender]++
	}
	tick.Stop()
	emitted := time.Since(start)
	complete := func() bool {
		for _, c := range clients {
			for sender := range 3 {
				if got, _, _, _ := c.check(sender, next[sender]); got < next[sender] {
					return false
				}
			}
		}
		return true
	}
	eventually(t, 60*time.Second, complete, "every client received every broadcast")
	var missing, duplicated, inversions, crossNode int
	for _, c := range clients {
		for sender := range 3 {
			_, m, d, inv := c.check(sender, next[sender])
			missing, duplicated = missing+m, duplicated+d
			if sender != c.node { // a node's own broadcasts reach its clients without crossing AWS
				inversions += inv
				crossNode += next[sender]
			}
		}
	}
	var late, held uint64
	for i, n := range nodes {
		s := n.builder.Stats()
		late, held = late+s.LateDeliveries, held+s.Reordered
		t.Logf("node %d: %+v", i, s)
	}
	c := px.Counts()
	t.Logf("proxy soak: %d clients, %d broadcasts in %v; %d deliveries across nodes; %d missing, %d duplicated, "+
		"%d out of order, %d counted late by the nodes, %d held to restore order; proxy: %d requests, %d throttled, "+
		"%d HTTP 500, %d receives reordered, %d messages held back",
		len(clients), broadcasts, emitted.Round(time.Millisecond), crossNode, missing, duplicated, inversions, late, held,
		c.Total(), c.Throttled, c.ServerErrors, c.Reordered, c.HeldBack)
	if missing != 0 || duplicated != 0 {
		t.Fatalf("%d missing, %d duplicated", missing, duplicated)
	}
	// A late message is out of order at every client of its receiving node: at most
	// clientsPerNode inversions each.
	if uint64(inversions) > late*uint64(clientsPerNode) {
		t.Fatalf("%d deliveries out of order, but only %d messages counted late", inversions, late)
	}
	if p.HoldBack == 0 && inversions != 0 {
		t.Fatalf("%d deliveries out of order without any message held back", inversions)
	}
	if c.Throttled == 0 || c.ServerErrors == 0 || (p.HoldBack > 0 && c.HeldBack == 0) {
		t.Fatalf("the proxy injected too few faults to prove anything: %+v", c)
	}
}

// TestSoakRecoveryRollingRestartThroughAWSLikeProxy is the rolling deploy of
// TestRecoveryRollingRestart at AWS's latency, with reordered receives and throttled requests.
func TestSoakRecoveryRollingRestartThroughAWSLikeProxy(t *testing.T) {
	p := awsproxy.AWSLike()
	p.Reorder = true
	p.Throttle = 0.01
	px := startProxy(t, p)
	opts := testOptions(t)
	opts.HeartbeatTimeout = 10 * time.Second
	rollingRestart(t, recoveryNodesThrough(t, px, opts), 30, 20)
}
