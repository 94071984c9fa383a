package sqsadapter

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// The Socket.IO server's side of connection state recovery: it persists a session when a socket
// drops, restores it when the client comes back with its private id and last offset, and joins
// the restored socket's rooms. See recovery.go for the log these work on.

// handoffDataLimit bounds the data of one SESSION_HANDOFF message, well under the SNS limit
// (the emulator counts binary attributes larger than SNS does).
const handoffDataLimit = 150 * 1024

// broadcastRecoverable publishes a logged broadcast to the cluster (unless it is for this
// server's sockets only), logs it with its offset and sends it to this server's sockets.
func (a *namespaceAdapter) broadcastRecoverable(packet *parser.Packet, opts *socket.BroadcastOptions) {
	r := a.rec
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	e := &logEntry{kind: entryLocal, at: now}
	if !isLocal(opts) && !a.toLocalSocketOnly(opts) {
		if id, err := a.publishBroadcast(packet, opts); err != nil {
			a.b.errs.report(err)
		} else {
			e.offset, e.kind = id, entrySequenced
			e.sender, _, e.seq, _ = wire.ParseSequencedID(id)
		}
	}
	if e.offset == "" {
		e.offset = r.localOffset()
	}
	r.logAndSend(e, packet, opts, now)
}

// toLocalSocketOnly reports whether opts target one socket of this server and nothing else: the
// Go server sends every socket.Emit through the adapter when recovery is on, and no other server
// has that socket, so publishing it would only add to the bill.
func (a *namespaceAdapter) toLocalSocketOnly(opts *socket.BroadcastOptions) bool {
	if opts == nil || opts.Rooms == nil || opts.Rooms.Len() != 1 || (opts.Except != nil && opts.Except.Len() > 0) {
		return false
	}
	_, ok := a.Nsp().Sockets().Load(socket.SocketId(opts.Rooms.Keys()[0]))
	return ok
}

// publishBroadcast publishes a broadcast and returns its msgId.
func (a *namespaceAdapter) publishBroadcast(packet *parser.Packet, opts *socket.BroadcastOptions) (string, error) {
	p, err := toWirePacket(packet)
	if err != nil {
		return "", encodingError(wire.Broadcast, a.name, err)
	}
	m := &wire.Message{Type: wire.Broadcast, Nsp: a.name, UID: a.uid}
	if err := a.send(m, &wire.BroadcastData{Packet: p, Opts: toWireOptions(opts)}); err != nil {
		return "", err
	}
	return m.ID, nil
}

// broadcastReceived logs a broadcast of another server, offset by its msgId, and sends it to this
// server's sockets.
func (a *namespaceAdapter) broadcastReceived(m *wire.Message, packet *parser.Packet, opts *socket.BroadcastOptions) {
	r := a.rec
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	kind, sender, n := classify(m)
	e := &logEntry{kind: kind, sender: sender, seq: n, at: now, offset: m.ID}
	if kind == entryNode {
		e.offset = r.localOffset()
	}
	// Recorded as acted on with the log's lock held, so that a session persisted meanwhile has
	// either both the packet and its frontier mark, or neither.
	a.b.seen.addMessage(m, now)
	r.logAndSend(e, packet, opts, now)
}

// PersistSession keeps the session of a socket that dropped, for RestoreSession. The socket
// leaves its rooms here, under the log's lock, so that the offset of the last packet it was sent
// and the frontier say exactly what it got.
func (a *namespaceAdapter) PersistSession(s *socket.SessionToPersist) {
	r := a.rec
	if r == nil || s == nil {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	a.Adapter.DelAll(s.Sid)
	rooms := s.Rooms
	if rooms == nil {
		rooms = types.NewSet[socket.Room]()
	}
	ls := &localSession{s: s, at: now, position: r.end(), last: r.lastMatching(rooms), frontier: a.b.seen.snapshot(now)}
	if g := r.guards[s.Sid]; g != nil {
		ls.origin = g.origin
	}
	r.sessions[s.Pid] = ls
}

// RestoreSession returns the session of pid and the packets its client missed since offset, or
// nil when it cannot be restored here (unknown or expired, restored already, or the packets it
// missed cannot be told): the client then connects afresh. A session is restored once.
func (a *namespaceAdapter) RestoreSession(pid socket.PrivateSessionId, offset string) (*socket.Session, error) {
	r := a.rec
	if r == nil {
		return nil, nil
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweep(now)
	if ls := r.sessions[pid]; ls != nil {
		delete(r.sessions, pid)
		if ls.origin != nil {
			return r.restoreAfterHandoff(ls, offset, now), nil
		}
		from, ok := r.byOffset[offset]
		switch {
		case ok:
			from++
		case offset == ls.last:
			from = ls.position
		default:
			r.count(false)
			return nil, nil // the offset is unknown or was evicted
		}
		if from < r.base {
			r.count(false)
			return nil, nil
		}
		return r.restored(ls.s, r.packetsAfter(from, ls.s.Rooms, nil), nil, now), nil
	}
	h := r.awaitHandoff(pid, now.Add(r.a.b.opts.handoffWait()))
	if h == nil {
		r.count(false)
		return nil, nil
	}
	delete(r.handedOff, pid)
	if offset != h.s.LastOffset {
		r.count(false)
		return nil, nil // the client missed packets its server had sent it: they cannot be told here
	}
	missed, ok := r.unseenSince(h)
	if !ok {
		r.count(false)
		return nil, nil
	}
	// A claim lost because this adapter is closing is harmless: the copies expire.
	if err := a.publish(wire.SessionClaim, &wire.SessionClaimData{Pids: []string{string(pid)}}); err != nil &&
		!errors.Is(err, ErrClosed) {
		a.b.errs.report(err)
	}
	s := &socket.SessionToPersist{
		Sid:   socket.SocketId(h.s.Sid),
		Pid:   pid,
		Rooms: types.NewSet(stringsToRooms(h.s.Rooms)...),
		Data:  h.s.Data,
	}
	r.guards[s.Sid] = &guardedSocket{origin: h, until: now.Add(recoveryLookback)}
	return r.restored(s, missed, h.frontier, now), nil
}

// awaitHandoff returns the handed-off session of pid, waiting until deadline for it: a client
// whose server just closed can reconnect here before the hand-off does (it waits in this
// server's queue, or behind an earlier message of its sender held to keep their order). r.mu is
// held, and released while waiting.
func (r *recovery) awaitHandoff(pid socket.PrivateSessionId, deadline time.Time) *handedOffSession {
	for {
		if h := r.handedOff[pid]; h != nil {
			return h
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil
		}
		if r.handoffArrived == nil {
			r.handoffArrived = make(chan struct{})
		}
		arrived := r.handoffArrived
		r.mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-arrived:
		case <-timer.C:
		}
		timer.Stop()
		r.mu.Lock()
	}
}

// restoreAfterHandoff restores a session that dropped again soon after it was restored here from
// another server's hand-off. Its client got packets from both servers: those the other server
// had (its frontier), then from this server those outside it, in this server's order. With an
// offset still the other server's, it missed everything the hand-off gave; with one of this
// server's, the packets after it here, but for those the other server had sent it. r.mu is held.
func (r *recovery) restoreAfterHandoff(ls *localSession, offset string, now time.Time) *socket.Session {
	h := ls.origin
	var missed []any
	if offset == h.s.LastOffset {
		var ok bool
		if missed, ok = r.unseenSince(h); !ok {
			r.count(false)
			return nil
		}
	} else {
		from, ok := r.byOffset[offset]
		if !ok {
			r.count(false)
			return nil
		}
		missed = r.packetsAfter(from+1, ls.s.Rooms, h.frontier)
	}
	r.guards[ls.s.Sid] = &guardedSocket{origin: h, until: now.Add(recoveryLookback)}
	return r.restored(ls.s, missed, h.frontier, now)
}

// restored makes the session the server gets back, and holds broadcasts back from its socket
// until the socket is registered (AddAll). r.mu is held.
func (r *recovery) restored(s *socket.SessionToPersist, missed []any, seen *frontierSet, now time.Time) *socket.Session {
	r.count(true)
	rooms := s.Rooms
	if rooms == nil {
		rooms = types.NewSet[socket.Room]()
	}
	r.restoring[s.Sid] = &restoringSocket{rooms: rooms, position: r.end(), seen: seen, expires: now.Add(r.maxAge)}
	if missed == nil {
		missed = []any{}
	}
	return &socket.Session{SessionToPersist: s, MissedPackets: missed}
}

// AddAll joins a socket to rooms. When a restored socket joins its own room it is registered
// with its namespace: it is sent the packets logged since its restore, and receives broadcasts
// from then on.
func (a *namespaceAdapter) AddAll(id socket.SocketId, rooms *types.Set[socket.Room]) {
	a.Adapter.AddAll(id, rooms)
	r := a.rec
	if r == nil || rooms == nil || !rooms.Has(socket.Room(id)) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.restoring[id]
	if rs == nil {
		return
	}
	if _, ok := a.Nsp().Sockets().Load(id); !ok {
		return // joining its rooms while the server rebuilds it, before it is registered
	}
	delete(r.restoring, id)
	only := &socket.BroadcastOptions{Rooms: types.NewSet(socket.Room(id)), Except: types.NewSet[socket.Room](),
		Flags: &socket.BroadcastFlags{}}
	for _, data := range r.packetsAfter(rs.position, rs.rooms, rs.seen) {
		a.Adapter.Broadcast(&parser.Packet{Type: parser.EVENT, Nsp: a.name, Data: data}, only)
	}
}

// handOffSessions publishes the sessions persisted here, for the other servers to restore when
// their clients reconnect there. Run as the namespace closes, after the server disconnected its
// sockets.
func (a *namespaceAdapter) handOffSessions() {
	r := a.rec
	if r == nil {
		return
	}
	now := time.Now()
	r.mu.Lock()
	var data wire.SessionHandoffData
	frontiers := map[*wire.Frontier]int{}
	for _, ls := range r.sessions {
		if now.Sub(ls.at) > r.maxAge {
			continue
		}
		i, ok := frontiers[ls.frontier]
		if !ok {
			i = len(data.Frontiers)
			frontiers[ls.frontier] = i
			data.Frontiers = append(data.Frontiers, *ls.frontier)
		}
		var rooms []string
		if ls.s.Rooms != nil {
			rooms = roomsToStrings(ls.s.Rooms.Keys())
		}
		data.Sessions = append(data.Sessions, wire.HandedOffSession{Sid: string(ls.s.Sid), Pid: string(ls.s.Pid),
			Rooms: rooms, Data: wire.Value(ls.s.Data), DisconnectedAt: ls.at.UnixMilli(), LastOffset: ls.last,
			Frontier: i})
	}
	r.sessions = map[socket.PrivateSessionId]*localSession{}
	r.mu.Unlock()
	if len(data.Sessions) == 0 {
		return
	}
	atomic.AddUint64(&a.b.stats.s.SessionsHandedOff, uint64(len(data.Sessions)))
	a.publishHandoff(data)
}

// publishHandoff publishes the sessions in as many messages as their size needs.
func (a *namespaceAdapter) publishHandoff(data wire.SessionHandoffData) {
	b, err := wire.Encode(&data)
	if err != nil {
		a.b.errs.report(encodingError(wire.SessionHandoff, a.name, err))
		return
	}
	if len(b) > handoffDataLimit && len(data.Sessions) > 1 {
		half := len(data.Sessions) / 2
		a.publishHandoff(wire.SessionHandoffData{Frontiers: data.Frontiers, Sessions: data.Sessions[:half]})
		a.publishHandoff(wire.SessionHandoffData{Frontiers: data.Frontiers, Sessions: data.Sessions[half:]})
		return
	}
	a.publishOrReport(wire.SessionHandoff, &data)
}

// receiveHandoff keeps the sessions a closing server handed off.
func (a *namespaceAdapter) receiveHandoff(d *wire.SessionHandoffData) error {
	r := a.rec
	if r == nil {
		return nil
	}
	sets := make([]*frontierSet, len(d.Frontiers))
	for i := range d.Frontiers {
		sets[i] = newFrontierSet(&d.Frontiers[i])
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range d.Sessions {
		if s.Frontier < 0 || s.Frontier >= len(sets) {
			return errBadFrontier
		}
		if s.Pid == "" || now.Sub(time.UnixMilli(s.DisconnectedAt)) > r.maxAge {
			continue
		}
		r.handedOff[socket.PrivateSessionId(s.Pid)] = &handedOffSession{s: s, frontier: sets[s.Frontier],
			complete: len(d.Frontiers[s.Frontier].IDs) < maxFrontierIDs}
	}
	if r.handoffArrived != nil {
		close(r.handoffArrived)
		r.handoffArrived = nil
	}
	return nil
}

// forgetClaimed drops the handed-off sessions another server restored.
func (a *namespaceAdapter) forgetClaimed(d *wire.SessionClaimData) {
	r := a.rec
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pid := range d.Pids {
		delete(r.handedOff, socket.PrivateSessionId(pid))
	}
}
