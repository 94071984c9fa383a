// Command cluster is the smallest complete use of the adapter: three Go Socket.IO servers in one
// process, each with its own AdapterBuilder (its own SQS queue) on one SNS topic, a Go client on
// each, one broadcast and one serverSideEmit that cross servers. It prints what happened, closes
// every server (which deletes its queue) and exits 0, or exits 1 saying what went wrong.
//
//	scripts/with-emulator.sh go run ./examples/cluster   (`make test` runs it once)
//
// It talks to the SNS/SQS endpoint of AWS_ENDPOINT_URL, or to real AWS without it (then it
// creates the topic "socket-io-example-<random>" and three queues, and deletes the queues).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/zishang520/socket.io/clients/engine/v3/transports"
	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	sqsadapter "github.com/socketio-go/aws-sqs-adapter"
)

func main() {
	// The adapter logs at info level when it subscribes and closes; warnings and errors only here.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cluster example failed:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

// server is one Go Socket.IO server of the example.
type server struct {
	name    string
	io      *socket.Server
	builder *sqsadapter.AdapterBuilder
	http    *http.Server
	url     string
}

func run(ctx context.Context) error {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	if cfg.Region == "" {
		return errors.New("no AWS region: set AWS_REGION (scripts/with-emulator.sh sets it)")
	}
	snsClient, sqsClient := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	// A topic of its own, so that a run never meets another program's nodes.
	topic := fmt.Sprintf("socket-io-example-%d", time.Now().UnixNano()%1_000_000_000)

	var servers []*server
	defer func() { // also on failure: delete every queue created so far
		if err := closeAll(servers); err != nil {
			fmt.Fprintln(os.Stderr, "closing:", err)
		}
	}()
	for i := 1; i <= 3; i++ {
		s, err := startServer(ctx, fmt.Sprintf("server-%d", i), snsClient, sqsClient, topic)
		if err != nil {
			return err
		}
		servers = append(servers, s)
		fmt.Printf("%s listening on %s\n", s.name, s.url)
	}

	// Every server learns of the others from their heartbeats.
	if err := waitFor(ctx, func() bool {
		for _, s := range servers {
			if s.io.Sockets().Adapter().ServerCount() != 3 {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("waiting until every server counts 3 servers: %w", err)
	}
	fmt.Println("every server counts 3 servers (ServerCount)")

	// One client on each server, each waiting for the broadcast.
	received := make(chan string, 3)
	for _, s := range servers {
		c, err := connect(ctx, s.url)
		if err != nil {
			return fmt.Errorf("connecting a client to %s: %w", s.name, err)
		}
		defer c.Disconnect()
		_ = c.On("news", func(args ...any) {
			received <- fmt.Sprintf("client of %s received news %v", s.name, args)
		})
	}

	// A broadcast on server-1 reaches the clients of every server.
	servers[0].io.Emit("news", "hello from server-1")
	for range 3 {
		select {
		case line := <-received:
			fmt.Println(line)
		case <-ctx.Done():
			return errors.New("a client did not receive the broadcast")
		}
	}

	// A serverSideEmit from server-1 reaches the other servers, whose acknowledgements come back.
	for _, s := range servers[1:] {
		_ = s.io.Sockets().On("whoami", func(args ...any) {
			fmt.Printf("%s received serverSideEmit whoami %v\n", s.name, args[:len(args)-1])
			args[len(args)-1].(socket.Ack)([]any{s.name}, nil)
		})
	}
	answers := make(chan []any, 1)
	var emitErr error
	err = servers[0].io.Sockets().ServerSideEmitWithAck("whoami", "asked by server-1")(func(args []any, err error) {
		emitErr = err
		answers <- args
	})
	if err != nil {
		return err
	}
	select {
	case got := <-answers:
		if emitErr != nil {
			return fmt.Errorf("serverSideEmit: %w", emitErr)
		}
		names := make([]string, 0, len(got))
		for _, v := range got {
			names = append(names, fmt.Sprint(v))
		}
		slices.Sort(names)
		fmt.Printf("server-1 got acknowledgements from %v\n", names)
		if !slices.Equal(names, []string{"server-2", "server-3"}) {
			return fmt.Errorf("acknowledgements %v, want server-2 and server-3", names)
		}
	case <-ctx.Done():
		return errors.New("no answer to serverSideEmit")
	}
	return nil
}

// startServer serves a Socket.IO server with the adapter on a random loopback port and waits for
// Init, which creates (or finds) the topic, creates this server's queue and subscribes it.
func startServer(ctx context.Context, name string, snsClient *sns.Client, sqsClient *sqs.Client, topic string) (*server, error) {
	builder := sqsadapter.NewAdapterBuilder(snsClient, sqsClient, &sqsadapter.Options{TopicName: topic})
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(builder)
	io := socket.NewServer(nil, opts)
	if err := builder.Init(ctx); err != nil {
		io.Close(nil)
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		io.Close(nil)
		return nil, err
	}
	s := &server{name: name, io: io, builder: builder, url: "http://" + ln.Addr().String()}
	s.http = &http.Server{Handler: io.ServeHandler(nil), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

// closeAll closes the servers: each says goodbye to the cluster, unsubscribes its queue and
// deletes it.
func closeAll(servers []*server) error {
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.io.Close(nil) // closes the adapter of every namespace, hence the builder
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			// Close is idempotent: this returns the result of the close io.Close started.
			if err := s.builder.Close(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.name, err)
				return
			}
			_ = s.http.Close()
			fmt.Printf("%s closed: unsubscribed, queue deleted\n", s.name)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// connect opens a websocket client to url, working around two races of the Go client v3.0.1:
//   - Socket.Connect sends CONNECT from its "open" listener and again when it then finds the
//     manager open, so a connection that opens in between carries two CONNECTs and the server
//     closes it. So the manager's connection is opened first, then the socket connects over it.
//   - Now and then a connect is lost (the connection or the CONNECT never completes, silently):
//     a step that takes more than 2 s (they take milliseconds) is abandoned and the connect tried
//     again, five times at the most.
func connect(ctx context.Context, url string) (*client.Socket, error) {
	for range 5 {
		opts := client.DefaultOptions()
		opts.SetTransports(types.NewSet(transports.WebSocket))
		opts.SetReconnection(false)
		opts.SetForceNew(true)
		opts.SetAutoConnect(false)
		manager := client.NewManager(url, opts)
		opened := make(chan error, 1)
		manager.Open(func(err error) { opened <- err })
		select {
		case err := <-opened:
			if err != nil {
				continue
			}
		case <-time.After(2 * time.Second):
			manager.Socket("/", opts).Disconnect() // closes the manager, its engine and timer
			continue
		case <-ctx.Done():
			manager.Socket("/", opts).Disconnect()
			return nil, ctx.Err()
		}
		c := manager.Socket("/", opts)
		connected := make(chan struct{})
		var once sync.Once
		_ = c.On("connect", func(...any) { once.Do(func() { close(connected) }) })
		c.Connect()
		select {
		case <-connected:
			return c, nil
		case <-time.After(2 * time.Second):
			c.Disconnect()
		case <-ctx.Done():
			c.Disconnect()
			return nil, ctx.Err()
		}
	}
	return nil, errors.New("no connection after 5 attempts")
}

// waitFor polls cond every 20 ms until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
