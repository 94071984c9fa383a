package testsupport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zishang520/socket.io/clients/engine/v3/transports"
	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// The settings of Connect: how many connects it tries, and how long each of an attempt's two
// steps (the connection opens, then the socket connects) may take. Both steps take milliseconds;
// two seconds leave room for a machine loaded by the race detector and parallel tests, so that a
// connect that is only slow is not given up and tried again, at the price of a second more for
// a connect that is lost.
const (
	ConnectAttempts = 5
	ConnectTimeout  = 2 * time.Second
)

// Connect connects a Go Socket.IO client to namespace nsp of the server at url: websocket
// transport, a connection of its own, no reconnection. auth, when not nil, is the handshake's
// auth. setup, when not nil, is called on the socket before it connects (to add listeners that
// must not miss anything). The socket's manager is sock.Io(); Disconnect closes both.
//
// It works around races of the Go client v3.0.1 with the server v3.0.2, adapter or not:
//   - Socket.Connect sends CONNECT from its "open" listener and again when it then finds the
//     manager open, so a connection that opens in between carries two CONNECTs and the server
//     closes it ("transport close"), at once or just after the client saw "connect". So the
//     manager's connection is opened first, and the socket connects over an open connection.
//   - Some connects never complete, silently (a few in a hundred under -race): Manager.Open
//     subscribes to the engine's "open" after starting it and can miss it, and the server can
//     read the CONNECT packet before its Client listens for it. So a step that takes longer than
//     ConnectTimeout is abandoned and the connect tried again, ConnectAttempts times at the most.
func Connect(ctx context.Context, url, nsp string, auth map[string]any, setup func(*client.Socket)) (*client.Socket, error) {
	return ConnectWithOptions(ctx, url, nsp, auth, setup, nil)
}

// ConnectWithOptions is Connect with configure, when not nil, called on the client's options
// before it connects: extra request headers, query parameters.
func ConnectWithOptions(ctx context.Context, url, nsp string, auth map[string]any, setup func(*client.Socket),
	configure func(*client.Options)) (*client.Socket, error) {
	for range ConnectAttempts {
		sock, err := connectOnce(ctx, url, nsp, auth, setup, configure)
		if !errors.Is(err, errLost) {
			return sock, err
		}
	}
	return nil, fmt.Errorf("client did not connect to %s%s in %d attempts", url, nsp, ConnectAttempts)
}

// errLost is a connect attempt that did not complete in time.
var errLost = errors.New("connect attempt lost")

// connectOnce is one attempt of Connect: the connected socket, errLost, or the error of ctx.
func connectOnce(ctx context.Context, url, nsp string, auth map[string]any, setup func(*client.Socket),
	configure func(*client.Options)) (*client.Socket, error) {
	opts := client.DefaultOptions()
	opts.SetTransports(types.NewSet(transports.WebSocket))
	opts.SetReconnection(false)
	opts.SetForceNew(true)
	opts.SetAutoConnect(false) // else the socket may connect before its listeners exist
	if auth != nil {
		opts.SetAuth(auth)
	}
	if configure != nil {
		configure(opts)
	}
	manager := client.NewManager(url, opts)
	opened := make(chan error, 1)
	manager.Open(func(err error) { opened <- err })
	select {
	case err := <-opened:
		if err != nil {
			return nil, errLost
		}
	case <-time.After(ConnectTimeout):
		manager.Socket(nsp, opts).Disconnect() // closes the manager, its engine and timer
		return nil, errLost
	case <-ctx.Done():
		manager.Socket(nsp, opts).Disconnect()
		return nil, ctx.Err()
	}
	sock := manager.Socket(nsp, opts)
	connected := make(chan struct{})
	var once sync.Once
	_ = sock.On("connect", func(...any) { once.Do(func() { close(connected) }) })
	if setup != nil {
		setup(sock)
	}
	sock.Connect()
	select {
	case <-connected:
		return sock, nil
	case <-time.After(ConnectTimeout):
		sock.Disconnect()
		return nil, errLost
	case <-ctx.Done():
		sock.Disconnect()
		return nil, ctx.Err()
	}
}
