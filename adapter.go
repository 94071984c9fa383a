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
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// AdapterBuilder builds the adapter of every namespace of one Socket.IO server, and owns what
// they share: this server's SQS queue and its subscription, the goroutine that polls it, the
// goroutine that publishes to SNS and the one that sends heartbeats. Pass it to
// ServerOptions.SetAdapter, then call Init.
type AdapterBuilder struct {
	sns    SNSAPI
	sqs    SQSAPI
	opts   Options
	log    *slog.Logger
	nodeID string // starts the uid of every namespace adapter of this builder
	pub    *publisher
	stats  counters

	initMu        sync.Mutex // serialises Init
	reprovisionMu sync.Mutex // serialises reprovision

	mu       sync.Mutex
	adapters map[string]*namespaceAdapter // by namespace name
	res      *resources                   // set once Init succeeded
	initAt   time.Time                    // when Init succeeded
	closed   bool
	stopLoop context.CancelFunc // stops polling and heartbeats
	loops    sync.WaitGroup     // heartbeats, subscription check, orphan clean-up, deletes
	pollDone chan struct{}

	// dispatching is true while the poll goroutine runs handlers, so that a Close called from a
	// handler (a listener closing the server) does not wait for the goroutine it runs on.
	dispatching atomic.Bool
	recent      *recentIDs   // touched by the poll goroutine only
	deletes     chan handled // from the poll goroutine to the delete goroutine

	closing   atomic.Bool
	closeDone chan struct{}
	closeErr  error
}

var _ interface {
	New(socket.Namespace) socket.Adapter
} = (*AdapterBuilder)(nil)

// NewAdapterBuilder returns a builder that uses the given clients; opts may be nil for the
// defaults. It makes no AWS call: Init provisions.
func NewAdapterBuilder(snsClient SNSAPI, sqsClient SQSAPI, opts *Options) *AdapterBuilder {
	o := opts.withDefaults()
	b := &AdapterBuilder{
		sns:       snsClient,
		sqs:       sqsClient,
		opts:      o,
		log:       o.Logger,
		nodeID:    randomHex(4),
		adapters:  map[string]*namespaceAdapter{},
		recent:    newRecentIDs(10_000),
		deletes:   make(chan handled, 100),
		closeDone: make(chan struct{}),
	}
	b.pub = newPublisher(b, max(o.PublishBufferSize, 1)) // a negative size fails Init
	return b
}

// Init validates the options, creates (or finds) the topic, creates this server's queue with a
// policy that lets only the topic send to it, subscribes the queue with raw delivery, and starts
// polling. It returns once the queue is subscribed, or with the error of the step that failed,
// within ctx's deadline; whatever it created before a failure is deleted again, and Init may be
// called again. Messages published before Init (the server publishes one per namespace as it
// starts) wait and leave once it succeeds. Init after success returns nil at once.
func (b *AdapterBuilder) Init(ctx context.Context) error {
	b.initMu.Lock()
	defer b.initMu.Unlock()
	b.mu.Lock()
	closed, ready := b.closed, b.res != nil
	b.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case ready:
		return nil
	}
	if err := b.opts.validate(); err != nil {
		return err
	}
	res, err := provision(ctx, b.sns, b.sqs, &b.opts, b.nodeID)
	if err != nil {
		return err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed { // Close ran while provisioning
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.ShutdownTimeout)
		defer cancel()
		return errors.Join(ErrClosed, res.teardown(cleanupCtx, b.sns, b.sqs))
	}
	b.res = res
	b.initAt = time.Now()
	loopCtx, cancel := context.WithCancel(context.Background())
	b.stopLoop = cancel
	b.pollDone = make(chan struct{})
	go func() {
		defer close(b.pollDone)
		b.poll(loopCtx)
	}()
	for _, loop := range []func(context.Context){b.heartbeatLoop, b.watchSubscription, b.cleanupLoop, b.deleteLoop} {
		b.loops.Add(1)
		go func() {
			defer b.loops.Done()
			loop(loopCtx)
		}()
	}
	b.pub.start()
	b.log.Info("sqsadapter: subscribed", "topic", res.topicArn, "queue", res.queueURL)
	return nil
}

// Close publishes ADAPTER_CLOSE for every namespace, stops polling (cancelling the long poll in
// flight), sends what is still queued for SNS, unsubscribes and deletes this server's queue, and
// waits for the adapter's goroutines to end, within ctx. Closing the Socket.IO server does the
// same with Options.ShutdownTimeout. Close is idempotent: later calls wait for the first and
// return its result.
func (b *AdapterBuilder) Close(ctx context.Context) error {
	if b.closing.CompareAndSwap(false, true) {
		b.closeErr = b.shutdown(ctx)
		close(b.closeDone)
	}
	select {
	case <-b.closeDone:
		return b.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *AdapterBuilder) shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	adapters := b.adapters
	b.adapters = map[string]*namespaceAdapter{}
	res, stopLoop, pollDone := b.res, b.stopLoop, b.pollDone
	b.mu.Unlock()

	for _, a := range adapters {
		a.close(res != nil)
	}
	if stopLoop != nil {
		stopLoop()
	}
	// Flushing may take at most half of what is left, so that deleting the queue (which stops
	// its bill) still gets its turn when SNS is slow or down.
	flushCtx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		flushCtx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)/2))
		defer cancel()
	}
	errs := []error{b.pub.close(flushCtx)}
	if res != nil {
		errs = append(errs, res.teardown(ctx, b.sns, b.sqs))
	}
	b.loops.Wait()
	if pollDone != nil && !b.dispatching.Load() {
		select {
		case <-pollDone:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("sqsadapter: poll loop still running: %w", ctx.Err()))
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		b.reportError(err)
	} else if res != nil {
		b.log.Info("sqsadapter: closed", "queue", res.queueURL)
	}
	return err
}

// Stats counts what the adapter did since it was built.
type Stats struct {
	Received          uint64 // SQS messages received
	Malformed         uint64 // received messages dropped as malformed (logged at warn level)
	Duplicates        uint64 // redeliveries of a message already handled, dropped
	Published         uint64 // cluster messages SNS accepted
	PublishFailures   uint64 // cluster messages SNS did not accept (reported)
	PublishDropped    uint64 // cluster messages dropped because the publish buffer was full (reported)
	HandlerPanics     uint64 // messages whose handling panicked (recovered and reported)
	UnknownNamespaces uint64 // messages for a namespace this server does not have
	NotForUs          uint64 // this node's own messages and responses to other nodes: received only to be dropped
	Reprovisions      uint64 // times the queue and subscription were made again after AWS lost them
}

type counters struct {
	received, malformed, duplicates, published, publishFailures, publishDropped, handlerPanics,
	unknownNamespaces, reprovisions, notForUs atomic.Uint64
}

// Stats returns the counters.
func (b *AdapterBuilder) Stats() Stats {
	c := &b.stats
	return Stats{
		Received: c.received.Load(), Malformed: c.malformed.Load(), Duplicates: c.duplicates.Load(),
		Published: c.published.Load(), PublishFailures: c.publishFailures.Load(), PublishDropped: c.publishDropped.Load(),
		HandlerPanics: c.handlerPanics.Load(), UnknownNamespaces: c.unknownNamespaces.Load(),
		Reprovisions: c.reprovisions.Load(), NotForUs: c.notForUs.Load(),
	}
}

// reportError logs err and hands it to Options.OnError.
func (b *AdapterBuilder) reportError(err error) {
	msg := err.Error()
	if !strings.HasPrefix(msg, "sqsadapter: ") {
		msg = "sqsadapter: " + msg
	}
	b.log.Error(msg)
	if b.opts.OnError != nil {
		b.opts.OnError(err)
	}
}

func (b *AdapterBuilder) namespaceAdapters() []*namespaceAdapter {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*namespaceAdapter, 0, len(b.adapters))
	for _, a := range b.adapters {
		out = append(out, a)
	}
	return out
}

// handleSQSMessage checks, de-duplicates and dispatches one received message. Bad input is
// logged, counted and dropped (the poll loop deletes it); nothing it holds can stop the loop.
func (b *AdapterBuilder) handleSQSMessage(raw *sqstypes.Message) {
	b.stats.received.Add(1)
	msgID := deref(raw.MessageId)
	m, err := wire.FromSQS(raw.Body, raw.MessageAttributes)
	if err != nil {
		b.stats.malformed.Add(1)
		b.log.Warn("sqsadapter: dropped malformed message", "messageId", msgID, "error", err)
		return
	}
	// A message published twice (a retried publish) has two SQS message ids but one msgId.
	if m.ID != "" {
		msgID = m.ID
	}
	if msgID != "" && b.recent.seen(msgID) {
		b.stats.duplicates.Add(1)
		b.log.Debug("sqsadapter: dropped redelivered message", "messageId", msgID, "type", m.Type)
		return
	}
	b.mu.Lock()
	a := b.adapters[m.Nsp]
	b.mu.Unlock()
	if a == nil {
		b.stats.unknownNamespaces.Add(1)
		return
	}
	b.dispatching.Store(true)
	defer b.dispatching.Store(false)
	defer func() {
		if p := recover(); p != nil {
			b.stats.handlerPanics.Add(1)
			b.reportError(fmt.Errorf("sqsadapter: handling %s from %s on namespace %q (message %s) panicked: %v\n%s",
				m.Type, m.UID, m.Nsp, msgID, p, debug.Stack()))
		}
	}()
	if err := a.onMessage(m); err != nil {
		b.stats.malformed.Add(1)
		b.log.Warn("sqsadapter: dropped malformed message", "messageId", msgID, "type", m.Type, "from", m.UID,
			"nsp", m.Nsp, "error", err)
	}
}

// New builds the adapter of one namespace; the Socket.IO server calls it for "/" as it starts
// and for every namespace created later.
func (b *AdapterBuilder) New(nsp socket.Namespace) socket.Adapter {
	a := &namespaceAdapter{
		Adapter:  socket.MakeAdapter(),
		b:        b,
		uid:      b.nodeID + randomHex(4),
		name:     nsp.Name(),
		nodes:    map[string]time.Time{},
		requests: map[string]*pendingRequest{},
		acks:     map[string]*pendingAck{},
	}
	a.Prototype(a)
	a.Construct(nsp)
	a.lastPublish.Store(time.Now().UnixNano())
	b.mu.Lock()
	if b.closed {
		a.closed = true
	} else {
		b.adapters[a.name] = a
	}
	b.mu.Unlock()
	return a
}

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
	nodes    map[string]time.Time // uid of every other node serving this namespace => last heard
	requests map[string]*pendingRequest
	acks     map[string]*pendingAck
}

// pendingAck routes the responses to a broadcast with acknowledgements until its timeout.
type pendingAck struct {
	clientCount func(uint64)
	ack         socket.Ack
	single      bool // the emit expects one response (a remote socket's emitWithAck)
	timer       *time.Timer
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
	ready := b.res != nil
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
		a.publishOrReport(wire.AdapterClose, nil)
	}
}

// publish sends a message to the cluster; publishResponse answers one node.
func (a *namespaceAdapter) publish(t wire.Type, data any) error {
	return a.send(&wire.Message{Type: t, Nsp: a.name, UID: a.uid}, data)
}

func (a *namespaceAdapter) publishResponse(requester string, t wire.Type, data any) error {
	return a.send(&wire.Message{Type: t, Nsp: a.name, UID: a.uid, RequesterUID: requester}, data)
}

func (a *namespaceAdapter) send(m *wire.Message, data any) error {
	m.ID = randomHex(8)
	if data != nil {
		b, err := wire.Encode(data)
		if err != nil {
			return fmt.Errorf("sqsadapter: encoding %s on namespace %q: %w", m.Type, m.Nsp, err)
		}
		m.Data = b
	}
	if err := a.b.pub.enqueue(m); err != nil {
		return err
	}
	if m.RequesterUID == "" {
		a.lastPublish.Store(time.Now().UnixNano())
	}
	return nil
}

// publishOrReport publishes where no caller can take the error.
func (a *namespaceAdapter) publishOrReport(t wire.Type, data any) {
	if err := a.publish(t, data); err != nil && !(errors.Is(err, ErrClosed) && t == wire.Heartbeat) {
		a.b.reportError(err)
	}
}

func (a *namespaceAdapter) respondOrReport(requester string, t wire.Type, data any) {
	if err := a.publishResponse(requester, t, data); err != nil {
		a.b.reportError(err)
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
	if !isLocal(opts) {
		p, err := toWirePacket(packet)
		if err == nil {
			err = a.publish(wire.Broadcast, &wire.BroadcastData{Packet: p, Opts: toWireOptions(opts)})
		}
		if err != nil {
			a.b.reportError(fmt.Errorf("broadcast on namespace %q: %w", a.name, err))
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
			a.b.reportError(fmt.Errorf("broadcast with acknowledgements on namespace %q: %w", a.name, err))
		}
	}
	a.Adapter.BroadcastWithAck(packet, opts, clientCountCallback, ack)
}

func (a *namespaceAdapter) publishBroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions,
	clientCountCallback func(uint64), ack socket.Ack) error {
	p, err := toWirePacket(packet)
	if err != nil {
		return err
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

func (a *namespaceAdapter) forgetAck(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.acks[id]; ok {
		p.timer.Stop()
		delete(a.acks, id)
	}
}

func (a *namespaceAdapter) pendingAckOf(id string) *pendingAck {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acks[id]
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

// onMessage acts on a message of another node; it returns an error for a payload of the wrong
// shape.
func (a *namespaceAdapter) onMessage(m *wire.Message) error {
	if m.UID == a.uid || (m.Type.IsResponse() && m.RequesterUID != a.uid) {
		a.b.stats.notForUs.Add(1)
		return nil // our own message, or an answer to another node
	}
	var data any
	if m.Type.HasData() {
		data = wire.NewData(m.Type)
		if err := wire.Decode(m.Data, data); err != nil {
			return err
		}
	}
	if m.Type.IsResponse() {
		a.onResponse(m, data)
		return nil
	}
	a.nodeSeen(m.UID)
	switch d := data.(type) {
	case nil:
		switch m.Type {
		case wire.InitialHeartbeat:
			a.publishOrReport(wire.Heartbeat, nil) // let the newcomer count us at once
		case wire.AdapterClose:
			a.removeNode(m.UID)
		}
	case *wire.BroadcastData:
		packet, opts := fromWirePacket(d.Packet), fromWireOptions(d.Opts)
		if d.RequestID == "" {
			a.Adapter.Broadcast(packet, opts)
			return nil
		}
		requester, id := m.UID, d.RequestID
		a.Adapter.BroadcastWithAck(packet, opts,
			func(n uint64) {
				a.respondOrReport(requester, wire.BroadcastClientCount, &wire.BroadcastClientCountData{RequestID: id, ClientCount: n})
			},
			func(args []any, _ error) {
				a.respondOrReport(requester, wire.BroadcastAck, &wire.BroadcastAckData{RequestID: id, Packet: firstArg(args)})
			})
	case *wire.SocketsJoinLeaveData:
		if m.Type == wire.SocketsJoin {
			a.Adapter.AddSockets(fromWireOptions(d.Opts), stringsToRooms(d.Rooms))
		} else {
			a.Adapter.DelSockets(fromWireOptions(d.Opts), stringsToRooms(d.Rooms))
		}
	case *wire.DisconnectSocketsData:
		a.Adapter.DisconnectSockets(fromWireOptions(d.Opts), d.Close)
	case *wire.FetchSocketsData:
		local := a.localSockets(fromWireOptions(d.Opts))
		sockets := make([]wire.Socket, len(local))
		for i, s := range local {
			sockets[i] = toWireSocket(s)
		}
		a.respondOrReport(m.UID, wire.FetchSocketsResponse, &wire.FetchSocketsResponseData{RequestID: d.RequestID, Sockets: sockets})
	case *wire.ServerSideEmitData:
		if len(d.Packet) == 0 {
			return errors.New("serverSideEmit without an event name")
		}
		if d.RequestID == "" {
			a.Nsp().OnServerSideEmit(d.Packet)
			return nil
		}
		requester, id := m.UID, d.RequestID
		var once sync.Once
		reply := socket.Ack(func(args []any, _ error) {
			once.Do(func() {
				a.respondOrReport(requester, wire.ServerSideEmitResponse,
					&wire.ServerSideEmitResponseData{RequestID: id, Packet: firstArg(args)})
			})
		})
		a.Nsp().OnServerSideEmit(append(d.Packet, reply))
	}
	return nil
}

func (a *namespaceAdapter) onResponse(m *wire.Message, data any) {
	switch d := data.(type) {
	case *wire.BroadcastClientCountData:
		if p := a.pendingAckOf(d.RequestID); p != nil {
			p.clientCount(d.ClientCount)
		}
	case *wire.BroadcastAckData:
		if p := a.pendingAckOf(d.RequestID); p != nil {
			if p.single {
				// The Go server reads a single response as the list of the client's arguments.
				p.ack([]any{[]any{d.Packet}}, nil)
			} else {
				p.ack([]any{d.Packet}, nil)
			}
		}
	case *wire.FetchSocketsResponseData:
		sockets := make([]any, len(d.Sockets))
		for i, s := range d.Sockets {
			sockets[i] = socket.SocketDetails(fromWireSocket(s))
		}
		a.addResponse(d.RequestID, m.UID, sockets...)
	case *wire.ServerSideEmitResponseData:
		a.addResponse(d.RequestID, m.UID, d.Packet)
	}
}
