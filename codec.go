package sqsadapter

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// This file maps the Go Socket.IO server's types onto the payloads Node's socket.io-adapter
// sends, and back. The Go library's own msgpack tags are not Node-compatible (timeouts in
// nanoseconds, every false flag sent, clientCount 0 and empty socket lists dropped, headers as
// lists), so the adapter never encodes them directly.

// jsDateLayout is how Node prints a Date (Date.prototype.toString), the format of
// handshake.time on the wire; the zone name in parentheses follows it.
const jsDateLayout = "Mon Jan 02 2006 15:04:05 GMT-0700"

func toWireOptions(opts *socket.BroadcastOptions) wire.Options {
	o := wire.Options{Rooms: []string{}, Except: []string{}}
	if opts == nil {
		return o
	}
	if opts.Rooms != nil {
		o.Rooms = roomsToStrings(opts.Rooms.Keys())
	}
	if opts.Except != nil {
		o.Except = roomsToStrings(opts.Except.Keys())
	}
	if f := opts.Flags; f != nil {
		o.Flags = wire.Flags{
			Volatile:             f.Volatile,
			Compress:             f.Compress,
			Local:                f.Local,
			Broadcast:            f.Broadcast,
			Binary:               f.Binary,
			ExpectSingleResponse: f.ExpectSingleResponse,
		}
		if f.Timeout != nil {
			ms := f.Timeout.Milliseconds()
			o.Flags.Timeout = &ms
		}
	}
	return o
}

func fromWireOptions(o wire.Options) *socket.BroadcastOptions {
	flags := &socket.BroadcastFlags{
		Local:                o.Flags.Local,
		Broadcast:            o.Flags.Broadcast,
		Binary:               o.Flags.Binary,
		ExpectSingleResponse: o.Flags.ExpectSingleResponse,
	}
	flags.Volatile = o.Flags.Volatile
	flags.Compress = o.Flags.Compress
	if d, ok := o.Flags.TimeoutDuration(); ok {
		flags.Timeout = &d
	}
	return &socket.BroadcastOptions{
		Rooms:  types.NewSet(stringsToRooms(o.Rooms)...),
		Except: types.NewSet(stringsToRooms(o.Except)...),
		Flags:  flags,
	}
}

func roomsToStrings(rooms []socket.Room) []string {
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = string(r)
	}
	return out
}

func stringsToRooms(rooms []string) []socket.Room {
	out := make([]socket.Room, len(rooms))
	for i, r := range rooms {
		out[i] = socket.Room(r)
	}
	return out
}

// toWirePacket copies an event packet; Node sends binary events with the plain event type and
// lets its encoder find the binary parts, and so does the Go encoder.
func toWirePacket(p *parser.Packet) (wire.Packet, error) {
	data, ok := p.Data.([]any)
	if !ok {
		return wire.Packet{}, fmt.Errorf("packet data is %T, want []any", p.Data)
	}
	typ := p.Type
	switch typ {
	case parser.BINARY_EVENT:
		typ = parser.EVENT
	case parser.BINARY_ACK:
		typ = parser.ACK
	}
	return wire.Packet{Type: int(typ), Data: wire.Values(data)}, nil
}

func fromWirePacket(p wire.Packet) *parser.Packet {
	return &parser.Packet{Type: parser.PacketType(p.Type), Data: p.Data}
}

// firstArg is what Node puts in an acknowledgement response: the first argument only.
func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return wire.Value(args[0])
}

// toWireHandshake shapes a Go handshake the way Node's socket.io builds one: lower-case header
// keys with string values, query values as strings, time as a JavaScript date string, the
// address without its port, auth an object even when the client sent none.
func toWireHandshake(h *socket.Handshake) wire.Handshake {
	if h == nil {
		return wire.Handshake{Headers: map[string]any{}, Query: map[string]any{}, Auth: map[string]any{}}
	}
	w := wire.Handshake{
		Headers: make(map[string]any, len(h.Headers)),
		Time:    h.Time,
		Address: h.Address,
		Xdomain: h.Xdomain,
		Secure:  h.Secure,
		Issued:  h.Issued,
		URL:     h.Url,
		Query:   make(map[string]any, len(h.Query)),
		Auth:    map[string]any{},
	}
	for k, v := range h.Headers {
		if vs := anyStrings(v); len(vs) > 0 {
			w.Headers[strings.ToLower(k)] = strings.Join(vs, ", ")
		}
	}
	for k, v := range h.Query {
		switch vs := anyStrings(v); len(vs) {
		case 0:
		case 1:
			w.Query[k] = vs[0]
		default:
			w.Query[k] = stringsToAny(vs)
		}
	}
	if t, err := time.Parse(time.RFC3339, h.Time); err == nil {
		w.Time = t.UTC().Format(jsDateLayout) + " (Coordinated Universal Time)"
	}
	if host, _, err := net.SplitHostPort(h.Address); err == nil {
		w.Address = host
	}
	if a, ok := wire.Value(h.Auth).(map[string]any); ok && a != nil {
		w.Auth = a
	}
	return w
}

// fromWireHandshake shapes a received handshake the way the Go server builds one for its own
// sockets: canonical header keys and query values as string lists, time in RFC 3339.
func fromWireHandshake(w wire.Handshake) *socket.Handshake {
	h := &socket.Handshake{
		Headers: make(types.IncomingHttpHeaders, len(w.Headers)),
		Time:    w.Time,
		Address: w.Address,
		Xdomain: w.Xdomain,
		Secure:  w.Secure,
		Issued:  w.Issued,
		Url:     w.URL,
		Query:   make(types.ParsedUrlQuery, len(w.Query)),
		Auth:    w.Auth,
	}
	for k, v := range w.Headers {
		h.Headers[http.CanonicalHeaderKey(k)] = anyStrings(v)
	}
	for k, v := range w.Query {
		h.Query[k] = anyStrings(v)
	}
	if len(w.Time) >= len(jsDateLayout) {
		if t, err := time.Parse(jsDateLayout, w.Time[:len(jsDateLayout)]); err == nil {
			h.Time = t.Format(time.RFC3339)
		}
	}
	return h
}

// anyStrings reads a header or query value: a string, or a list of strings.
func anyStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, e := range s {
		out[i] = e
	}
	return out
}

// toWireSocket shapes a socket for a fetchSockets answer; f removes from its handshake what
// must not leave this server.
func toWireSocket(s socket.SocketDetails, f *handshakeFilter) wire.Socket {
	rooms := []string{}
	if r := s.Rooms(); r != nil {
		rooms = roomsToStrings(r.Keys())
	}
	// Node starts every socket's data as {}, and its users read socket.data.x without a check:
	// a Go socket's nil data goes as {} rather than null.
	data := wire.Value(s.Data())
	if data == nil {
		data = map[string]any{}
	}
	h := toWireHandshake(s.Handshake())
	f.apply(&h)
	return wire.Socket{
		ID:        string(s.Id()),
		Handshake: h,
		Rooms:     rooms,
		Data:      data,
	}
}

// remoteSocket is a socket of another node, as fetchSockets returns it.
type remoteSocket struct {
	id        socket.SocketId
	handshake *socket.Handshake
	rooms     *types.Set[socket.Room]
	data      any
}

var _ socket.SocketDetails = (*remoteSocket)(nil)

func fromWireSocket(w wire.Socket) *remoteSocket {
	return &remoteSocket{
		id:        socket.SocketId(w.ID),
		handshake: fromWireHandshake(w.Handshake),
		rooms:     types.NewSet(stringsToRooms(w.Rooms)...),
		data:      w.Data,
	}
}

func (r *remoteSocket) Id() socket.SocketId            { return r.id }
func (r *remoteSocket) Handshake() *socket.Handshake   { return r.handshake }
func (r *remoteSocket) Rooms() *types.Set[socket.Room] { return r.rooms }
func (r *remoteSocket) Data() any                      { return r.data }
