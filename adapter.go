// Package sqsadapter lets many Go Socket.IO servers (github.com/zishang520/socket.io v3) act as
// one cluster over AWS: one SNS topic fans every cluster message out to one SQS queue per
// server. It speaks the wire format of the Node package @socket.io/aws-sqs-adapter, so Go and
// Node servers can share one cluster.
//
// Wire it in with an AdapterBuilder, wait for Init before serving, and close the server (or the
// builder) to unsubscribe and delete this server's queue:
//
//	builder := sqsadapter.NewAdapterBuilder(sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg), nil)
//	opts := socket.DefaultServerOptions()
//	opts.SetAdapter(builder)
//	io := socket.NewServer(httpServer, opts)
//	if err := builder.Init(ctx); err != nil {
//		log.Fatal(err)
//	}
//	defer io.Close(nil)
package sqsadapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// The namespace adapter's outbound side: what this server's sockets do that the other servers
// must do too. Each call acts on this server's sockets through the embedded in-memory adapter
// and publishes a cluster message that makes the other servers act on theirs (inbound.go).

// namespaceAdapter is the adapter of one namespace: the in-memory adapter for this server's own
// sockets, plus the cluster messages that make the other servers do the same.
type namespaceAdapter struct {
	socket.Adapter

	b    *AdapterBuilder
	uid  string
	name string

	// lastPublish (unix ns) delays the next heartbeat: any message proves this node alive.
	lastPublish atomic.Int64

	mu       sync.Mutex
	closed   bool
	nodes    map[string]peer // uid of every other node serving this namespace => when last heard, and its kind
	requests map[string]*pendingRequest
	acks     map[string]*pendingAck

	// rec is the packet log and sessions of connection state recovery; nil when the server does
	// not enable it (recovery.go).
	rec *recovery
}

// Init announces this node to the cluster.
func (a *namespaceAdapter) Init() {
	a.publishOrReport(wire.InitialHeartbeat, nil)
}

// Close leaves the cluster for this namespace; closing the last namespace closes the builder.
func (a *namespaceAdapter) Close() {
	b := a.b
	b.mu.Lock()
	if b.adapters[a.name] == a {
		delete(b.adapters, a.name)
	}
	last := len(b.adapters) == 0 && !b.closed
	ready := b.ready
	b.mu.Unlock()
	a.close(ready)
	if last {
		ctx, cancel := context.WithTimeout(context.Background(), b.opts.ShutdownTimeout)
		defer cancel()
		_ = b.Close(ctx) // reported by shutdown
	}
}

// close ends the namespace's pending work, once, and says ADAPTER_CLOSE if the node was up.
func (a *namespaceAdapter) close(announce bool) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	requests := a.requests
	a.requests = map[string]*pendingRequest{}
	for id, p := range a.acks {
		p.timer.Stop()
		delete(a.acks, id)
	}
	a.mu.Unlock()
	for _, r := range requests {
		r.finish(ErrClosed)
	}
	if announce {
		a.handOffSessions()
		a.publishOrReport(wire.AdapterClose, nil)
	}
}

// publish sends a message to the cluster; publishResponse answers one node. Neither waits for
// AWS: the transport publishes in the background.
func (a *namespaceAdapter) publish(t wire.Type, data any) error {
	return a.send(&wire.Message{Type: t, Nsp: a.name, UID: a.uid}, data)
}

func (a *namespaceAdapter) publishResponse(requester string, t wire.Type, data any) error {
	return a.send(&wire.Message{Type: t, Nsp: a.name, UID: a.uid, RequesterUID: requester}, data)
}

func (a *namespaceAdapter) send(m *wire.Message, data any) error {
	m.ID = a.b.transport.messageID(m)
	if data != nil {
		b, err := wire.Encode(data)
		if err != nil {
			return encodingError(m.Type, m.Nsp, err)
		}
		m.Data = b
	}
	if a.rec != nil && m.RequesterUID == "" {
		if _, _, n, ok := wire.ParseSequencedID(m.ID); ok {
			a.b.seen.add(a.b.nodeID, n)
		}
	}
	a.b.guard.sign(m)
	if err := a.b.transport.publish(m); err != nil {
		return err
	}
	if m.RequesterUID == "" {
		a.lastPublish.Store(time.Now().UnixNano())
	}
	return nil
}

// encodingError says which message could not be encoded.
func encodingError(t wire.Type, nsp string, err error) error {
	return fmt.Errorf("encoding %s on namespace %q: %w", t, nsp, err)
}

// publishOrReport publishes where no caller can take the error. A heartbeat refused because the
// adapter closed meanwhile is no one's concern.
func (a *namespaceAdapter) publishOrReport(t wire.Type, data any) {
	if err := a.publish(t, data); err != nil && !(errors.Is(err, ErrClosed) && t == wire.Heartbeat) {
		a.b.errs.report(err)
	}
}

func (a *namespaceAdapter) respondOrReport(requester string, t wire.Type, data any) {
	if err := a.publishResponse(requester, t, data); err != nil {
		a.b.errs.report(err)
	}
}

func isLocal(opts *socket.BroadcastOptions) bool {
	return opts != nil && opts.Flags != nil && opts.Flags.Local
}

func (a *namespaceAdapter) timeoutOf(opts *socket.BroadcastOptions) time.Duration {
	if opts != nil && opts.Flags != nil && opts.Flags.Timeout != nil {
		return *opts.Flags.Timeout
	}
	return a.b.opts.RequestTimeout
}

// Broadcast sends a packet to the matching sockets of every node.
func (a *namespaceAdapter) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	if a.rec != nil {
		if recoverable(packet, opts) {
			a.broadcastRecoverable(packet, opts)
			return
		}
		if a.toLocalSocketOnly(opts) {
			a.Adapter.Broadcast(packet, opts)
			return
		}
	}
	if !isLocal(opts) {
		p, err := toWirePacket(packet)
		if err != nil {
			a.b.errs.report(encodingError(wire.Broadcast, a.name, err))
		} else {
			a.publishOrReport(wire.Broadcast, &wire.BroadcastData{Packet: p, Opts: toWireOptions(opts)})
		}
	}
	a.Adapter.Broadcast(packet, opts)
}

// BroadcastWithAck sends a packet to the matching sockets of every node; every node answers with
// how many clients it reached, then with each client's acknowledgement.
func (a *namespaceAdapter) BroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions,
	clientCountCallback func(uint64), ack socket.Ack) {
	if !isLocal(opts) {
		if err := a.publishBroadcastWithAck(packet, opts, clientCountCallback, ack); err != nil {
			a.b.errs.report(err)
		}
	}
	a.Adapter.BroadcastWithAck(packet, opts, clientCountCallback, ack)
}

func (a *namespaceAdapter) publishBroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions,
	clientCountCallback func(uint64), ack socket.Ack) error {
	p, err := toWirePacket(packet)
	if err != nil {
		return encodingError(wire.Broadcast, a.name, err)
	}
	id := randomHex(8)
	pa := &pendingAck{
		clientCount: clientCountCallback,
		ack:         ack,
		single:      opts != nil && opts.Flags != nil && opts.Flags.ExpectSingleResponse,
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	// Nothing says when every client has answered, so responses are routed until the timeout.
	pa.timer = time.AfterFunc(a.timeoutOf(opts), func() { a.forgetAck(id) })
	a.acks[id] = pa
	a.mu.Unlock()
	if err := a.publish(wire.Broadcast, &wire.BroadcastData{Packet: p, RequestID: id, Opts: toWireOptions(opts)}); err != nil {
		a.forgetAck(id)
		return err
	}
	return nil
}

// AddSockets makes the matching sockets of every node join rooms.
func (a *namespaceAdapter) AddSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	if !isLocal(opts) {
		a.publishOrReport(wire.SocketsJoin, &wire.SocketsJoinLeaveData{Opts: toWireOptions(opts), Rooms: roomsToStrings(rooms)})
	}
	a.Adapter.AddSockets(opts, rooms)
}

// DelSockets makes the matching sockets of every node leave rooms.
func (a *namespaceAdapter) DelSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	if !isLocal(opts) {
		a.publishOrReport(wire.SocketsLeave, &wire.SocketsJoinLeaveData{Opts: toWireOptions(opts), Rooms: roomsToStrings(rooms)})
	}
	a.Adapter.DelSockets(opts, rooms)
}

// DisconnectSockets disconnects the matching sockets of every node.
func (a *namespaceAdapter) DisconnectSockets(opts *socket.BroadcastOptions, closeConn bool) {
	if !isLocal(opts) {
		a.publishOrReport(wire.DisconnectSockets, &wire.DisconnectSocketsData{Opts: toWireOptions(opts), Close: closeConn})
	}
	a.Adapter.DisconnectSockets(opts, closeConn)
}

// localSockets returns this node's sockets matching opts.
func (a *namespaceAdapter) localSockets(opts *socket.BroadcastOptions) []socket.SocketDetails {
	var out []socket.SocketDetails
	a.Adapter.FetchSockets(opts)(func(s []socket.SocketDetails, _ error) { out = s })
	return out
}

// FetchSockets returns the matching sockets of every node: this node's, then each other node's
// answer. It fails if a node does not answer within the timeout flag (default
// Options.RequestTimeout); a node that leaves the cluster meanwhile is not waited for.
func (a *namespaceAdapter) FetchSockets(opts *socket.BroadcastOptions) func(func([]socket.SocketDetails, error)) {
	return func(callback func([]socket.SocketDetails, error)) {
		local := a.localSockets(opts)
		if isLocal(opts) {
			callback(local, nil)
			return
		}
		found := make([]any, len(local))
		for i, s := range local {
			found[i] = s
		}
		id := a.startRequest(a.timeoutOf(opts), found, func(responses []any, err error) {
			if err != nil {
				callback(nil, err)
				return
			}
			sockets := make([]socket.SocketDetails, len(responses))
			for i, r := range responses {
				sockets[i] = r.(socket.SocketDetails)
			}
			callback(sockets, nil)
		})
		if id == "" {
			callback(local, nil)
			return
		}
		if err := a.publish(wire.FetchSockets, &wire.FetchSocketsData{Opts: toWireOptions(opts), RequestID: id}); err != nil {
			a.cancelRequest(id, err)
		}
	}
}

// ServerSideEmit sends an event to the other nodes' namespaces. With an acknowledgement
// callback last, the callback receives one value per node (the first argument that node
// acknowledged with), or the values so far and an error naming how many are missing after
// Options.RequestTimeout.
func (a *namespaceAdapter) ServerSideEmit(packet []any) error {
	if len(packet) == 0 {
		return errors.New("sqsadapter: serverSideEmit needs an event name")
	}
	ack, withAck := packet[len(packet)-1].(socket.Ack)
	if !withAck {
		return a.publish(wire.ServerSideEmit, &wire.ServerSideEmitData{Packet: wire.Values(packet)})
	}
	args := wire.Values(packet[:len(packet)-1])
	id := a.startRequest(a.b.opts.RequestTimeout, []any{}, ack)
	if id == "" {
		ack([]any{}, nil)
		return nil
	}
	if err := a.publish(wire.ServerSideEmit, &wire.ServerSideEmitData{RequestID: id, Packet: args}); err != nil {
		a.cancelRequest(id, err)
		return err
	}
	return nil
}
