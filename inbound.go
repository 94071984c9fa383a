package sqsadapter

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// The namespace adapter's inbound side: acting on what the other servers published.

// onMessage acts on a message of another node; it returns an error for a payload of the wrong
// shape.
func (a *namespaceAdapter) onMessage(m *wire.Message) error {
	if m.UID == a.uid || (m.Type.IsResponse() && m.RequesterUID != a.uid) {
		atomic.AddUint64(&a.b.stats.s.NotForUs, 1)
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
	a.nodeSeen(m)
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
		if d.RequestID == "" && a.rec != nil && recoverable(packet, opts) {
			a.broadcastReceived(m, packet, opts)
			return nil
		}
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
			sockets[i] = toWireSocket(s, a.b.handshakes)
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
	case *wire.SessionHandoffData:
		return a.receiveHandoff(d)
	case *wire.SessionClaimData:
		a.forgetClaimed(d)
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
