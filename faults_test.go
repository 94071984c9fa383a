package sqsadapter

// Fault tests: AWS going away and coming back, resources removed out of band.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// ownEmulator is a fauxqs process of the test's own, which the test stops and starts again on
// the same port. fauxqs keeps its state in memory, so a restart loses every topic and queue.
type ownEmulator struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func startOwnEmulator(t *testing.T) *ownEmulator {
	t.Helper()
	testsupport.RequireAWS(t) // the same skip-or-fail rule as every integration test
	if os.Getenv("SQSADAPTER_TEST_REAL_AWS") == "1" {
		t.Skip("stops and restarts a local emulator: not applicable to real AWS")
	}
	if err := exec.Command("scripts/install-emulator.sh").Run(); err != nil {
		t.Fatalf("installing the emulator: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &ownEmulator{t: t, port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *ownEmulator) url() string { return fmt.Sprintf("http://127.0.0.1:%d", e.port) }

func (e *ownEmulator) start() {
	e.t.Helper()
	node, err := exec.Command("scripts/node.sh").Output()
	if err != nil {
		e.t.Fatalf("scripts/node.sh: %v", err)
	}
	e.cmd = exec.Command(strings.TrimSpace(string(node)), "--disable-warning=ExperimentalWarning", "tools/emulator/start.mjs")
	e.cmd.Env = append(os.Environ(), fmt.Sprintf("FAUXQS_PORT=%d", e.port), "FAUXQS_LOGGER=false")
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(e.cmd, e.done)
	eventually(e.t, 30*time.Second, func() bool {
		resp, err := http.Get(e.url() + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "the emulator answers on port %d", e.port)
}

func (e *ownEmulator) stop() {
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
	e.cmd = nil
}

func (e *ownEmulator) clients() (*sns.Client, *sqs.Client) {
	cfg := testsupport.AWSConfig(e.t)
	cfg.BaseEndpoint = aws.String(e.url())
	return sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
}

// countingSink counts the errors handed to OnError.
type countingSink struct {
	mu   sync.Mutex
	errs []error
}

func (s *countingSink) onError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

func (s *countingSink) snapshot() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestEmulatorOutageAndRestart(t *testing.T) {
	e := startOwnEmulator(t)
	snsClient, sqsClient := e.clients()
	opts := testOptions(t)
	const size = 3
	var nodes []*node
	var sinks []*countingSink
	for range size {
		sink := &countingSink{}
		o := *opts
		o.OnError = sink.onError
		nodes = append(nodes, startNodeWith(t, NewAdapterBuilder(snsClient, sqsClient, &o)))
		sinks = append(sinks, sink)
	}
	waitServerCount(t, nodes, "/", size)
	var clients []*testClient
	for _, n := range nodes {
		cl, _ := connect(t, n, "/", nil)
		cl.record("after")
		clients = append(clients, cl)
	}

	e.stop()
	cpuBefore, outage := cpuTime(), 10*time.Second
	time.Sleep(outage) // the outage itself: nothing to wait for but time
	cpu := cpuTime() - cpuBefore
	for i, s := range sinks {
		errs := s.snapshot()
		if len(errs) == 0 || len(errs) > 3 {
			t.Errorf("node %d reported %d errors during a 10 s outage, want one per streak (receive, publish): %v", i, len(errs), errs)
		}
		var opErr *OpError
		if len(errs) > 0 && !errors.As(errs[0], &opErr) {
			t.Errorf("node %d: %v is not an *OpError", i, errs[0])
		}
	}
	t.Logf("CPU used by the test process during the %v outage: %v", outage, cpu)
	if cpu > 2*time.Second {
		t.Errorf("CPU %v during a %v outage: the nodes spin instead of backing off", cpu, outage)
	}

	e.start() // empty: every topic, queue and subscription is gone
	waitServerCount(t, nodes, "/", size)
	for i, n := range nodes {
		eventually(t, 30*time.Second, func() bool { return n.builder.Stats().Reprovisions >= 1 }, "node %d re-provisions", i)
	}
	nodes[0].io.Emit("after", "recovered")
	for i, cl := range clients {
		if e := cl.next(t); e.args[0] != "recovered" {
			t.Fatalf("client %d got %v", i, e.args)
		}
	}
}

func TestQueueDeletedOutOfBandIsMadeAgain(t *testing.T) {
	_, sqsClient := awsClients(t)
	nodes := cluster(t, 2, testOptions(t))
	cl, _ := connect(t, nodes[1], "/", nil)
	cl.record("after")
	old := nodes[1].resources()
	if _, err := sqsClient.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: &old.queueURL}); err != nil {
		t.Fatal(err)
	}
	// The long poll in flight may wait out its 20 s before the next one finds the queue gone.
	eventually(t, 40*time.Second, func() bool { return nodes[1].builder.Stats().Reprovisions == 1 }, "node 1 makes its queue again")
	if nodes[1].resources().queueURL == old.queueURL {
		t.Fatal("same queue URL after re-provisioning")
	}
	nodes[0].io.Emit("after")
	cl.next(t)
}

func TestSubscriptionRemovedOutOfBandIsMadeAgain(t *testing.T) {
	snsClient, _ := awsClients(t)
	opts := testOptions(t)
	opts.SubscriptionCheckInterval = 300 * time.Millisecond
	nodes := cluster(t, 2, opts)
	cl, _ := connect(t, nodes[1], "/", nil)
	cl.record("after")
	old := nodes[1].resources()
	if _, err := snsClient.Unsubscribe(context.Background(), &sns.UnsubscribeInput{SubscriptionArn: &old.subscriptionArn}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return nodes[1].builder.Stats().Reprovisions == 1 }, "node 1 subscribes again")
	nodes[0].io.Emit("after")
	cl.next(t)
}
