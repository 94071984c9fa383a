// Package nodepeer runs and drives a Node Socket.IO server that uses the
// upstream-equivalent SNS/SQS transport (interop/node/peer.js), so that Go
// tests can build mixed Go/Node clusters.
//
// The peer talks JSON lines over stdin/stdout; interop/node/README.md
// documents every command. The peer uses the AWS SDK's default configuration
// chain, so run the tests under scripts/with-emulator.sh (AWS_ENDPOINT_URL,
// AWS_REGION and credentials are inherited).
//
// A typical mixed-cluster test:
//
//	func TestGoSeesNode(t *testing.T) {
//		testsupport.RequireAWS(t) // skip without AWS_ENDPOINT_URL; fail under CI=true
//		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
//		defer cancel()
//		topic := testsupport.UniqueName("mixed")
//		node := nodepeer.Start(t, nodepeer.Config{
//			Topic:             topic,
//			HeartbeatInterval: 200 * time.Millisecond,
//			HeartbeatTimeout:  1500 * time.Millisecond,
//		})
//		// ... start the Go server on the same topic; wait until both count 2 servers:
//		// testsupport.WaitServerCount(t, 10*time.Second, "/", 2, goAdapter, node.ServerCounter("/"))
//		var c struct{ ID string }
//		if err := node.CallInto(ctx, "connectClient", map[string]any{"name": "c1"}, &c); err != nil {
//			t.Fatal(err)
//		}
//		node.Call(ctx, "clientOn", map[string]any{"name": "c1", "ev": "hello", "ack": "ok"})
//		// ... the Go server broadcasts "hello" with a []byte argument ...
//		ev, err := node.WaitEvent(ctx, func(e nodepeer.Event) bool {
//			return e.Name == "client" && e.Str("ev") == "hello"
//		})
//		args := ev.Value("args").([]any) // $bin back to []byte, $date to time.Time
//	}
//
// Start registers the cleanup (close, or kill) itself; Kill simulates a
// crash.
package nodepeer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Config selects how a peer is started. The zero value is valid: topic
// "socket-io", queue prefix "socket-io", upstream's heartbeat defaults.
type Config struct {
	// Topic is the SNS topic name (PEER_TOPIC). Use a fresh name per test.
	Topic string
	// QueuePrefix is the SQS queue name prefix (PEER_QUEUE_PREFIX).
	QueuePrefix string
	// HeartbeatInterval and HeartbeatTimeout are passed to
	// ClusterAdapterWithHeartbeat (upstream defaults: 5 s and 10 s).
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	// Namespaces are created before the peer reports ready, besides "/".
	Namespaces []string
	// Env holds extra KEY=VALUE entries for the peer (DEBUG=socket.io* ...).
	Env []string
	// StartTimeout bounds the wait for the ready line (default 60 s).
	StartTimeout time.Duration
	// Name labels the peer in errors and logs (default "node-peer").
	Name string
}

// Ready is the peer's ready line.
type Ready struct {
	Port            int               `json:"port"`
	PID             int               `json:"pid"`
	UIDs            map[string]string `json:"uids"` // namespace -> adapter uid
	TopicArn        string            `json:"topicArn"`
	QueueName       string            `json:"queueName"`
	QueueURL        string            `json:"queueUrl"`
	QueueArn        string            `json:"queueArn"`
	SubscriptionArn string            `json:"subscriptionArn"`
}

// Peer is a running peer.js process.
type Peer struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ready Ready

	stderr *tailBuffer

	writeMu sync.Mutex
	nextID  atomic.Int64

	killed atomic.Bool // Kill was called: a non-zero exit is expected

	mu      sync.Mutex
	pending map[int64]chan reply
	events  []Event
	changed chan struct{} // closed and replaced whenever events or exited change
	exited  bool
	exitErr error
	done    chan struct{} // closed once the process has been waited for
}

var (
	setupOnce sync.Once
	setupNode string
	setupErr  error
)

// setup finds the repository root and Node, and installs interop/node's
// packages, once per test binary; the script itself serialises test
// binaries that run at the same time.
func setup() (root, node string, err error) {
	root, err = RepoRoot()
	if err != nil {
		return "", "", err
	}
	setupOnce.Do(func() {
		var out bytes.Buffer
		c := exec.Command(filepath.Join(root, "scripts", "node.sh"))
		c.Dir = root
		c.Stdout = &out
		c.Stderr = os.Stderr
		if err := c.Run(); err != nil {
			setupErr = fmt.Errorf("nodepeer: scripts/node.sh: %w", err)
			return
		}
		setupNode = strings.TrimSpace(out.String())
		inst := exec.Command(filepath.Join(root, "scripts", "install-interop.sh"))
		inst.Dir = root
		var log bytes.Buffer
		inst.Stdout = &log
		inst.Stderr = &log
		if err := inst.Run(); err != nil {
			setupErr = fmt.Errorf("nodepeer: scripts/install-interop.sh: %w\n%s", err, log.String())
		}
	})
	return root, setupNode, setupErr
}

// RepoRoot returns the nearest directory at or above the working directory
// that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("nodepeer: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start starts a peer and waits until it is ready (provisioned, with its
// INITIAL_HEARTBEATs sent). The peer is closed (or killed) when the test
// ends; its stderr is logged if the test failed.
func Start(t testing.TB, cfg Config) *Peer {
	t.Helper()
	p, err := start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		crashed := p.Exited() && !p.killed.Load() && p.exitError() != nil
		if err := p.Close(ctx); err != nil {
			t.Errorf("%s: close: %v", p.name, err)
		} else if crashed {
			t.Errorf("%s exited on its own: %v", p.name, p.exitError())
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.Stderr())
		}
	})
	return p
}

// Launch starts a peer like Start, for programs that are not tests (the
// benchmark): it returns the error instead of failing a test and registers no
// cleanup, so the caller must Close (or Kill) the peer.
func Launch(cfg Config) (*Peer, error) { return start(cfg) }

func start(cfg Config) (*Peer, error) {
	root, node, err := setup()
	if err != nil {
		return nil, err
	}
	name := cfg.Name
	if name == "" {
		name = "node-peer"
	}
	c := exec.Command(node, "peer.js")
	c.Dir = filepath.Join(root, "interop", "node")
	c.Env = append(os.Environ(), peerEnv(cfg)...)
	p := &Peer{
		name:    name,
		cmd:     c,
		stderr:  &tailBuffer{max: 1 << 20},
		pending: make(map[int64]chan reply),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.Stderr = p.stderr
	if p.stdin, err = c.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("nodepeer: start %s: %w", node, err)
	}
	go p.read(stdout)

	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ev, err := p.WaitEvent(ctx, func(e Event) bool { return e.Name == "ready" || e.Name == "fatal" })
	if err == nil && ev.Name == "fatal" {
		err = fmt.Errorf("peer failed to start: %s", ev.Str("error"))
	}
	if err == nil {
		err = json.Unmarshal(ev.Raw, &p.ready)
	}
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("nodepeer: %s: %w\nstderr:\n%s", name, err, p.Stderr())
	}
	return p, nil
}

func peerEnv(cfg Config) []string {
	var env []string
	add := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	ms := func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	add("PEER_TOPIC", cfg.Topic)
	add("PEER_QUEUE_PREFIX", cfg.QueuePrefix)
	add("PEER_HEARTBEAT_INTERVAL_MS", ms(cfg.HeartbeatInterval))
	add("PEER_HEARTBEAT_TIMEOUT_MS", ms(cfg.HeartbeatTimeout))
	add("PEER_NAMESPACES", strings.Join(cfg.Namespaces, ","))
	return append(env, cfg.Env...)
}

// Ready returns the peer's ready line.
func (p *Peer) Ready() Ready { return p.ready }

// Port is the loopback port the peer's Socket.IO server listens on.
func (p *Peer) Port() int { return p.ready.Port }

// UID returns the adapter uid of namespace nsp as of the ready line.
func (p *Peer) UID(nsp string) string { return p.ready.UIDs[nsp] }

// Stderr returns what the peer wrote to stderr so far (its last MiB).
func (p *Peer) Stderr() string { return p.stderr.String() }

// Kill sends SIGKILL (a crash: the queue and subscription stay behind) and
// waits for the process to be reaped. It is a no-op once the peer exited.
func (p *Peer) Kill() {
	if p.Exited() {
		return
	}
	p.killed.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Exited reports whether the peer process has ended.
func (p *Peer) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Close sends the close command (io.close(): ADAPTER_CLOSE, then the queue
// is deleted and unsubscribed) and waits for the process to exit. If ctx
// ends first the peer is killed and ctx's error returned. Close after the
// peer exited returns nil.
func (p *Peer) Close(ctx context.Context) error {
	if p.Exited() {
		return nil
	}
	_, err := p.Call(ctx, "close", nil)
	if err != nil && p.Exited() {
		err = nil // it exited while answering: that is what was asked
	}
	if err == nil {
		select {
		case <-p.done:
			if e := p.exitError(); e != nil {
				err = fmt.Errorf("nodepeer: %s exited with %v", p.name, e)
			}
		case <-ctx.Done():
			err = fmt.Errorf("nodepeer: %s did not exit after close: %w", p.name, ctx.Err())
		}
	}
	if !p.Exited() {
		p.Kill()
	}
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(data []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, data...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(data), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
