// Package wire is the cluster message format of @socket.io/aws-sqs-adapter 0.1.1, shared by the
// adapter and the emitter.
//
// One cluster message is one SNS message published with raw delivery:
//   - the body is the message type as a decimal string ("3");
//   - attribute "nsp" (String): the namespace;
//   - attribute "uid" (String): the sender's uid (one per namespace adapter, "emitter" for emitters);
//   - attribute "requesterUid" (String): responses only, the uid of the node that asked;
//   - attribute "data" (Binary): msgpack of the message's data, absent when there is none.
//
// Go nodes add one attribute upstream does not send, and which upstream ignores:
//   - attribute "msgId" (String): a random id per message, so that a message published twice
//     (a publish retried after a lost response) is acted on once.
//
// Go senders configured with signing keys add one more (sign.go):
//   - attribute "sig" (String): "v1:<unix ms>:<hex HMAC-SHA256>", the sender's proof that it
//     holds a key of the cluster.
//   - attribute "s3" (String): offloaded messages only, where their data is (see pointer.go);
//     their data attribute is then a stand-in that upstream acts on harmlessly.
//
// Messages too large for SNS travel as PART messages (body "103") to Go receivers: see part.go.
//
// A message carries at most 7 attributes: nsp, uid, requesterUid, data, msgId, sig, s3, of the 10 that SNS raw delivery passes
// on to SQS. Size counts each of them.
package wire

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Type is a cluster message type; the values are those of socket.io-adapter's MessageType.
type Type int

// The cluster message types.
const (
	InitialHeartbeat Type = iota + 1
	Heartbeat
	Broadcast
	SocketsJoin
	SocketsLeave
	DisconnectSockets
	FetchSockets
	FetchSocketsResponse
	ServerSideEmit
	ServerSideEmitResponse
	BroadcastClientCount
	BroadcastAck
	AdapterClose
)

// Types only Go servers send. Node's cluster adapter ignores a type it does not know (it logs it
// at debug level), so these never disturb Node servers; they are numbered far from upstream's so
// that a type upstream adds later cannot collide with them.
const (
	// SessionHandoff carries the sessions of a server that is closing gracefully, so that their
	// clients can be recovered on another server (connection state recovery).
	SessionHandoff Type = 101
	// SessionClaim says a handed-off session was restored, so the other servers forget it.
	SessionClaim Type = 102
)

var typeNames = [...]string{
	InitialHeartbeat:       "INITIAL_HEARTBEAT",
	Heartbeat:              "HEARTBEAT",
	Broadcast:              "BROADCAST",
	SocketsJoin:            "SOCKETS_JOIN",
	SocketsLeave:           "SOCKETS_LEAVE",
	DisconnectSockets:      "DISCONNECT_SOCKETS",
	FetchSockets:           "FETCH_SOCKETS",
	FetchSocketsResponse:   "FETCH_SOCKETS_RESPONSE",
	ServerSideEmit:         "SERVER_SIDE_EMIT",
	ServerSideEmitResponse: "SERVER_SIDE_EMIT_RESPONSE",
	BroadcastClientCount:   "BROADCAST_CLIENT_COUNT",
	BroadcastAck:           "BROADCAST_ACK",
	AdapterClose:           "ADAPTER_CLOSE",
}

// Valid reports whether t is one of upstream's thirteen types or a Go-only type.
func (t Type) Valid() bool {
	return t.upstream() || t == SessionHandoff || t == SessionClaim || t == Part
}

func (t Type) upstream() bool { return t >= InitialHeartbeat && t <= AdapterClose }

func (t Type) String() string {
	switch {
	case t.upstream():
		return typeNames[t]
	case t == SessionHandoff:
		return "SESSION_HANDOFF"
	case t == SessionClaim:
		return "SESSION_CLAIM"
	case t == Part:
		return "PART"
	}
	return "UNKNOWN(" + strconv.Itoa(int(t)) + ")"
}

// IsResponse reports whether t is answered to one node (and so carries requesterUid).
func (t Type) IsResponse() bool {
	switch t {
	case FetchSocketsResponse, ServerSideEmitResponse, BroadcastClientCount, BroadcastAck:
		return true
	}
	return false
}

// HasData reports whether messages of type t carry a data attribute.
func (t Type) HasData() bool {
	return t.Valid() && t != InitialHeartbeat && t != Heartbeat && t != AdapterClose
}

// Attribute names.
const (
	AttrNsp          = "nsp"
	AttrUID          = "uid"
	AttrRequesterUID = "requesterUid"
	AttrData         = "data"
	AttrMsgID        = "msgId"
	AttrSig          = "sig"
)

// EmitterUID is the sender uid that cluster adapters reserve for emitters: messages from it are
// acted on but do not count as a cluster node.
const EmitterUID = "emitter"

// MaxMessageSize is the SNS limit for one message, body and attributes included (256 KiB).
const MaxMessageSize = 256 * 1024

// Message is one cluster message as it travels: the data is still msgpack.
type Message struct {
	Type         Type
	Nsp          string
	UID          string
	RequesterUID string // set on responses only
	// Data is msgpack; nil when the type carries no data. On an offloaded message as it is sent,
	// the stand-in (see StandIn); received, nil until the data is read from S3.
	Data    []byte
	ID      string   // Go senders only: the same for every copy of one published message
	Sig     string   // signed messages only: see Sign
	Pointer *Pointer // an offloaded message's data in S3 (see pointer.go)
	// Raw is the SQS message m was received as (nil on the sending side): its original body and
	// attributes, and its system attributes.
	Raw *sqstypes.Message
}

// Body is the SNS message body.
func (m *Message) Body() string { return strconv.Itoa(int(m.Type)) }

// Size is the size SNS counts against MaxMessageSize: the body, then for each attribute its name,
// its data type and its value.
func (m *Message) Size() int {
	n := len(m.Body())
	n += len(AttrNsp) + len("String") + len(m.Nsp)
	n += len(AttrUID) + len("String") + len(m.UID)
	if m.RequesterUID != "" {
		n += len(AttrRequesterUID) + len("String") + len(m.RequesterUID)
	}
	if m.Data != nil {
		n += len(AttrData) + len("Binary") + len(m.Data)
	}
	if m.ID != "" {
		n += len(AttrMsgID) + len("String") + len(m.ID)
	}
	if m.Sig != "" {
		n += len(AttrSig) + len("String") + len(m.Sig)
	}
	n += m.pointerSize()
	return n
}

// SNSAttributes returns the message attributes to publish.
func (m *Message) SNSAttributes() map[string]snstypes.MessageAttributeValue {
	str := func(v string) snstypes.MessageAttributeValue {
		return snstypes.MessageAttributeValue{DataType: ptr("String"), StringValue: ptr(v)}
	}
	attrs := map[string]snstypes.MessageAttributeValue{AttrNsp: str(m.Nsp), AttrUID: str(m.UID)}
	if m.RequesterUID != "" {
		attrs[AttrRequesterUID] = str(m.RequesterUID)
	}
	if m.Data != nil {
		attrs[AttrData] = snstypes.MessageAttributeValue{DataType: ptr("Binary"), BinaryValue: m.Data}
	}
	if m.ID != "" {
		attrs[AttrMsgID] = str(m.ID)
	}
	if m.Sig != "" {
		attrs[AttrSig] = str(m.Sig)
	}
	if m.Pointer != nil {
		attrs[AttrS3] = str(m.Pointer.Encode())
	}
	return attrs
}

func ptr[T any](v T) *T { return &v }

// ErrMalformed is wrapped by every error FromSQS returns.
var ErrMalformed = errors.New("malformed cluster message")

// FromSQS checks a message received from SQS and returns it as a cluster message. It accepts
// exactly what the upstream adapter sends: a known type as body, String nsp and uid, a String
// requesterUid on responses only, and Binary data on the types that carry data.
func FromSQS(body *string, attrs map[string]sqstypes.MessageAttributeValue) (*Message, error) {
	if body == nil {
		return nil, fmt.Errorf("%w: no body", ErrMalformed)
	}
	n, err := strconv.Atoi(*body)
	if err != nil || !Type(n).Valid() {
		return nil, fmt.Errorf("%w: body %q is not a message type", ErrMalformed, Truncate(*body))
	}
	m := &Message{Type: Type(n)}
	if m.Nsp, err = stringAttr(attrs, AttrNsp, true); err != nil {
		return nil, err
	}
	if m.UID, err = stringAttr(attrs, AttrUID, true); err != nil {
		return nil, err
	}
	// A part carries the requesterUid of its message, if any (see ParsePart).
	if m.RequesterUID, err = stringAttr(attrs, AttrRequesterUID, m.Type.IsResponse()); err != nil {
		return nil, err
	}
	if m.ID, err = stringAttr(attrs, AttrMsgID, false); err != nil {
		return nil, err
	}
	if m.Sig, err = stringAttr(attrs, AttrSig, false); err != nil {
		return nil, err
	}
	s3, err := stringAttr(attrs, AttrS3, false)
	if err != nil {
		return nil, err
	}
	if err := pointerFromSQS(m, s3); err != nil {
		return nil, err
	}
	if !m.Type.IsResponse() && m.Type != Part && m.RequesterUID != "" {
		return nil, fmt.Errorf("%w: %s carries a requesterUid", ErrMalformed, m.Type)
	}
	if m.Type == Part && m.Pointer != nil {
		return nil, fmt.Errorf("%w: %s carries an %q attribute", ErrMalformed, m.Type, AttrS3)
	}
	data, ok := attrs[AttrData]
	switch {
	case ok && !m.Type.HasData():
		return nil, fmt.Errorf("%w: %s carries a data attribute", ErrMalformed, m.Type)
	case !ok && m.Type.HasData() && m.Pointer == nil:
		return nil, fmt.Errorf("%w: %s has no data attribute", ErrMalformed, m.Type)
	case ok:
		if data.DataType == nil || *data.DataType != "Binary" || len(data.BinaryValue) == 0 {
			return nil, fmt.Errorf("%w: attribute %q is not a non-empty Binary", ErrMalformed, AttrData)
		}
		if m.Pointer == nil {
			m.Data = data.BinaryValue
		} // else the stand-in for Node servers: the data is the object's
	}
	return m, nil
}

func stringAttr(attrs map[string]sqstypes.MessageAttributeValue, name string, required bool) (string, error) {
	v, ok := attrs[name]
	if !ok {
		if required {
			return "", fmt.Errorf("%w: attribute %q is missing", ErrMalformed, name)
		}
		return "", nil
	}
	if v.DataType == nil || *v.DataType != "String" || v.StringValue == nil || *v.StringValue == "" {
		return "", fmt.Errorf("%w: attribute %q is not a non-empty String", ErrMalformed, name)
	}
	return *v.StringValue, nil
}

// Truncate keeps logged strings from hostile input short.
func Truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
