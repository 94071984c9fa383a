package sqsadapter

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/socketio-go/aws-sqs-adapter/internal/awsproxy"
)

// A rolling deploy: each of three servers in turn closes gracefully and a new one takes its
// place, while the servers broadcast without pause. Every client of a closing server reconnects
// through the balancer to another one and must be recovered there, and every client must end
// with every broadcast exactly once.

func TestRecoveryRollingRestart(t *testing.T) {
	opts := testOptions(t)
	rollingRestart(t, func() *node { return startRecoveryNode(t, opts, 0) }, 9, 40)
}

// recoveryNodesThrough returns a function that starts recovery nodes whose AWS clients go
// through px.
func recoveryNodesThrough(t testing.TB, px *awsproxy.Proxy, opts *Options) func() *node {
	cfg := proxiedConfig(t, px)
	return func() *node {
		o := *opts
		b := NewAdapterBuilder(sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg), &o)
		return startNodeWithServerOptions(t, b, recoveryServerOptions(0))
	}
}

// rollingRestart runs the deploy with clients clients and a broadcast every interval
// milliseconds, and reports the counts.
func rollingRestart(t *testing.T, start func() *node, clients int, interval int) {
	nodes := []*node{start(), start(), start()}
	waitServerCount(t, nodes, "/", 3)
	var mu sync.Mutex
	live := slices.Clone(nodes)
	next := 0
	lb := balancerTo(t, func() *node {
		mu.Lock()
		defer mu.Unlock()
		next++
		return live[next%len(live)]
	})
	cs := make([]*recoveringClient, clients)
	for i := range cs {
		cs[i] = connectRecovering(t, lb)
	}

	var sent []string
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Duration(interval) * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mu.Lock() // a server leaves live before it closes: never emit on a closing one
			text := fmt.Sprint(i)
			live[i%len(live)].io.Emit("msg", text)
			sent = append(sent, text)
			mu.Unlock()
		}
	}()

	recovered, notRecovered := 0, 0
	for i := range nodes {
		old := nodes[i]
		var moving []*recoveringClient
		for _, c := range cs {
			if _, ok := old.io.Of("/", nil).Sockets().Load(socketID(c)); ok {
				moving = append(moving, c)
			}
		}
		time.Sleep(300 * time.Millisecond) // broadcasts keep flowing between hops
		mu.Lock()
		live = slices.DeleteFunc(live, func(n *node) bool { return n == old })
		mu.Unlock()
		old.close()
		for _, c := range moving {
			if c.reconnected(t) {
				recovered++
			} else {
				notRecovered++
			}
		}
		nodes[i] = start()
		waitServerCount(t, nodes, "/", 3)
		mu.Lock()
		live = append(live, nodes[i])
		mu.Unlock()
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-stopped

	// Every client gets every broadcast, or the wait ends and the count says what went wrong.
	deadline := time.Now().Add(20 * time.Second)
	lost, duplicated := 0, 0
	for i, c := range cs {
		for len(c.connected) > 0 { // reconnects caused by another client's retry
			if <-c.connected {
				recovered++
			} else {
				notRecovered++
			}
		}
		for time.Now().Before(deadline) && c.count() < len(sent) {
			time.Sleep(10 * time.Millisecond)
		}
		c.mu.Lock()
		count := map[string]int{}
		for _, m := range c.messages {
			count[m.text]++
		}
		texts := make([]string, len(c.messages))
		for j, m := range c.messages {
			texts[j] = m.text
		}
		c.mu.Unlock()
		var missing, doubled []string
		for _, text := range sent {
			switch n := count[text]; {
			case n == 0:
				missing = append(missing, text)
			case n > 1:
				doubled = append(doubled, text)
				duplicated += n - 1
			}
		}
		lost += len(missing)
		if len(missing)+len(doubled) > 0 {
			t.Logf("client %d (%s): missing %v, doubled %v; received %v", i, c.Id(), missing, doubled, texts)
		}
	}
	t.Logf("rolling restart: %d clients, %d broadcasts each; %d reconnects recovered, %d not; %d lost, %d duplicated",
		clients, len(sent), recovered, notRecovered, lost, duplicated)
	if notRecovered > 0 || recovered == 0 || lost > 0 || duplicated > 0 {
		t.Fatalf("want every reconnect recovered and no broadcast lost or duplicated")
	}
}
