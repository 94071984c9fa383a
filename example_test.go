package sqsadapter_test

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

// A Socket.IO server that is one node of a cluster: every node uses the same topic, and each
// gets a queue of its own. The AWS configuration comes from the SDK's default chain
// (environment, shared files, instance or task role); AWS_ENDPOINT_URL points it at an
// emulator instead of AWS.
func ExampleNewAdapterBuilder() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	builder := sqsadapter.NewAdapterBuilder(sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg), &sqsadapter.Options{
		TopicName: "my-app", // the same on every node of the cluster
	})

	opts := socket.DefaultServerOptions()
	opts.SetAdapter(builder)
	io := socket.NewServer(nil, opts)
	defer io.Close(nil) // unsubscribes and deletes this node's queue

	// Provision before serving: the topic, this node's queue, its subscription.
	if err := builder.Init(ctx); err != nil {
		log.Fatal(err)
	}

	_ = io.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		_ = s.On("chat", func(msg ...any) {
			io.Emit("chat", msg...) // reaches the clients of every node
		})
	})
	http.Handle("/socket.io/", io.ServeHandler(nil))
	log.Fatal(http.ListenAndServe(":3000", nil))
}

// Init returns the error of the AWS call that failed, as an *OpError naming the action, and
// deletes whatever it created before the failure. The error of the AWS SDK is reachable through
// it, for instance to tell a missing permission from an outage.
func ExampleAdapterBuilder_Init() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	builder, io := newServer(ctx) // as in the NewAdapterBuilder example
	defer io.Close(nil)

	if err := builder.Init(ctx); err != nil {
		var opErr *sqsadapter.OpError
		// smithy.APIError, without importing smithy-go.
		var apiErr interface {
			ErrorCode() string
			ErrorMessage() string
		}
		if errors.As(err, &opErr) && errors.As(err, &apiErr) {
			// e.g. "sns:Subscribe refused: AuthorizationError: User ... is not authorized ..."
			log.Fatalf("%s refused: %s: %s", opErr.Op, apiErr.ErrorCode(), apiErr.ErrorMessage())
		}
		log.Fatal(err) // a timeout, invalid Options, ...
	}
}

// Closing the Socket.IO server closes the adapter within Options.ShutdownTimeout; Close waits
// for that clean-up (unsubscribe, delete the queue) within a deadline of your own and tells
// whether it succeeded. A node that never closes leaves its queue behind until the other nodes
// remove it (Options.OrphanCleanupInterval).
func ExampleAdapterBuilder_Close() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	builder, io := newServer(ctx) // as in the NewAdapterBuilder example
	if err := builder.Init(ctx); err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: ":3000", Handler: io.ServeHandler(nil)}
	go func() { _ = srv.ListenAndServe() }()

	<-ctx.Done() // SIGINT or SIGTERM

	io.Close(nil) // disconnects the clients, then closes the adapter
	closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := builder.Close(closeCtx); err != nil {
		log.Printf("this node's queue may be left behind: %v", err)
	}
	_ = srv.Shutdown(closeCtx)
}

// newServer returns a Socket.IO server using a new AdapterBuilder with the default options.
func newServer(ctx context.Context) (*sqsadapter.AdapterBuilder, *socket.Server) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	builder := sqsadapter.NewAdapterBuilder(sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg), nil)
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(builder)
	return builder, socket.NewServer(nil, opts)
}
