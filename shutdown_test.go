package sqsadapter

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// serverSideEmitMessage is a SERVER_SIDE_EMIT of event from another node, as SQS hands it over.
func serverSideEmitMessage(t *testing.T, id, event string) sqstypes.Message {
	m := &wire.Message{Type: wire.ServerSideEmit, Nsp: "/", UID: "ffffffff00000001"}
	return sqsMessage(t, id, m, &wire.ServerSideEmitData{Packet: []any{event}})
}

// A Close called from any goroutine but the delivery goroutine waits for the handler that runs on
// it: only a handler closing the server itself may skip that wait.
func TestCloseFromAnotherGoroutineWaitsForTheRunningHandler(t *testing.T) {
	q := &scriptedQueue{fakeAWS: &fakeAWS{}, batches: make(chan []sqstypes.Message, 1)}
	io, b := fakeServerWith(t, q.fakeAWS, q, nil, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	_ = io.Sockets().On("block", func(...any) {
		close(entered)
		<-release
	})
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	q.batches <- []sqstypes.Message{serverSideEmitMessage(t, "m1", "block")}
	<-entered

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- b.Close(ctx)
	}()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a handler still ran on the delivery goroutine", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// A handler that closes the server runs on the delivery goroutine: its Close must not wait for
// that goroutine to end.
func TestCloseFromAHandlerDoesNotWaitForItself(t *testing.T) {
	q := &scriptedQueue{fakeAWS: &fakeAWS{}, batches: make(chan []sqstypes.Message, 1)}
	io, b := fakeServerWith(t, q.fakeAWS, q, nil, nil)
	closed := make(chan error, 1)
	_ = io.Sockets().On("shutdown", func(...any) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		closed <- b.Close(ctx)
	})
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	q.batches <- []sqstypes.Message{serverSideEmitMessage(t, "m1", "shutdown")}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from a handler: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close from a handler did not return")
	}
}

// Closing a server whose Init never ran, or failed, is no error and logs none: the only
// messages waiting are the server's own announcements, and nothing was created.
func TestCloseBeforeInitIsQuiet(t *testing.T) {
	for _, c := range []struct {
		name string
		init func(b *AdapterBuilder) error
	}{
		{"never initialised", func(*AdapterBuilder) error { return nil }},
		{"invalid options", func(b *AdapterBuilder) error {
			b.setTopicName("not a topic name")
			if err := b.Init(context.Background()); !errors.Is(err, ErrInvalidOptions) {
				return err
			}
			return nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := newErrorSink()
			f := &fakeAWS{}
			io, b := fakeServer(t, f, sink)
			io.Of("/other", nil) // two announcements waiting
			if err := c.init(b); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-sink.ch:
				t.Fatalf("reported %v", err)
			default:
			}
			if n := len(f.calls); n != 0 {
				t.Fatalf("AWS calls %v", f.calls)
			}
		})
	}
}

// Every error the adapter reports carries the package prefix once.
func TestReportedErrorsCarryThePrefixOnce(t *testing.T) {
	sink := newErrorSink()
	f := &fakeAWS{fail: map[string]error{"Publish": apiError("AuthorizationError"), "PublishBatch": apiError("AuthorizationError")}}
	io, b := fakeServer(t, f, sink)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	io.Emit("hello")
	err := sink.next(t)
	if msg := err.Error(); strings.Count(msg, "sqsadapter:") != 1 || !strings.HasPrefix(msg, "sqsadapter: ") {
		t.Fatalf("error text %q: want the prefix once, at the start", msg)
	}
	var opErr *OpError
	if !errors.As(err, &opErr) || !strings.HasPrefix(opErr.Op, "sns:Publish") {
		t.Fatalf("err = %v, want an *OpError for sns:Publish or sns:PublishBatch", err)
	}
}

// With AWS unreachable, Close keeps trying within the caller's deadline, not within
// Options.ShutdownTimeout, and returns by that deadline with the errors of what it could not do.
func TestCloseWithAWSDownUsesTheCallersDeadline(t *testing.T) {
	e := startOwnEmulator(t)
	snsClient, sqsClient := e.clients()
	opts := testOptions(t)
	opts.ShutdownTimeout = 2 * time.Second
	n := startNodeWith(t, NewAdapterBuilder(snsClient, sqsClient, opts))
	e.stop()
	n.io.Emit("lost") // waits for SNS, which is gone
	const deadline = 4 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := n.builder.Close(ctx)
	took := time.Since(start)
	t.Logf("Close took %v: %v", took.Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("Close succeeded with AWS down")
	}
	var opErr *OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("Close: %v, want the errors of the AWS calls that failed", err)
	}
	if took > deadline+500*time.Millisecond {
		t.Fatalf("Close took %v with a %v deadline", took, deadline)
	}
}

// stalledSNS holds every publish until release is closed, and says when the first one waits.
type stalledSNS struct {
	*fakeAWS
	release, waiting chan struct{}
	once             sync.Once
}

func (s *stalledSNS) stall() {
	s.once.Do(func() { close(s.waiting) })
	<-s.release
}

func (s *stalledSNS) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	s.stall()
	return s.fakeAWS.Publish(ctx, in, o...)
}

func (s *stalledSNS) PublishBatch(ctx context.Context, in *sns.PublishBatchInput, o ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	s.stall()
	return s.fakeAWS.PublishBatch(ctx, in, o...)
}

// The server closing its last namespace starts the clean-up with Options.ShutdownTimeout; an
// application's Close with a longer deadline that joins it extends it: SNS answering after the
// server's timeout still gets the queued messages out.
func TestCloseJoiningTheServersCloseGetsItsOwnDeadline(t *testing.T) {
	f := &stalledSNS{fakeAWS: &fakeAWS{}, release: make(chan struct{}), waiting: make(chan struct{})}
	io, b := fakeServerWith(t, f, f.fakeAWS, nil, func(o *Options) { o.ShutdownTimeout = time.Second })
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-f.waiting // the INITIAL_HEARTBEAT waits for SNS
	serverClosed := make(chan struct{})
	go func() { io.Close(nil); close(serverClosed) }()
	eventually(t, 5*time.Second, b.closeStarted, "the server's close started")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- b.Close(ctx) }()
	time.Sleep(1500 * time.Millisecond) // past the server's ShutdownTimeout
	close(f.release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v, want the queued messages sent within its own deadline", err)
	}
	<-serverClosed
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.published, "1") || !slices.Contains(f.published, "13") || slices.Index(f.calls, "DeleteQueue") < 0 {
		t.Fatalf("published %v, calls %v: want INITIAL_HEARTBEAT and ADAPTER_CLOSE out, then the queue deleted", f.published, f.calls)
	}
}

// silentSNS accepts the connection and never answers CreateTopic, like an endpoint that hangs.
type silentSNS struct{ *fakeAWS }

func (s silentSNS) CreateTopic(ctx context.Context, _ *sns.CreateTopicInput, _ ...func(*sns.Options)) (*sns.CreateTopicOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// Init with a context that has no deadline, against an endpoint that never answers, fails
// within Options.InitTimeout and names the call it waited for.
func TestInitWithoutADeadlineIsBoundedByInitTimeout(t *testing.T) {
	f := &fakeAWS{}
	_, b := fakeServerWith(t, silentSNS{f}, f, nil, func(o *Options) { o.InitTimeout = 300 * time.Millisecond })
	start := time.Now()
	err := b.Init(context.Background())
	var opErr *OpError
	if !errors.As(err, &opErr) || opErr.Op != "sns:CreateTopic" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Init: %v, want sns:CreateTopic to have run out of time", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Init took %v with InitTimeout 300ms", took)
	}
}
