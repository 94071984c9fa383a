package testsupport

import (
	"context"
	"errors"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

type fixedCount int64

func (c fixedCount) ServerCount() int64 { return int64(c) }

// growing counts one more server at every poll, up to max.
type growing struct{ n, max atomic.Int64 }

func (c *growing) ServerCount() int64 {
	if c.n.Load() < c.max.Load() {
		return c.n.Add(1)
	}
	return c.n.Load()
}

type broken struct{}

func (broken) ServerCount() int64 { return -1 }
func (broken) Err() error         { return errors.New("peer gone") }

func TestAwaitServerCount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g := &growing{}
	g.max.Store(3)
	if err := AwaitServerCount[ServerCounter](ctx, 3, fixedCount(3), g); err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := AwaitServerCount(short, 3, fixedCount(3), fixedCount(2))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "server counts [3 2], want 3 each") {
		t.Fatalf("err %v", err)
	}

	// A counter that fails ends the wait at once, with its error.
	start := time.Now()
	if err := AwaitServerCount[ServerCounter](ctx, 3, fixedCount(3), broken{}); err == nil || err.Error() != "peer gone" {
		t.Fatalf("err %v, want the counter's", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a failed counter ended the wait after %v", d)
	}
}

func TestConnect(t *testing.T) {
	io := socket.NewServer(nil, socket.DefaultServerOptions())
	srv := httptest.NewServer(io.ServeHandler(nil))
	defer func() {
		io.Close(nil)
		srv.CloseClientConnections()
		srv.Close()
	}()
	auths := make(chan any, 1)
	_ = io.Of("/custom", nil).On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		auths <- s.Handshake().Auth
		s.Emit("hello", "world")
	})

	got := make(chan []any, 1)
	c, err := Connect(context.Background(), srv.URL, "/custom", map[string]any{"token": "t"}, func(c *client.Socket) {
		_ = c.On("hello", func(args ...any) { got <- args })
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	if !c.Connected() || c.Io() == nil {
		t.Fatalf("connected %v", c.Connected())
	}
	if a := <-auths; a.(map[string]any)["token"] != "t" {
		t.Fatalf("auth %#v", a)
	}
	// The listener of setup existed before the socket connected: it missed nothing.
	select {
	case args := <-got:
		if len(args) != 1 || args[0] != "world" {
			t.Fatalf("hello %v", args)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no hello")
	}

	// Nothing listens: every attempt is lost, or refused.
	dead := httptest.NewServer(nil)
	dead.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Connect(ctx, dead.URL, "/", nil, nil); err == nil {
		t.Fatal("connected to a closed server")
	}
}

func TestUniqueName(t *testing.T) {
	a, b := UniqueName("x"), UniqueName("x")
	if a == b || !regexp.MustCompile(`^x-[0-9a-f]{12}$`).MatchString(a) {
		t.Fatalf("%q, %q", a, b)
	}
}
