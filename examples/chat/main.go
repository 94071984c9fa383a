// Command chat is a chat app served by a cluster of Go Socket.IO servers joined by the AWS SNS/SQS
// adapter: it starts several nodes in one process, each on its own loopback port with its own
// AdapterBuilder (its own SQS queue) on one SNS topic, and each serving the same web page.
//
//	make demo                                        # emulator + this program
//	scripts/with-emulator.sh go run ./examples/chat  # the same, by hand
//	go run ./examples/chat -nodes 2 -port 0          # against AWS_ENDPOINT_URL or real AWS
//
// A message typed on one node's page shows on every other node's page, with the node of its
// sender; channels are Socket.IO rooms; the user list is fetchSockets across the cluster; the
// cluster view shows what each node answers to a serverSideEmit (its ServerCount and clients).
// Nodes are stopped and started again from the page or by typing "stop 2" / "start 2" here.
// Connection state recovery is on: a stopped node hands its users' sessions off to the other
// nodes, and their pages, which then connect to another node, get back their socket and every
// message sent while they were away. Ctrl-C closes every node, which unsubscribes and deletes
// its queue.
//
// The browser bundle is the official socket.io-client from npm, served from
// examples/chat/web/node_modules (`make demo` installs it; by hand:
// scripts/install-npm.sh examples/chat/web).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func main() {
	nodes := flag.Int("nodes", 3, "number of Go Socket.IO nodes to start")
	host := flag.String("host", "127.0.0.1", "address to listen on (the page's stop/start buttons have no authentication: keep it on loopback)")
	port := flag.Int("port", 3000, "port of the first node; node i listens on port+i-1 (0: random free ports)")
	topic := flag.String("topic", "socket-io-chat", "SNS topic shared by the nodes")
	clientJS := flag.String("client-js", "", "path of socket.io.min.js (default: examples/chat/web/node_modules/socket.io-client/dist/socket.io.min.js)")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	if err := run(log, *nodes, *host, *port, *topic, *clientJS); err != nil {
		log.Error("chat: " + err.Error())
		os.Exit(1)
	}
}

func run(log *slog.Logger, count int, host string, port int, topic, clientJSPath string) error {
	if count < 1 {
		return errors.New("-nodes must be at least 1")
	}
	bundle, err := readClientBundle(clientJSPath)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return errors.New("no AWS region: set AWS_REGION (`make demo` runs a local emulator and sets it)")
	}
	if ep := os.Getenv("AWS_ENDPOINT_URL"); ep != "" {
		log.Info("chat: using the AWS endpoint of AWS_ENDPOINT_URL", "endpoint", ep, "region", cfg.Region)
	} else {
		log.Warn("chat: AWS_ENDPOINT_URL is not set: using real AWS (this creates an SNS topic and one SQS queue per node)",
			"region", cfg.Region)
	}

	c := &cluster{
		log:    log,
		topic:  topic,
		sns:    sns.NewFromConfig(cfg),
		sqs:    sqs.NewFromConfig(cfg),
		bundle: bundle,
	}
	for i := 1; i <= count; i++ {
		p := 0
		if port != 0 {
			p = port + i - 1
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			_ = c.shutdown()
			return fmt.Errorf("node-%d: %w (choose another -port, or -port 0 for random ports)", i, err)
		}
		c.nodes = append(c.nodes, newChatNode(c, i, ln))
	}

	// Start the nodes one at a time: each Init provisions its queue and subscription.
	for _, n := range c.nodes {
		if err := n.start(ctx); err != nil {
			if ctx.Err() != nil {
				log.Info("chat: interrupted while starting: closing the nodes started so far")
				return c.shutdown()
			}
			_ = c.shutdown()
			return err
		}
	}

	fmt.Printf("\nChat cluster of %d Go Socket.IO nodes on SNS topic %q:\n", count, topic)
	for _, n := range c.nodes {
		fmt.Printf("  %s  %s\n", n.name, n.url)
	}
	fmt.Println("Open two of them in different browser windows and chat.")
	fmt.Println(`Type "stop 2" / "start 2" to stop or start a node, "status" to list them. Ctrl-C stops everything.`)
	fmt.Println("ready")

	go c.readCommands(ctx, os.Stdin)

	<-ctx.Done()
	stop() // a second Ctrl-C now kills the program at once
	// A second signal while the queues are being removed exits without waiting further.
	force := make(chan os.Signal, 1)
	signal.Notify(force, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-force
		log.Error("chat: interrupted again: exiting without finishing the clean-up; queues may be left behind")
		os.Exit(130)
	}()
	log.Info("chat: shutting down: closing every node (each unsubscribes and deletes its queue)")
	if err := c.shutdown(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("chat: all nodes closed, their queues deleted; bye")
	return nil
}

// readClientBundle reads the socket.io-client browser bundle installed by npm.
func readClientBundle(path string) ([]byte, error) {
	const rel = "node_modules/socket.io-client/dist/socket.io.min.js"
	candidates := []string{path}
	if path == "" {
		candidates = []string{filepath.Join("examples/chat/web", rel), filepath.Join("web", rel)}
		// With `go run`, the source folder of this file (wherever the command runs from).
		if _, file, _, ok := runtime.Caller(0); ok {
			candidates = append(candidates, filepath.Join(filepath.Dir(file), "web", rel))
		}
	}
	for _, p := range candidates {
		if b, err := os.ReadFile(p); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("socket.io-client bundle not found (looked at %s): run `scripts/install-npm.sh examples/chat/web` "+
		"from the repository root (make demo does), or pass -client-js", strings.Join(candidates, ", "))
}

// cluster is the set of nodes this process runs.
type cluster struct {
	log    *slog.Logger
	topic  string
	sns    *sns.Client
	sqs    *sqs.Client
	bundle []byte
	nodes  []*chatNode
}

// node finds a node by number ("2") or name ("node-2").
func (c *cluster) node(ref string) *chatNode {
	ref = strings.TrimPrefix(strings.TrimSpace(ref), "node-")
	i, err := strconv.Atoi(ref)
	if err != nil || i < 1 || i > len(c.nodes) {
		return nil
	}
	return c.nodes[i-1]
}

// configured lists the nodes with their URLs, for the page's cluster view.
func (c *cluster) configured() []map[string]any {
	out := make([]map[string]any, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = map[string]any{"name": n.name, "url": n.url}
	}
	return out
}

// origins are the origins of the nodes' pages, which may open a Socket.IO connection to any node
// (the page of a stopped node reconnects to another one): each node's URL, and its localhost
// spelling when it listens on a loopback address.
func (c *cluster) origins() []any {
	var out []any
	for _, n := range c.nodes {
		u, err := url.Parse(n.url)
		if err != nil {
			continue
		}
		out = append(out, u.Scheme+"://"+u.Host)
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			out = append(out, u.Scheme+"://"+net.JoinHostPort("localhost", u.Port()))
		}
	}
	return out
}

// shutdown closes every node at once and then their HTTP listeners.
func (c *cluster) shutdown() error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.stop()
			n.closeHTTP()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readCommands runs "stop N", "start N", "status" typed on stdin until ctx ends or stdin closes.
func (c *cluster) readCommands(ctx context.Context, in *os.File) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if ctx.Err() != nil {
			return
		}
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch cmd := fields[0]; {
		case (cmd == "stop" || cmd == "start") && len(fields) == 2:
			n := c.node(fields[1])
			if n == nil {
				fmt.Printf("no node %q (1..%d)\n", fields[1], len(c.nodes))
				continue
			}
			var err error
			if cmd == "stop" {
				err = n.stop()
			} else {
				startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err = n.start(startCtx)
				cancel()
			}
			if err != nil {
				fmt.Printf("%s %s: %v\n", cmd, n.name, err)
			}
		case cmd == "status":
			for _, n := range c.nodes {
				fmt.Println(" ", n.describe())
			}
		default:
			fmt.Println(`commands: "stop N", "start N" (N = 1..` + strconv.Itoa(len(c.nodes)) + `), "status"; Ctrl-C stops everything`)
		}
	}
}
