// One Socket.IO server of a cluster: run it on several machines (or ports) with the same AWS
// account, region and topic, and what one emits reaches the clients of all of them.
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/zishang520/socket.io/servers/socket/v3"

	sqsadapter "github.com/socketio-go/aws-sqs-adapter"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	// Ctrl-C sends SIGINT; ECS, Kubernetes, systemd and docker stop send SIGTERM.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := config.LoadDefaultConfig(ctx) // AWS_REGION, credentials, AWS_ENDPOINT_URL, ...
	if err != nil {
		return err
	}
	builder := sqsadapter.NewAdapterBuilder(sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg), nil) // nil: default Options

	opts := socket.DefaultServerOptions()
	opts.SetAdapter(builder)
	io := socket.NewServer(nil, opts)
	_ = io.On("connection", func(args ...any) {
		client := args[0].(*socket.Socket)
		_ = client.On("chat", func(msg ...any) {
			io.Emit("chat", msg...) // reaches the clients of every server of the cluster
		})
	})

	// Create (or find) the topic, create this server's queue, subscribe it. On failure Init
	// returns the error of the AWS call (an *sqsadapter.OpError), having removed what it
	// created. Give it a deadline: an unreachable endpoint would otherwise hold it for minutes.
	initCtx, cancelInit := context.WithTimeout(ctx, 30*time.Second)
	defer cancelInit()
	if err := builder.Init(initCtx); err != nil {
		io.Close(nil)
		return err
	}

	// Serve only now: a load balancer sends no client here before the adapter is ready.
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		// 503 while the adapter is not part of the cluster (closing, or making its queue again).
		if err := builder.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	addr := ":3000"
	if port := os.Getenv("PORT"); port != "" {
		addr = ":" + port
	}
	httpServer := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.ListenAndServe() }()
	log.Printf("listening on %s", addr)

	select {
	case <-ctx.Done(): // SIGINT or SIGTERM
		stop() // a second Ctrl-C kills the program at once
		log.Print("shutting down")
	case err = <-serveErr: // the port is taken, ...
	}

	// Stop within the platform's grace period (ECS and Kubernetes: 30 s, then SIGKILL), or this
	// server's queue stays behind until the other servers remove it. First stop accepting
	// connections. The deadline is short: a pending long-polling request ends only when the
	// server has something to send for it.
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelShutdown()
	_ = httpServer.Shutdown(shutdownCtx)
	// Disconnect the clients (they reconnect to another server), close the adapter, and wait for
	// its clean-up: unsubscribe, delete this server's queue (within Options.ShutdownTimeout).
	io.Close(nil)
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancelClose()
	err = errors.Join(err, builder.Close(closeCtx))
	_ = httpServer.Close() // cuts the long-polling requests still pending
	return err
}
