package sqsadapter

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Connection state recovery (Socket.IO 4.6), across the cluster. With the server's
// ConnectionStateRecovery option set, every namespace adapter keeps a log of the broadcasts it
// sent to its sockets, each with an offset appended to its arguments (the client keeps the last
// one it got), and the sessions of the clients that dropped. A client that reconnects to the same
// server gets the log's packets after its offset. The offset of a broadcast is its msgId, the same
// on every server, and a server that closes gracefully hands its sessions off to the others with
// what it had acted on of each sender's stream (frontier.go), so that a client that reconnects to
// another server gets exactly the broadcasts its own server had not sent it.

// recoveryLookback is how far before a handed-off session's disconnection the restoring server
// looks for broadcasts the closing server had not acted on: the same broadcast reaches two
// servers far less apart than this, even when SQS hands it back after its visibility timeout.
const recoveryLookback = 30 * time.Second

// DefaultMaxDisconnectionDuration is what a zero or unset
// ConnectionStateRecovery.MaxDisconnectionDuration means with this adapter: the Go server applies
// its own default (2 minutes, as Node's) only when no adapter is set.
const DefaultMaxDisconnectionDuration = 2 * time.Minute

// unresolvedOffset stands for "the last packet of this session is not known": no client offset
// equals it, so the session can only be restored on the server that logged its packets.
const unresolvedOffset = "\x00"

type entryKind uint8

const (
	entryLocal     entryKind = iota // logged here only: a private emit, a local broadcast, a publish that failed
	entryNode                       // from a Node server: no id that means the same on other servers
	entryGlobalID                   // from an emitter: an id the same everywhere, but no sequence number
	entrySequenced                  // from a Go server: sender and sequence number (msgId)
)

// classify says what a received message's msgId tells of it.
func classify(m *wire.Message) (kind entryKind, sender string, n uint64) {
	if m.ID == "" {
		return entryNode, "", 0
	}
	if m.Raw != nil { // received: the id may be the SQS MessageId, which differs per queue
		if _, ok := m.Raw.MessageAttributes[wire.AttrMsgID]; !ok {
			return entryNode, "", 0
		}
	}
	if sender, stream, n, ok := wire.ParseSequencedID(m.ID); ok {
		if stream != wire.AllNodes {
			return entryNode, "", 0
		}
		return entrySequenced, sender, n
	}
	return entryGlobalID, "", 0
}

// logEntry is one logged broadcast: its packet's arguments, offset last, and the rooms it went
// to and those it left out (nil: none). Rooms are kept as slices, not the options' sets: a set
// with its lock costs more than the whole of a small packet.
type logEntry struct {
	offset        string
	kind          entryKind
	sender        string
	seq           uint64
	at            time.Time
	data          []any
	rooms, except []socket.Room
}

// recovery is a namespace adapter's packet log and sessions; nil when recovery is off.
type recovery struct {
	a          *namespaceAdapter
	maxAge     time.Duration
	maxPackets int

	mu         sync.Mutex
	entries    []*logEntry // entries[i] has the absolute index base+i
	base       uint64
	byOffset   map[string]uint64
	lastByRoom map[socket.Room]uint64 // absolute index + 1 of the last entry to the room
	lastToAll  uint64                 // absolute index + 1 of the last entry to every socket
	localSeq   uint64
	evictedAt  time.Time      // when the newest entry evicted for room (not age) was logged
	startedAt  time.Time      // when the log started
	start      *wire.Frontier // what the server had acted on when the log started
	lastSweep  time.Time

	sessions  map[socket.PrivateSessionId]*localSession
	handedOff map[socket.PrivateSessionId]*handedOffSession
	// handoffArrived is closed when a hand-off arrives, for restores waiting for one; nil while
	// none waits.
	handoffArrived chan struct{}
	restoring      map[socket.SocketId]*restoringSocket
	guards         map[socket.SocketId]*guardedSocket
}

// localSession is a session persisted here: where the log stood, the offset of the last packet
// the socket had been sent, and what the server had acted on. origin is set when the socket was
// restored here from another server's hand-off less than recoveryLookback before: its client got
// part of its packets from that server, in that server's order.
type localSession struct {
	s        *socket.SessionToPersist
	at       time.Time
	position uint64
	last     string
	frontier *wire.Frontier
	origin   *handedOffSession
}

// handedOffSession is a session another server handed off as it closed.
type handedOffSession struct {
	s        wire.HandedOffSession
	frontier *frontierSet
	complete bool // the frontier lists every unnumbered id the closing server acted on
}

// restoringSocket is a restored socket not yet registered with its namespace: broadcasts skip it
// until it is, and then it is sent those it missed meanwhile, in order.
type restoringSocket struct {
	rooms    *types.Set[socket.Room]
	position uint64
	seen     *frontierSet // handed-off sessions: what the closing server had sent
	expires  time.Time
}

// guardedSocket is a socket restored from a handed-off session: broadcasts the closing server had
// sent it already, still on their way to this server, must not reach it a second time.
type guardedSocket struct {
	origin *handedOffSession
	until  time.Time
}

func newRecovery(a *namespaceAdapter, maxAge time.Duration, maxPackets int, now time.Time) *recovery {
	return &recovery{
		a:          a,
		maxAge:     maxAge,
		maxPackets: maxPackets,
		byOffset:   map[string]uint64{},
		lastByRoom: map[socket.Room]uint64{},
		startedAt:  now,
		start:      a.b.seen.snapshot(now),
		sessions:   map[socket.PrivateSessionId]*localSession{},
		handedOff:  map[socket.PrivateSessionId]*handedOffSession{},
		restoring:  map[socket.SocketId]*restoringSocket{},
		guards:     map[socket.SocketId]*guardedSocket{},
	}
}

// recoverable reports whether a broadcast is logged: events without acknowledgement that are not
// volatile, as the in-memory adapter decides.
func recoverable(packet *parser.Packet, opts *socket.BroadcastOptions) bool {
	if packet.Type != parser.EVENT && packet.Type != parser.BINARY_EVENT || packet.Id != nil {
		return false
	}
	if _, ok := packet.Data.([]any); !ok {
		return false
	}
	return opts == nil || opts.Flags == nil || !opts.Flags.Volatile
}

// end is the absolute index the next entry will have.
func (r *recovery) end() uint64 { return r.base + uint64(len(r.entries)) }

func (r *recovery) localOffset() string {
	r.localSeq++
	return r.a.b.nodeID + "~" + strconv.FormatUint(r.localSeq, 10)
}

// logAndSend appends the entry, appends its offset to the packet and sends the packet to this
// server's sockets that opts select. r.mu is held.
func (r *recovery) logAndSend(e *logEntry, packet *parser.Packet, opts *socket.BroadcastOptions, now time.Time) {
	e.data = append(packet.Data.([]any), e.offset)
	packet.Data = e.data
	if opts != nil {
		if opts.Rooms != nil && opts.Rooms.Len() > 0 {
			e.rooms = opts.Rooms.Keys()
		}
		if opts.Except != nil && opts.Except.Len() > 0 {
			e.except = opts.Except.Keys()
		}
	}
	r.evict(now)
	idx := r.end()
	r.entries = append(r.entries, e)
	r.byOffset[e.offset] = idx
	if len(e.rooms) == 0 {
		r.lastToAll = idx + 1
	}
	for _, room := range e.rooms {
		r.lastByRoom[room] = idx + 1
	}
	r.a.Adapter.Broadcast(packet, r.withHeldBack(e, opts))
}

// withHeldBack returns opts with the sockets the entry must not reach now: those being
// restored, and those restored from a handed-off session that had this packet already.
func (r *recovery) withHeldBack(e *logEntry, opts *socket.BroadcastOptions) *socket.BroadcastOptions {
	if len(r.restoring) == 0 && len(r.guards) == 0 {
		return opts
	}
	var except []socket.Room
	for sid := range r.restoring {
		except = append(except, socket.Room(sid))
	}
	for sid, g := range r.guards {
		if g.origin.frontier.has(e) {
			except = append(except, socket.Room(sid))
		}
	}
	if len(except) == 0 {
		return opts
	}
	held := &socket.BroadcastOptions{Except: types.NewSet(append(except, e.except...)...)}
	if opts != nil {
		held.Rooms, held.Flags = opts.Rooms, opts.Flags
	}
	return held
}

// evict drops the entries older than the disconnection duration, and the oldest past the count
// limit. r.mu is held.
func (r *recovery) evict(now time.Time) {
	drop := 0
	for drop < len(r.entries) {
		e := r.entries[drop]
		byCount := len(r.entries)-drop >= r.maxPackets
		if !byCount && now.Sub(e.at) <= r.maxAge {
			break
		}
		if byCount {
			r.evictedAt = e.at
		}
		idx := r.base + uint64(drop)
		delete(r.byOffset, e.offset)
		for _, room := range e.rooms {
			if r.lastByRoom[room] == idx+1 {
				delete(r.lastByRoom, room)
			}
		}
		r.entries[drop] = nil
		drop++
	}
	if drop > 0 {
		r.entries = r.entries[drop:]
		r.base += uint64(drop)
		if cap(r.entries) > 2*len(r.entries)+1024 { // let the dropped part of the array go
			r.entries = append(make([]*logEntry, 0, len(r.entries)+256), r.entries...)
		}
	}
	if now.Sub(r.lastSweep) >= time.Second {
		r.lastSweep = now
		r.sweep(now)
	}
}

// sweep forgets the expired sessions, restorations and guards. r.mu is held.
func (r *recovery) sweep(now time.Time) {
	for pid, s := range r.sessions {
		if now.Sub(s.at) > r.maxAge {
			delete(r.sessions, pid)
		}
	}
	for pid, s := range r.handedOff {
		if now.Sub(time.UnixMilli(s.s.DisconnectedAt)) > r.maxAge {
			delete(r.handedOff, pid)
		}
	}
	for sid, s := range r.restoring {
		if now.After(s.expires) {
			delete(r.restoring, sid)
		}
	}
	for sid, g := range r.guards {
		if now.After(g.until) {
			delete(r.guards, sid)
		}
	}
}

// matches reports whether a socket in rooms would have received the entry.
func (e *logEntry) matches(rooms *types.Set[socket.Room]) bool {
	for _, room := range e.except {
		if rooms.Has(room) {
			return false
		}
	}
	if len(e.rooms) == 0 {
		return true
	}
	for _, room := range e.rooms {
		if rooms.Has(room) {
			return true
		}
	}
	return false
}

// lastMatching returns the offset of the last logged packet a socket in rooms was sent, "" if
// none was since the log started, unresolvedOffset if that cannot be told. r.mu is held.
func (r *recovery) lastMatching(rooms *types.Set[socket.Room]) string {
	candidate := r.lastToAll
	for _, room := range rooms.Keys() {
		candidate = max(candidate, r.lastByRoom[room])
	}
	if candidate == 0 {
		if r.base > 0 {
			return unresolvedOffset // its last packet may have been evicted
		}
		return ""
	}
	// The newest entry to one of its rooms may exclude it: look a little further back.
	for idx, steps := candidate-1, 0; idx >= r.base && steps < 1000; idx, steps = idx-1, steps+1 {
		if e := r.entries[idx-r.base]; e.matches(rooms) {
			return e.offset
		}
		if idx == 0 {
			break
		}
	}
	return unresolvedOffset
}

// packetsAfter returns the data of the entries from index from on that a socket in rooms would
// have received, leaving out those seen (if set) had. r.mu is held.
func (r *recovery) packetsAfter(from uint64, rooms *types.Set[socket.Room], seen *frontierSet) []any {
	var out []any
	for idx := max(from, r.base); idx < r.end(); idx++ {
		e := r.entries[idx-r.base]
		if e.matches(rooms) && (seen == nil || !seen.has(e)) {
			out = append(out, e.data)
		}
	}
	return out
}

// countRecovery counts a restore attempt's outcome.
func (r *recovery) count(recovered bool) {
	if recovered {
		atomic.AddUint64(&r.a.b.stats.s.SessionsRecovered, 1)
	} else {
		atomic.AddUint64(&r.a.b.stats.s.SessionsNotRecovered, 1)
	}
}

// unseenSince returns what a handed-off session missed: the logged broadcasts since the lookback
// before its disconnection that its server had not acted on. ok is false when this server cannot
// tell: its log does not reach back far enough, or holds a matching broadcast of a Node server
// (no id to compare). r.mu is held.
func (r *recovery) unseenSince(h *handedOffSession) (missed []any, ok bool) {
	cutoff := time.UnixMilli(h.s.DisconnectedAt).Add(-recoveryLookback)
	if !r.evictedAt.IsZero() && !r.evictedAt.Before(cutoff) {
		return nil, false
	}
	if !r.covers(h.frontier) {
		return nil, false
	}
	rooms := types.NewSet(stringsToRooms(h.s.Rooms)...)
	first := sort.Search(len(r.entries), func(i int) bool { return !r.entries[i].at.Before(cutoff) })
	for _, e := range r.entries[first:] {
		if e.kind == entryLocal || !e.matches(rooms) {
			continue // a broadcast logged here only: the client was not a socket of this server
		}
		if e.kind == entryNode || (e.kind == entryGlobalID && !h.complete) {
			return nil, false
		}
		if !h.frontier.has(e) {
			missed = append(missed, e.data)
		}
	}
	return missed, true
}

// covers reports whether the log holds every broadcast of every Go sender that the closing
// server, whose frontier this is, had not acted on. r.mu is held.
func (r *recovery) covers(f *frontierSet) bool {
	for sender, seen := range f.senders {
		if sender == r.a.b.nodeID {
			continue // this server's own broadcasts are all in its log
		}
		from := r.a.b.seen.coverFrom(sender)
		if s, ok := r.start.Senders[sender]; ok {
			from = s.Last + 1
		}
		if from > seen.last+1 {
			return false
		}
	}
	return true
}

// recoverySettings reads the server's ConnectionStateRecovery option: whether it is on, and the
// disconnection duration. The Go server fills in its defaults (2 minutes, middlewares skipped on
// a recovered connection) only when no adapter is set; they are filled in here the same way, and
// a zero duration means the default too, not "never recovers".
func recoverySettings(opts socket.ServerOptionsInterface) (time.Duration, bool) {
	if opts == nil {
		return 0, false
	}
	csr := opts.ConnectionStateRecovery()
	if csr == nil {
		return 0, false
	}
	if csr.GetRawMaxDisconnectionDuration() == nil || csr.MaxDisconnectionDuration() <= 0 {
		csr.SetMaxDisconnectionDuration(DefaultMaxDisconnectionDuration.Milliseconds())
	}
	if csr.GetRawSkipMiddlewares() == nil {
		csr.SetSkipMiddlewares(true)
	}
	return time.Duration(csr.MaxDisconnectionDuration()) * time.Millisecond, true
}

// handoffWait is how long a restore waits for the hand-off of a session it does not know: the
// reorder window (a hand-off can be held behind an earlier message of its sender) and a second
// for the hand-off to cross SNS and SQS.
func (o *Options) handoffWait() time.Duration { return max(o.ReorderWindow, 0) + time.Second }
