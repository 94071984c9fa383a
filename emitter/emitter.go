// Package emitter sends events to the clients of a Socket.IO cluster that runs on the AWS
// SNS/SQS adapter (github.com/socketio-go/aws-sqs-adapter, or Node's @socket.io/aws-sqs-adapter)
// from a Go process that is not a Socket.IO server: a worker, a cron job, a Lambda function.
//
// An Emitter publishes to the cluster's SNS topic the same cluster messages a server's adapter
// publishes, with the sender uid "emitter", which the servers act on but do not count as a
// node. It needs no queue and no subscription: it can only send. It never waits for answers, so
// nothing that needs one is offered (acknowledgements, fetchSockets, serverSideEmit with a
// callback).
//
//	e, err := emitter.New(ctx, sns.NewFromConfig(cfg), nil) // the topic "socket-io"
//	if err != nil {
//		return err
//	}
//	err = e.To("room:42").Emit(ctx, "invoice", map[string]any{"id": 42, "pdf": pdfBytes})
//
// New looks the topic up by name and fails with ErrTopicNotFound when it does not exist (a
// misspelled name, another region or account), rather than publishing into a topic no server
// listens to; Options.CreateTopic creates it instead, Options.TopicArn skips the look-up.
//
// Every call publishes once, synchronously, on the caller's goroutine, and returns the error of
// that publish; an Emitter starts no goroutine and holds nothing to close. Emitters and the
// operators To, In, Except and Of return are immutable, so one can be shared by any number of
// goroutines and each call chain starts from a copy.
//
// Each call travels as one SNS message of at most MaxMessageSize bytes, attributes included; a
// larger one fails with *MessageTooLargeError before any AWS call.
package emitter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/socketio-go/aws-sqs-adapter/internal/awsop"
	"github.com/socketio-go/aws-sqs-adapter/internal/offload"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// SNSAPI is the part of the SNS client an Emitter uses; *sns.Client implements it. ListTopics
// and CreateTopic are only called by New, when Options.TopicArn is empty: ListTopics by
// default, CreateTopic with Options.CreateTopic.
type SNSAPI interface {
	ListTopics(context.Context, *sns.ListTopicsInput, ...func(*sns.Options)) (*sns.ListTopicsOutput, error)
	CreateTopic(context.Context, *sns.CreateTopicInput, ...func(*sns.Options)) (*sns.CreateTopicOutput, error)
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ SNSAPI = (*sns.Client)(nil)

// MaxMessageSize is the SNS limit for one message, body and attributes included (256 KiB).
const MaxMessageSize = wire.MaxMessageSize

// DefaultTopicName is the topic the adapter uses when its Options.TopicName is empty.
const DefaultTopicName = "socket-io"

// minSigningKeyLen is the shortest signing key, as the adapter checks it.
const minSigningKeyLen = 16

// Options configure an Emitter. The zero value of every field means its documented default, so
// nil (or &Options{}) reaches a cluster that runs with the adapter's defaults.
type Options struct {
	// TopicName is the cluster's SNS topic: the TopicName the servers' adapters use. Default
	// "socket-io". New looks the topic up among the topics of the account and region
	// (sns:ListTopics) and fails with ErrTopicNotFound if there is none of that name, so that a
	// misspelled name or a wrong region fails at once instead of every emit succeeding into a
	// topic no server listens to.
	TopicName string
	// CreateTopic makes New create the topic when it does not exist (sns:CreateTopic, which
	// returns the existing topic when it does) instead of failing with ErrTopicNotFound. For an
	// emitter that may start before every server, on a name known to be right.
	CreateTopic bool
	// TopicArn, when set, is the topic to publish to, and New makes no AWS call (the caller then
	// needs only sns:Publish). If TopicName is set as well, it must be the ARN's topic name.
	TopicArn string
	// Logger receives debug records of what the emitter publishes. Default slog.Default().
	Logger *slog.Logger
	// SigningKey signs every message (the "sig" attribute) for servers that run with
	// SigningKeys: it must be one of their keys, normally the first. Servers with keys refuse
	// an emitter's unsigned messages. At least 16 bytes.
	SigningKey []byte

	// Large messages, as the servers' adapter does them (see its Options and README): with
	// LargeMessageBucket set, a message over LargeMessageThreshold is put in S3 (PutObject,
	// within LargeMessageTimeout) and SNS carries a pointer to it, with a stand-in data
	// attribute that Node servers act on harmlessly (they receive nothing; see the adapter's
	// README). Use the servers' bucket and prefix. Defaults: prefix "socketio-sqsadapter/", threshold 180 KiB, timeout 5s.
	S3Client              S3API
	LargeMessageBucket    string
	LargeMessagePrefix    string
	LargeMessageThreshold int
	LargeMessageTimeout   time.Duration
}

// S3API is the part of the S3 client that large messages use; *s3.Client implements it. The
// emitter only calls PutObject; the adapter's S3API has the same methods, so one client value
// serves both.
type S3API interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	GetBucketLifecycleConfiguration(context.Context, *s3.GetBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error)
	PutBucketLifecycleConfiguration(context.Context, *s3.PutBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// ErrInvalidOptions is wrapped by every error about Options.
var ErrInvalidOptions = errors.New("emitter: invalid options")

// ErrTopicNotFound is wrapped by the error of New when the topic does not exist in the
// account and region of the SNS client, and Options.CreateTopic is not set.
var ErrTopicNotFound = errors.New("emitter: topic not found")

// ErrReservedEvent is wrapped by the error of an Emit or ServerSideEmit whose event name the
// Socket.IO server reserves for itself.
var ErrReservedEvent = errors.New("emitter: reserved event name")

// ErrAckNotSupported is wrapped by the error of a call given a function argument: an emitter
// has no queue, so no server or client could answer it.
var ErrAckNotSupported = errors.New("emitter: acknowledgements are not supported: an emitter has no queue to receive them")

// Reserved event names, as the Go Socket.IO server (v3) rejects them: socketReserved for
// emitting to clients (socket.SOCKET_RESERVED_EVENTS), namespaceReserved for serverSideEmit
// (socket.NAMESPACE_RESERVED_EVENTS).
var (
	socketReserved    = []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
	namespaceReserved = []string{"connect", "connection", "new_namespace"}
)

// MessageTooLargeError is returned for a cluster message over the SNS size limit (body and
// attributes included); nothing is sent for it. It is the adapter's type too.
type MessageTooLargeError = wire.MessageTooLargeError

// OpError is the error of one AWS call: Op names it ("sns:CreateTopic", "sns:Publish"),
// Resource is the topic name or ARN. errors.As reaches the AWS error (smithy.APIError) through
// it. It is the adapter's type too.
type OpError = awsop.OpError

// Emitter publishes to the clients and servers of one namespace of the cluster ("/" from New,
// others from Of). Its methods act on every socket of the namespace; To, In and Except narrow
// that down. An Emitter is immutable and safe for concurrent use.
type Emitter struct {
	client    SNSAPI
	store     *offload.Store // nil without LargeMessageBucket
	topicArn  string
	topicName string // signed with every message
	key       []byte // nil: unsigned
	log       *slog.Logger
	nsp       string
}

// New returns an Emitter for the main namespace "/" of the cluster on the topic opts names
// (nil for the defaults). Unless opts.TopicArn is set, it looks the topic up by name within
// ctx (sns:ListTopics; with opts.CreateTopic, sns:CreateTopic creates it if missing), and fails
// with an error wrapping ErrTopicNotFound if it does not exist; the Emitter then publishes to
// that ARN for good. It starts nothing to stop.
func New(ctx context.Context, client SNSAPI, opts *Options) (*Emitter, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	arn := o.TopicArn
	if arn == "" {
		name := o.TopicName
		if name == "" {
			name = DefaultTopicName
		}
		var err error
		if o.CreateTopic {
			arn, err = createTopic(ctx, client, name)
		} else {
			arn, err = findTopic(ctx, client, name)
		}
		if err != nil {
			return nil, err
		}
	}
	o.Logger.Debug("emitter: publishing to topic", "topic", arn, "signed", o.SigningKey != nil)
	return &Emitter{client: client, store: o.largeStore(), topicArn: arn, topicName: arnName(arn), key: o.SigningKey, log: o.Logger, nsp: "/"}, nil
}

// arnName is the last part of an ARN: a topic's name.
func arnName(arn string) string { return arn[strings.LastIndex(arn, ":")+1:] }

// findTopic returns the ARN of the topic called name, looking through every page of
// ListTopics: SNS has no call that finds a topic by name without creating it, and its ARN
// cannot be built without the account id.
func findTopic(ctx context.Context, client SNSAPI, name string) (string, error) {
	pages := sns.NewListTopicsPaginator(client, &sns.ListTopicsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("emitter: finding the topic: %w", awsop.Wrap("sns:ListTopics", name, err))
		}
		for _, t := range page.Topics {
			if t.TopicArn != nil && strings.HasSuffix(*t.TopicArn, ":"+name) {
				return *t.TopicArn, nil
			}
		}
	}
	return "", fmt.Errorf("%w: there is no SNS topic %q in this account and region: check TopicName against the "+
		"servers' Options.TopicName, and the region (AWS_REGION); the servers create the topic when they start, "+
		"or set Options.CreateTopic to create it here", ErrTopicNotFound, name)
}

// createTopic returns the ARN of the topic called name, creating it if it does not exist.
func createTopic(ctx context.Context, client SNSAPI, name string) (string, error) {
	out, err := client.CreateTopic(ctx, &sns.CreateTopicInput{Name: &name})
	if err == nil && (out == nil || out.TopicArn == nil || *out.TopicArn == "") {
		err = errors.New("no topic ARN in the response")
	}
	if err != nil {
		return "", fmt.Errorf("emitter: creating the topic: %w", awsop.Wrap("sns:CreateTopic", name, err))
	}
	return *out.TopicArn, nil
}

// largeStore returns the store the options describe, with defaults; nil without a bucket.
func (o *Options) largeStore() *offload.Store {
	if o.LargeMessageBucket == "" {
		return nil
	}
	return offload.NewStore(o.S3Client, o.LargeMessageBucket, o.LargeMessagePrefix, o.LargeMessageThreshold, o.LargeMessageTimeout)
}

// validate checks the options against the AWS naming rules before any AWS call.
func (o *Options) validate() error {
	if o.SigningKey != nil && len(o.SigningKey) < minSigningKeyLen {
		return fmt.Errorf("%w: SigningKey is %d bytes, want at least %d", ErrInvalidOptions, len(o.SigningKey), minSigningKeyLen)
	}
	if o.TopicName != "" && !wire.ValidTopicName(o.TopicName) {
		return fmt.Errorf("%w: TopicName %q: %s", ErrInvalidOptions, o.TopicName, wire.TopicNameRule)
	}
	if s := o.largeStore(); s != nil {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
		}
	}
	if o.TopicArn == "" {
		return nil
	}
	// arn:partition:sns:region:account:name
	parts := strings.SplitN(o.TopicArn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sns" || !wire.ValidTopicName(parts[5]) {
		return fmt.Errorf("%w: TopicArn %q is not an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>)",
			ErrInvalidOptions, o.TopicArn)
	}
	if o.TopicName != "" && parts[5] != o.TopicName {
		return fmt.Errorf("%w: TopicArn %q names the topic %q, but TopicName is %q",
			ErrInvalidOptions, o.TopicArn, parts[5], o.TopicName)
	}
	return nil
}

// TopicArn returns the ARN of the topic the emitter publishes to.
func (e *Emitter) TopicArn() string { return e.topicArn }

// Namespace returns the namespace the emitter acts on, e.g. "/".
func (e *Emitter) Namespace() string { return e.nsp }

// Of returns an Emitter for another namespace of the same cluster; a name without a leading
// slash gets one, as in Node ("chat" is "/chat"). The receiver is not changed.
func (e *Emitter) Of(nsp string) *Emitter {
	if !strings.HasPrefix(nsp, "/") {
		nsp = "/" + nsp
	}
	c := *e
	c.nsp = nsp
	return &c
}

// To returns an operator that acts on the sockets in any of rooms (a socket id is a room too).
func (e *Emitter) To(rooms ...string) *BroadcastOperator { return e.all().To(rooms...) }

// In is To.
func (e *Emitter) In(rooms ...string) *BroadcastOperator { return e.all().To(rooms...) }

// Except returns an operator that acts on the sockets in none of rooms.
func (e *Emitter) Except(rooms ...string) *BroadcastOperator { return e.all().Except(rooms...) }

// Emit sends an event to every client of the namespace, on every server. Arguments are
// encoded as the adapter encodes them: []byte (and the Socket.IO library's buffers) as binary,
// maps, slices and structs (by their msgpack tags, else json tags) at any depth.
func (e *Emitter) Emit(ctx context.Context, event string, args ...any) error {
	return e.all().Emit(ctx, event, args...)
}

// SocketsJoin makes every socket of the namespace join rooms.
func (e *Emitter) SocketsJoin(ctx context.Context, rooms ...string) error {
	return e.all().SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket of the namespace leave rooms.
func (e *Emitter) SocketsLeave(ctx context.Context, rooms ...string) error {
	return e.all().SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket of the namespace; with close, their underlying
// connections are closed too (and so the client's other namespaces).
func (e *Emitter) DisconnectSockets(ctx context.Context, close bool) error {
	return e.all().DisconnectSockets(ctx, close)
}

// ServerSideEmit sends an event to every server of the cluster: their namespace's listeners for
// event (io.Of(nsp).On(event, ...)) receive args. No server answers: a function argument (an
// acknowledgement callback) is rejected with ErrAckNotSupported.
func (e *Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	if slices.Contains(namespaceReserved, event) {
		return fmt.Errorf("%w: %q is a reserved event name", ErrReservedEvent, event)
	}
	if err := checkArgs(args); err != nil {
		return err
	}
	packet := wire.Values(append([]any{event}, args...))
	return e.publish(ctx, wire.ServerSideEmit, &wire.ServerSideEmitData{Packet: packet})
}

func (e *Emitter) all() *BroadcastOperator { return &BroadcastOperator{e: e} }

// BroadcastOperator acts on the sockets of one namespace that are in any of its rooms (all
// sockets if it has none) and in none of its except rooms. It is immutable: To, In and Except
// return a new operator, so a shared one is safe for concurrent use.
type BroadcastOperator struct {
	e      *Emitter
	rooms  []string
	except []string
}

// To returns an operator that also acts on the sockets in rooms.
func (b *BroadcastOperator) To(rooms ...string) *BroadcastOperator {
	return &BroadcastOperator{e: b.e, rooms: union(b.rooms, rooms), except: b.except}
}

// In is To.
func (b *BroadcastOperator) In(rooms ...string) *BroadcastOperator { return b.To(rooms...) }

// Except returns an operator that also leaves out the sockets in rooms.
func (b *BroadcastOperator) Except(rooms ...string) *BroadcastOperator {
	return &BroadcastOperator{e: b.e, rooms: b.rooms, except: union(b.except, rooms)}
}

// union returns a new, non-nil slice (Node sends empty room lists as []): a, then the
// elements of add that are not in it yet.
func union(a, add []string) []string {
	out := make([]string, 0, len(a)+len(add))
	out = append(out, a...)
	for _, r := range add {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Emit sends an event to the selected clients on every server; see Emitter.Emit for the
// arguments. A function argument (an acknowledgement callback) is rejected with
// ErrAckNotSupported.
func (b *BroadcastOperator) Emit(ctx context.Context, event string, args ...any) error {
	if slices.Contains(socketReserved, event) {
		return fmt.Errorf("%w: %q is a reserved event name", ErrReservedEvent, event)
	}
	if err := checkArgs(args); err != nil {
		return err
	}
	return b.e.publish(ctx, wire.Broadcast, &wire.BroadcastData{
		Packet: wire.Packet{Type: wire.PacketEvent, Data: wire.Values(append([]any{event}, args...))},
		Opts:   b.opts(),
	})
}

// SocketsJoin makes the selected sockets join rooms.
func (b *BroadcastOperator) SocketsJoin(ctx context.Context, rooms ...string) error {
	return b.e.publish(ctx, wire.SocketsJoin, &wire.SocketsJoinLeaveData{Opts: b.opts(), Rooms: union(nil, rooms)})
}

// SocketsLeave makes the selected sockets leave rooms.
func (b *BroadcastOperator) SocketsLeave(ctx context.Context, rooms ...string) error {
	return b.e.publish(ctx, wire.SocketsLeave, &wire.SocketsJoinLeaveData{Opts: b.opts(), Rooms: union(nil, rooms)})
}

// DisconnectSockets disconnects the selected sockets; with close, their underlying connections
// are closed too.
func (b *BroadcastOperator) DisconnectSockets(ctx context.Context, close bool) error {
	return b.e.publish(ctx, wire.DisconnectSockets, &wire.DisconnectSocketsData{Opts: b.opts(), Close: close})
}

// opts are the wire options: Node sends the room lists even when empty, and no flag.
func (b *BroadcastOperator) opts() wire.Options {
	return wire.Options{Rooms: union(nil, b.rooms), Except: union(nil, b.except)}
}

// checkArgs rejects function arguments: msgpack cannot carry them, and an acknowledgement
// could never be answered.
func checkArgs(args []any) error {
	for i, a := range args {
		if a != nil && reflect.TypeOf(a).Kind() == reflect.Func {
			return fmt.Errorf("%w (argument %d is a %T)", ErrAckNotSupported, i+1, a)
		}
	}
	return nil
}

// publish encodes and publishes one cluster message from the emitter, synchronously. Like a
// server's, every message carries a msgId, so that the servers act once on a message that the
// SDK published twice (a retry after a lost response).
func (e *Emitter) publish(ctx context.Context, t wire.Type, data any) error {
	b, err := wire.Encode(data)
	if err != nil {
		return fmt.Errorf("emitter: encoding %s on namespace %q: %w", t, e.nsp, err)
	}
	m := &wire.Message{Type: t, Nsp: e.nsp, UID: wire.EmitterUID, Data: b, ID: wire.NewID()}
	if e.key != nil {
		m.Sign(e.key, e.topicName, time.Now())
	}
	if e.store.Wants(m) {
		if m, err = e.store.Put(ctx, m, e.store.Key(wire.EmitterUID, m.ID)); err != nil {
			return fmt.Errorf("emitter: %s on namespace %q: %w", t, e.nsp, err)
		}
	}
	if err := m.CheckSize(); err != nil {
		return fmt.Errorf("emitter: %w", err)
	}
	out, err := e.client.Publish(ctx, m.PublishInput(e.topicArn))
	if err != nil {
		return fmt.Errorf("emitter: publishing %s on namespace %q: %w", t, e.nsp, awsop.Wrap("sns:Publish", e.topicArn, err))
	}
	if e.log.Enabled(ctx, slog.LevelDebug) {
		var id string
		if out != nil && out.MessageId != nil {
			id = *out.MessageId
		}
		e.log.DebugContext(ctx, "emitter: published", "type", t, "nsp", e.nsp, "bytes", m.Size(), "messageId", id, "msgId", m.ID)
	}
	return nil
}
