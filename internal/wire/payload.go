package wire

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// The data payloads, field for field as socket.io-adapter (Node) builds them. Where Node always
// sends a field (clientCount: 0, sockets: [], rooms: []) the field has no omitempty.

// Flags are the broadcast flags Node sends: only the ones that are set.
type Flags struct {
	Volatile             bool   `msgpack:"volatile,omitempty"`
	Compress             *bool  `msgpack:"compress,omitempty"`
	Local                bool   `msgpack:"local,omitempty"`
	Broadcast            bool   `msgpack:"broadcast,omitempty"`
	Binary               bool   `msgpack:"binary,omitempty"`
	Timeout              *int64 `msgpack:"timeout,omitempty"` // milliseconds
	ExpectSingleResponse bool   `msgpack:"expectSingleResponse,omitempty"`
}

// TimeoutDuration returns the timeout flag, if set.
func (f *Flags) TimeoutDuration() (time.Duration, bool) {
	if f.Timeout == nil {
		return 0, false
	}
	return time.Duration(*f.Timeout) * time.Millisecond, true
}

// Options select the sockets a message acts on.
type Options struct {
	Rooms  []string `msgpack:"rooms"`
	Except []string `msgpack:"except"`
	Flags  Flags    `msgpack:"flags"`
}

// Packet is a Socket.IO packet as the cluster forwards it.
type Packet struct {
	Type int    `msgpack:"type"`
	Data []any  `msgpack:"data"`
	Nsp  string `msgpack:"nsp,omitempty"`
}

// BroadcastData is the data of BROADCAST. RequestID is set when acknowledgements are expected.
type BroadcastData struct {
	Packet    Packet  `msgpack:"packet"`
	RequestID string  `msgpack:"requestId,omitempty"`
	Opts      Options `msgpack:"opts"`
}

// SocketsJoinLeaveData is the data of SOCKETS_JOIN and SOCKETS_LEAVE.
type SocketsJoinLeaveData struct {
	Opts  Options  `msgpack:"opts"`
	Rooms []string `msgpack:"rooms"`
}

// DisconnectSocketsData is the data of DISCONNECT_SOCKETS.
type DisconnectSocketsData struct {
	Opts  Options `msgpack:"opts"`
	Close bool    `msgpack:"close"`
}

// FetchSocketsData is the data of FETCH_SOCKETS.
type FetchSocketsData struct {
	Opts      Options `msgpack:"opts"`
	RequestID string  `msgpack:"requestId"`
}

// Handshake is a socket's handshake the way Node's socket.io shapes it: header keys lower-case
// with string values, query values strings, time a JavaScript date string, issued in ms.
type Handshake struct {
	Headers map[string]any `msgpack:"headers"`
	Time    string         `msgpack:"time"`
	Address string         `msgpack:"address"`
	Xdomain bool           `msgpack:"xdomain"`
	Secure  bool           `msgpack:"secure"`
	Issued  int64          `msgpack:"issued"`
	URL     string         `msgpack:"url"`
	Query   map[string]any `msgpack:"query"`
	Auth    map[string]any `msgpack:"auth"`
}

// Socket describes one socket in FETCH_SOCKETS_RESPONSE.
type Socket struct {
	ID        string    `msgpack:"id"`
	Handshake Handshake `msgpack:"handshake"`
	Rooms     []string  `msgpack:"rooms"`
	Data      any       `msgpack:"data"`
}

// FetchSocketsResponseData is the data of FETCH_SOCKETS_RESPONSE.
type FetchSocketsResponseData struct {
	RequestID string   `msgpack:"requestId"`
	Sockets   []Socket `msgpack:"sockets"`
}

// ServerSideEmitData is the data of SERVER_SIDE_EMIT; RequestID is set when responses are expected.
type ServerSideEmitData struct {
	RequestID string `msgpack:"requestId,omitempty"`
	Packet    []any  `msgpack:"packet"`
}

// ServerSideEmitResponseData is the data of SERVER_SIDE_EMIT_RESPONSE: Packet is the first
// argument the receiving server acknowledged with.
type ServerSideEmitResponseData struct {
	RequestID string `msgpack:"requestId"`
	Packet    any    `msgpack:"packet"`
}

// BroadcastClientCountData is the data of BROADCAST_CLIENT_COUNT.
type BroadcastClientCountData struct {
	RequestID   string `msgpack:"requestId"`
	ClientCount uint64 `msgpack:"clientCount"`
}

// BroadcastAckData is the data of BROADCAST_ACK: Packet is the first argument the client
// acknowledged with.
type BroadcastAckData struct {
	RequestID string `msgpack:"requestId"`
	Packet    any    `msgpack:"packet"`
}

// Seen is what one server had acted on of one Go sender's stream of cluster messages (numbered
// by SequencedID): every number from First to Last except the Missing ones.
type Seen struct {
	First   uint64   `msgpack:"first"`
	Last    uint64   `msgpack:"last"`
	Missing []uint64 `msgpack:"missing,omitempty"`
}

// HandedOffSession is one session of SESSION_HANDOFF: what the Socket.IO server persisted when
// the client disconnected, when, the offset of the last packet the server had for it, and which
// of the cluster's messages the server had acted on by then (an index into Frontiers).
type HandedOffSession struct {
	Sid            string   `msgpack:"sid"`
	Pid            string   `msgpack:"pid"`
	Rooms          []string `msgpack:"rooms"`
	Data           any      `msgpack:"data"`
	DisconnectedAt int64    `msgpack:"disconnectedAt"` // unix ms
	LastOffset     string   `msgpack:"lastOffset"`
	Frontier       int      `msgpack:"frontier"`
}

// Frontier maps each Go sender's node id to what was seen of its stream; IDs lists the
// unnumbered ids (emitters) acted on recently.
type Frontier struct {
	Senders map[string]Seen `msgpack:"senders"`
	IDs     []string        `msgpack:"ids,omitempty"`
}

// SessionHandoffData is the data of SESSION_HANDOFF. Sessions persisted at the same moment share
// one frontier.
type SessionHandoffData struct {
	Frontiers []Frontier         `msgpack:"frontiers"`
	Sessions  []HandedOffSession `msgpack:"sessions"`
}

// SessionClaimData is the data of SESSION_CLAIM: the private ids of the restored sessions.
type SessionClaimData struct {
	Pids []string `msgpack:"pids"`
}

// NewData returns a pointer to the zero payload of type t, or nil for types without data.
func NewData(t Type) any {
	switch t {
	case Broadcast:
		return &BroadcastData{}
	case SocketsJoin, SocketsLeave:
		return &SocketsJoinLeaveData{}
	case DisconnectSockets:
		return &DisconnectSocketsData{}
	case FetchSockets:
		return &FetchSocketsData{}
	case FetchSocketsResponse:
		return &FetchSocketsResponseData{}
	case ServerSideEmit:
		return &ServerSideEmitData{}
	case ServerSideEmitResponse:
		return &ServerSideEmitResponseData{}
	case BroadcastClientCount:
		return &BroadcastClientCountData{}
	case BroadcastAck:
		return &BroadcastAckData{}
	case SessionHandoff:
		return &SessionHandoffData{}
	case SessionClaim:
		return &SessionClaimData{}
	}
	return nil
}

// Encode returns the msgpack of a payload. Structs of the user's own (socket data, event
// arguments) use their msgpack tags, else their json tags, so that a Go struct reaches Node with
// the field names a Go user gave it for JSON. Buffers of the Socket.IO library become binary.
func Encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("msgpack encode: %w", err)
	}
	return buf.Bytes(), nil
}

// maxDepth bounds nesting in received msgpack; Node's encoder refuses deeper than 100 as well.
const maxDepth = 100

// Decode checks b is one well-formed msgpack value whose length prefixes fit in b (so no
// allocation is sized by a hostile prefix), then decodes it into the payload v points to.
// Values in untyped places (event arguments, socket data) come out as JSON-like Go values:
// integers as int64 (uint64 only above the int64 range), floats as float64, binary as []byte,
// the timestamp extension as time.Time, maps as map[string]any.
func Decode(b []byte, v any) error {
	end, err := skipValue(b, 0, 0)
	if err != nil {
		return err
	}
	if end != len(b) {
		return fmt.Errorf("msgpack: %d trailing bytes", len(b)-end)
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(b))
	dec.SetCustomStructTag("json")
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("msgpack decode into %s: %w", reflect.TypeOf(v).Elem().Name(), err)
	}
	normalizePayload(v)
	return nil
}

// normalizePayload rewrites the untyped values of a decoded payload in place with normalize.
func normalizePayload(v any) {
	switch d := v.(type) {
	case *any:
		*d = normalize(*d)
	case *map[string]any:
		normalizeMap(*d)
	case *BroadcastData:
		normalizeSlice(d.Packet.Data)
	case *FetchSocketsResponseData:
		for i := range d.Sockets {
			s := &d.Sockets[i]
			s.Data = normalize(s.Data)
			normalizeMap(s.Handshake.Headers)
			normalizeMap(s.Handshake.Query)
			normalizeMap(s.Handshake.Auth)
		}
	case *ServerSideEmitData:
		normalizeSlice(d.Packet)
	case *ServerSideEmitResponseData:
		d.Packet = normalize(d.Packet)
	case *BroadcastAckData:
		d.Packet = normalize(d.Packet)
	}
}

// normalize maps the sized numbers msgpack decodes into (int8, uint16, float32, ...) onto the
// int64 and float64 a JSON-minded Go user expects, maps with non-string keys onto
// map[string]any, and dates (which msgpack decodes in the process's local zone) onto UTC, as
// JavaScript's Date has no zone and prints as UTC, recursively.
func normalize(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC()
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return x
	case float32:
		return float64(x)
	case []any:
		normalizeSlice(x)
	case map[string]any:
		normalizeMap(x)
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	}
	return v
}

func normalizeSlice(s []any) {
	for i, e := range s {
		s[i] = normalize(e)
	}
}

func normalizeMap(m map[string]any) {
	for k, e := range m {
		m[k] = normalize(e)
	}
}

// skipValue walks the msgpack value starting at b[i] and returns where it ends. It refuses
// truncated input, containers that claim more elements than bytes remain, nesting deeper than
// maxDepth, and the never-used code 0xc1.
func skipValue(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("msgpack: nested deeper than %d", maxDepth)
	}
	if i >= len(b) {
		return 0, fmt.Errorf("msgpack: truncated at byte %d", i)
	}
	c := b[i]
	i++
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return i, nil
	case c >= 0x80 && c <= 0x8f:
		return skipContainer(b, i, int(c&0x0f), 2, depth)
	case c >= 0x90 && c <= 0x9f:
		return skipContainer(b, i, int(c&0x0f), 1, depth)
	case c >= 0xa0 && c <= 0xbf:
		return skipBytes(b, i, int(c&0x1f))
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		return skipSized(b, i, 1, 0)
	case 0xc5, 0xda: // bin16, str16
		return skipSized(b, i, 2, 0)
	case 0xc6, 0xdb: // bin32, str32
		return skipSized(b, i, 4, 0)
	case 0xc7: // ext8: length, type, data
		return skipSized(b, i, 1, 1)
	case 0xc8:
		return skipSized(b, i, 2, 1)
	case 0xc9:
		return skipSized(b, i, 4, 1)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return skipBytes(b, i, 4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return skipBytes(b, i, 8)
	case 0xcc, 0xd0:
		return skipBytes(b, i, 1)
	case 0xcd, 0xd1:
		return skipBytes(b, i, 2)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 plus the type byte
		return skipBytes(b, i, 1+(1<<(c-0xd4)))
	case 0xdc, 0xdd, 0xde, 0xdf: // array16, array32, map16, map32
		lenBytes, perElement := 2<<(c&1), 1+int(c-0xdc)/2
		n, i, err := readLen(b, i, lenBytes)
		if err != nil {
			return 0, err
		}
		return skipContainer(b, i, n, perElement, depth)
	}
	return 0, fmt.Errorf("msgpack: invalid code 0x%x at byte %d", c, i-1)
}

func skipContainer(b []byte, i, n, perElement, depth int) (int, error) {
	if n > (len(b)-i)/perElement {
		return 0, fmt.Errorf("msgpack: container of %d claims more than the %d bytes left", n, len(b)-i)
	}
	var err error
	for k := 0; k < n*perElement; k++ {
		if i, err = skipValue(b, i, depth+1); err != nil {
			return 0, err
		}
	}
	return i, nil
}

func skipSized(b []byte, i, lenBytes, extra int) (int, error) {
	n, i, err := readLen(b, i, lenBytes)
	if err != nil {
		return 0, err
	}
	return skipBytes(b, i, n+extra)
}

func readLen(b []byte, i, size int) (int, int, error) {
	if len(b)-i < size {
		return 0, 0, fmt.Errorf("msgpack: truncated length at byte %d", i)
	}
	n := 0
	for _, x := range b[i : i+size] {
		n = n<<8 | int(x)
	}
	return n, i + size, nil
}

func skipBytes(b []byte, i, n int) (int, error) {
	if n < 0 || n > len(b)-i {
		return 0, fmt.Errorf("msgpack: %d bytes claimed at byte %d, %d left", n, i, len(b)-i)
	}
	return i + n, nil
}
