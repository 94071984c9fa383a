package emitter_test

import (
	"context"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/socketio-go/aws-sqs-adapter/emitter"
)

// A worker that is not a Socket.IO server tells the clients of a cluster that a report is
// ready. It needs AWS credentials (or AWS_ENDPOINT_URL for an emulator), so it is not run.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// The topic the servers' adapters use: Options.TopicName, default "socket-io". New fails
	// (errors.Is(err, emitter.ErrTopicNotFound)) if there is no such topic in this region.
	e, err := emitter.New(ctx, sns.NewFromConfig(cfg), &emitter.Options{TopicName: "socket-io"})
	if err != nil {
		log.Fatal(err)
	}

	// Every client in the room "user:42" on every server, with a binary argument.
	pdf := []byte("%PDF-1.7 ...")
	if err := e.To("user:42").Emit(ctx, "report", map[string]any{"id": 7, "pdf": pdf}); err != nil {
		log.Print(err)
	}

	// The admin namespace's clients, except those in the room "muted".
	if err := e.Of("/admin").Except("muted").Emit(ctx, "alert", "disk almost full"); err != nil {
		log.Print(err)
	}

	// Room membership and disconnection act on the selected sockets of every server.
	if err := e.In("user:42").SocketsJoin(ctx, "reports"); err != nil {
		log.Print(err)
	}
	if err := e.In("banned").DisconnectSockets(ctx, true); err != nil {
		log.Print(err)
	}

	// Every server's listeners: io.Of("/").On("cache:invalidate", ...).
	if err := e.ServerSideEmit(ctx, "cache:invalidate", "users"); err != nil {
		log.Print(err)
	}
}
