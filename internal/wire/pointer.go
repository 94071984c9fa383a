package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Offloaded messages. A cluster message too large for SNS (see MaxMessageSize) can travel
// through S3: the sender puts its data (the msgpack bytes the data attribute would carry) in an
// S3 object, and publishes the message with one String attribute more, "s3", that points at the
// object. The body stays the message type, as upstream sends it.
//
// The data attribute of an offloaded message carries a stand-in (see StandIn): a small payload
// that Node servers running upstream's adapter, which know nothing of "s3", decode and act on
// harmlessly, so that they receive nothing. Without a data attribute, socket.io-adapter's
// onMessage throws on a BROADCAST or SERVER_SIDE_EMIT; upstream's poll loop then skips the
// DeleteMessageBatch of the whole receive, and SQS hands the batch back after every visibility
// timeout (30 s) until the messages expire: the other messages of the batch reach Node's
// clients again and again. Go receivers ignore the stand-in of a message with an s3 attribute
// and use the bytes they read from S3.
//
// The pointer is the JSON the AWS SQS/SNS extended client libraries put in the body of an
// offloaded message, with the size and the SHA-256 of the data added, so that receivers can
// check what they read:
//
//	["software.amazon.payloadoffloading.PayloadS3Pointer",
//	 {"s3BucketName":"my-bucket","s3Key":"socketio-sqsadapter/...","size":921600,"sha256":"9f86..."}]
//
// Unlike those libraries, the receivers never delete the object: with SNS fan-out every node
// reads it, and none knows whether it is the last. Objects expire by an S3 lifecycle rule.

// AttrS3 is the attribute that carries the pointer of an offloaded message.
const AttrS3 = "s3"

// PointerClass is the class name the extended client libraries tag their pointers with.
const PointerClass = "software.amazon.payloadoffloading.PayloadS3Pointer"

// MaxOffloadedSize bounds the data of an offloaded message (a receiver holds it in memory).
const MaxOffloadedSize = 64 << 20

// Pointer says where the data of an offloaded message is, and what it must be.
type Pointer struct {
	Bucket string `json:"s3BucketName"`
	Key    string `json:"s3Key"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// PointerTo returns the pointer to an object at bucket/key holding data.
func PointerTo(bucket, key string, data []byte) *Pointer {
	sum := sha256.Sum256(data)
	return &Pointer{Bucket: bucket, Key: key, Size: len(data), SHA256: hex.EncodeToString(sum[:])}
}

// Encode returns the attribute value.
func (p *Pointer) Encode() string {
	b, _ := json.Marshal([]any{PointerClass, p}) // cannot fail: strings and an int
	return string(b)
}

// Verify checks that data is what p promises.
func (p *Pointer) Verify(data []byte) error {
	if len(data) != p.Size {
		return fmt.Errorf("object %s/%s is %d bytes, the pointer says %d", p.Bucket, p.Key, len(data), p.Size)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != p.SHA256 {
		return fmt.Errorf("object %s/%s does not match the pointer's SHA-256", p.Bucket, p.Key)
	}
	return nil
}

// ParsePointer decodes and checks an attribute value made by Encode.
func ParsePointer(s string) (*Pointer, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal([]byte(s), &parts); err != nil || len(parts) != 2 {
		return nil, fmt.Errorf("%w: attribute %q is not an S3 pointer", ErrMalformed, AttrS3)
	}
	var class string
	if err := json.Unmarshal(parts[0], &class); err != nil || class != PointerClass {
		return nil, fmt.Errorf("%w: attribute %q is not an S3 pointer", ErrMalformed, AttrS3)
	}
	var p Pointer
	if err := json.Unmarshal(parts[1], &p); err != nil {
		return nil, fmt.Errorf("%w: attribute %q: %v", ErrMalformed, AttrS3, err)
	}
	sum, err := hex.DecodeString(p.SHA256)
	switch {
	case p.Bucket == "" || p.Key == "":
		return nil, fmt.Errorf("%w: attribute %q names no object", ErrMalformed, AttrS3)
	case p.Size <= 0 || p.Size > MaxOffloadedSize:
		return nil, fmt.Errorf("%w: attribute %q: size %d out of range", ErrMalformed, AttrS3, p.Size)
	case err != nil || len(sum) != sha256.Size || strings.ToLower(p.SHA256) != p.SHA256:
		return nil, fmt.Errorf("%w: attribute %q: bad SHA-256", ErrMalformed, AttrS3)
	}
	return &p, nil
}

// StandInName is the room the stand-ins of offloaded messages target and the event name they
// carry. Socket.IO room names are the application's, so a socket could in principle be made to
// join it; applications must not use it (nor listen to it as a server-side event).
const StandInName = "sqsadapter:offloaded"

// Offloadable reports whether messages of type t may travel through S3, that is whether a
// Node server can be given a harmless stand-in for them (or never reads them):
//   - BROADCAST: a broadcast without requestId (no acknowledgement expected) of a small packet to
//     the room StandInName, which no socket is in: Node's clients receive nothing. For a
//     broadcast with acknowledgements a Node server sends no client count, so the requester's
//     callback ends at the broadcast's timeout, with the Go clients' answers and an error.
//   - SERVER_SIDE_EMIT: the event StandInName with no arguments and no requestId: no Node
//     listener fires, and a Node server does not answer a serverSideEmit with acknowledgements
//     (the Go requester then times out, missing one response per Node server).
//   - SOCKETS_JOIN, SOCKETS_LEAVE, DISCONNECT_SOCKETS: the same operation (no rooms to join or
//     leave; close false) on the sockets of room StandInName: none.
//   - the responses: only the requester reads them, and the adapter offloads them to Go servers
//     only; they keep no data attribute (Node servers drop another server's responses unread).
//
// FETCH_SOCKETS is never offloaded (it fails with a MessageTooLargeError as before): a Node
// server answers any FETCH_SOCKETS, and an answer to a stand-in would be a wrong one.
func (t Type) Offloadable() bool {
	switch t {
	case Broadcast, ServerSideEmit, SocketsJoin, SocketsLeave, DisconnectSockets:
		return true
	}
	return t.IsResponse()
}

// StandIn returns the stand-in data attribute of an offloaded message of type t on namespace
// nsp (see Offloadable), or nil for the types that carry none.
func StandIn(t Type, nsp string) []byte {
	nobody := Options{Rooms: []string{StandInName}, Except: []string{}}
	var v any
	switch t {
	case Broadcast:
		v = &BroadcastData{Packet: Packet{Type: 2, Data: []any{StandInName}, Nsp: nsp}, Opts: nobody}
	case ServerSideEmit:
		v = &ServerSideEmitData{Packet: []any{StandInName}}
	case SocketsJoin, SocketsLeave:
		v = &SocketsJoinLeaveData{Opts: nobody, Rooms: []string{}}
	case DisconnectSockets:
		v = &DisconnectSocketsData{Opts: nobody}
	default:
		return nil
	}
	b, err := Encode(v)
	if err != nil {
		panic(err) // strings only
	}
	return b
}

// pointerSize is what the s3 attribute adds to Size.
func (m *Message) pointerSize() int {
	if m.Pointer == nil {
		return 0
	}
	return len(AttrS3) + len("String") + len(m.Pointer.Encode())
}

// Offloaded returns a copy of m that carries p, and the stand-in of its type instead of its
// data.
func (m *Message) Offloaded(p *Pointer) *Message {
	c := *m
	c.Data, c.Pointer = StandIn(m.Type, m.Nsp), p
	return &c
}

// pointerFromSQS reads the optional s3 attribute of a received message.
func pointerFromSQS(m *Message, s string) error {
	if s == "" {
		return nil
	}
	if !m.Type.HasData() {
		return fmt.Errorf("%w: %s carries an %q attribute", ErrMalformed, m.Type, AttrS3)
	}
	p, err := ParsePointer(s)
	if err != nil {
		return err
	}
	m.Pointer = p
	return nil
}
