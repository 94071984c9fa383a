package sqsadapter

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Options configure an AdapterBuilder. The zero value of every field means its documented
// default, so &Options{} (or nil) is a working configuration.
type Options struct {
	// TopicName is the SNS topic every node of the cluster publishes to and subscribes to.
	// Default "socket-io", as upstream's code does (upstream's README says "socket.io", which SNS
	// rejects: topic names allow only letters, digits, hyphens and underscores).
	TopicName string
	// TopicTags are applied when the topic is created.
	TopicTags map[string]string

	// QueuePrefix starts the name of this node's queue: "<QueuePrefix>-<16 random hex digits>".
	// Default "socket-io".
	QueuePrefix string
	// QueueName, when set, names this node's queue from its random id instead of QueuePrefix.
	QueueName func(id string) string
	// QueueTags are applied when the queue is created.
	QueueTags map[string]string

	// HeartbeatInterval is how often a node that has published nothing else announces itself
	// while it counts a Node server (upstream's servers expect it every 5 s by default); between
	// servers of this adapter only, GoHeartbeatInterval applies. Default 5s.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout is how long a Node server may stay silent before this node drops it from
	// the cluster (GoHeartbeatTimeout applies to servers of this adapter); it must be longer
	// than HeartbeatInterval. Default twice HeartbeatInterval, which is 10s for the default
	// interval (upstream's 5s / 10s): setting only HeartbeatInterval keeps the ratio. Every
	// server of a cluster, Node ones included, needs the same values.
	HeartbeatTimeout time.Duration
	// GoHeartbeatInterval is how often a node announces itself while every other node it counts
	// in the namespace runs this adapter (their messages carry a msgId; Node servers' do not).
	// While it counts a Node server it announces itself every HeartbeatInterval instead, which
	// upstream's servers expect. Every heartbeat reaches every server's queue, so this interval
	// sets an idle cluster's bill: N servers cost N × (N − 1) deliveries per interval. Default
	// 3 × HeartbeatInterval (15 s); set it to HeartbeatInterval for one interval toward all.
	GoHeartbeatInterval time.Duration
	// GoHeartbeatTimeout is how long a node of this adapter may stay silent before the others
	// drop it; Node servers are dropped after HeartbeatTimeout. It is how long a crashed Go server
	// stays counted (a server that closes says so and is dropped at once). Default
	// 2 × GoHeartbeatInterval, at least HeartbeatTimeout (30 s for the defaults).
	GoHeartbeatTimeout time.Duration
	// HeartbeatGather is how long the poll waits before its next receive after a receive that
	// brought only heartbeats while no other message came for a second: nodes send their
	// heartbeats at the same wall-clock instants (multiples of the interval), and the wait lets
	// the others' arrive, to be received ten to a request rather than one each. A message
	// arriving in an idle cluster right after a heartbeat waits up to this long; one arriving
	// while messages flow does not wait. Default 250ms; negative receives at once.
	HeartbeatGather time.Duration
	// RequestTimeout bounds serverSideEmit with acknowledgements, and fetchSockets or broadcasts
	// with acknowledgements that set no timeout of their own. Default 5s, as upstream.
	RequestTimeout time.Duration

	// DisableSubscriptionFilter subscribes this node's queue to every message of the topic, as
	// upstream does. By default a filter policy keeps out the node's own messages and responses
	// meant for other nodes, which it would receive (and pay for) only to drop.
	DisableSubscriptionFilter bool

	// KMSKeyID, when set, encrypts this node's queue with that KMS key (SSE-KMS); the key policy
	// must let sns.amazonaws.com use it. Otherwise the queue asks for SQS-managed encryption
	// (SSE-SQS).
	KMSKeyID string

	// PublishBufferSize is how many cluster messages may wait for SNS. Publishing never blocks
	// the emitting goroutine: a message that finds the buffer full is dropped and reported
	// (ErrPublishBufferFull, Stats.PublishDropped). Default 10000.
	PublishBufferSize int

	// ReorderWindow is how long a message of a Go server that arrived ahead of an earlier one
	// of the same server is held, waiting for the earlier one, so that every server acts on
	// another's messages in the order it sent them (SNS and SQS standard keep no order). A
	// message later than that is delivered when it arrives, out of order, and counted in
	// Stats.LateDeliveries; none is dropped. Default 1s: on a loaded two-core machine,
	// concurrent PublishBatch requests of one server were seen to complete up to 450 ms apart,
	// and the window only costs time when a message is really missing (SQS hands a message back
	// after its 5 s visibility timeout). Negative delivers in arrival order.
	ReorderWindow time.Duration

	// RecoveryMaxPackets bounds the broadcasts each namespace keeps for connection state
	// recovery (the server's ConnectionStateRecovery option; without it nothing is kept): the
	// oldest go first, and a client whose last packet went is not recovered. Packets older than
	// the server's MaxDisconnectionDuration go anyway. Default 50000 (see the README for the
	// memory it takes).
	RecoveryMaxPackets int

	// MaxPublishRequests bounds the PublishBatch requests in flight at once. An idle server
	// sends one at a time; a backlog of full batches uses more. Default 8.
	MaxPublishRequests int
	// MaxReceiveRequests bounds the receive requests in flight at once. An idle server keeps one
	// long poll; receives that come back full start more, and they stop when the backlog is
	// gone. Default 8.
	MaxReceiveRequests int

	// SubscriptionCheckInterval is how often the node checks that its subscription still
	// exists, and makes its queue and subscription again if AWS lost them (a queue deleted out of
	// band is noticed at once by polling). Default 1 minute; negative disables the check.
	SubscriptionCheckInterval time.Duration

	// OrphanCleanupInterval is how often the node removes the queues and subscriptions that
	// nodes of this cluster left behind when they died without closing (see CleanupOrphans).
	// Default 10 minutes; negative disables it.
	OrphanCleanupInterval time.Duration

	// Logger receives what the adapter has to say. Default slog.Default().
	Logger *slog.Logger
	// OnError, when set, is called with every error that has no caller to return to: a failed
	// publish, a failed poll, a failed clean-up. Errors of AWS calls are *OpError values. It is
	// called from the adapter's goroutines and must not block. Errors are logged either way.
	OnError func(error)

	// InitTimeout bounds Init when its context has no deadline, so that an endpoint that
	// accepts connections and never answers fails Init with the AWS call it was waiting for,
	// instead of hanging it. Default 30s.
	InitTimeout time.Duration

	// ShutdownTimeout bounds the clean-up that closing the last namespace runs (flushing
	// publishes, unsubscribing, deleting the queue) when the Socket.IO server closes the adapter,
	// which gives it no context. Default 10s. Close(ctx) uses its ctx instead.
	ShutdownTimeout time.Duration

	// Security: what of a socket's handshake leaves this server, and who may speak on the
	// topic. See the README's Security section.

	// SendHandshakeSecrets puts every socket's whole handshake in the fetchSockets answers this
	// server publishes, as upstream does. By default the Cookie, Authorization,
	// Proxy-Authorization and Set-Cookie headers (and RedactHeaders) stay on this server, the
	// handshake's auth object is sent as {} (or with HandshakeAuthKeys only), and the query
	// parameters in RedactQuery are removed from query and url. It cannot be combined with the
	// three options that narrow that down.
	SendHandshakeSecrets bool
	// HandshakeAuthKeys are the keys of a socket's handshake auth object that fetchSockets
	// answers carry (e.g. "name"); the others stay on this server. Default none.
	HandshakeAuthKeys []string
	// RedactHeaders are request headers (any case) that stay on this server besides Cookie,
	// Authorization, Proxy-Authorization and Set-Cookie, e.g. "X-Api-Key".
	RedactHeaders []string
	// RedactQuery are query parameters that stay on this server (removed from the handshake's
	// query and url), e.g. "token".
	RedactQuery []string

	// SigningKeys, when set, make this server sign every message it publishes (HMAC-SHA256 with
	// the first key, in a "sig" attribute) and act only on messages signed with one of the keys,
	// within SignatureMaxAge, once: a principal that may publish to the topic but holds no key
	// can no longer broadcast, disconnect sockets or join them to rooms as a server. Refused
	// messages are counted (Stats), reported once a minute per sender (*RejectedMessageError)
	// and deleted. Every key is 16 bytes or more (32 random bytes recommended); every server and
	// emitter of the cluster shares them. To rotate without losing a message, deploy
	// [old, new] everywhere, then [new, old], then [new]. Node servers cannot sign: see
	// AcceptUnsigned.
	SigningKeys [][]byte
	// SignatureMaxAge is how far a signature's time may be from this server's clock, either
	// way, for its message to be acted on; msgIds are remembered that long to refuse replays. It
	// must cover the publish retries (30 s), the time a message may wait in a queue (60 s) and
	// the servers' clock differences. Default 2 minutes (DefaultSignatureMaxAge).
	SignatureMaxAge time.Duration
	// AcceptUnsigned makes a server with SigningKeys act on unsigned messages too (counted in
	// Stats.Unsigned); wrongly signed, expired and replayed ones are still refused. It is for
	// clusters with Node servers, which cannot sign, and for turning signing on in a running
	// cluster (set it with the keys on every server, then clear it). It gives up what signing
	// protects: anyone who may publish to the topic can act as a server again.
	AcceptUnsigned bool

	// TopicPolicy, when set, makes Init set the topic's access policy (sns:SetTopicAttributes,
	// replacing the one the topic had): publishing and subscribing are denied to other accounts
	// and, with TopicPolicy.Servers, to every principal not listed. Every server sets it, so
	// give them all the same value.
	TopicPolicy *TopicPolicy

	// Production: metrics (metrics.go), the dead-letter queue (deadletter.go).

	// MeterProvider, when set, exports the adapter's metrics through OpenTelemetry: every Stats
	// field as a counter (sqsadapter.messages.received, ...), the publish backlog and the
	// requests in flight as gauges, and two histograms in seconds: sqsadapter.publish.duration
	// (one SNS Publish or PublishBatch call) and sqsadapter.receive.latency (from a message's
	// SQS SentTimestamp to its delivery to the handlers). Default nil: no metrics, and nothing
	// is measured.
	MeterProvider metric.MeterProvider
	// DeadLetterQueueURL, when set, is an SQS queue (made by you, not the adapter) that keeps
	// every received message the adapter drops as bad: not a cluster message, a payload of the
	// wrong shape, a handler that panicked. Each is sent there with sqs:SendMessage, with its
	// original body and attributes plus sqsadapter-reason and sqsadapter-sender attributes.
	// Sending never holds up receiving: what cannot be sent is dropped and counted in
	// Stats.DeadLetterFailures. Default none: dropped messages are only logged and counted.
	DeadLetterQueueURL string

	// Large messages (see largemessage.go and the README's "Large messages"). With
	// LargeMessageBucket set, a cluster message over LargeMessageThreshold is put in S3 and SNS
	// carries a pointer to it; without, such a message fails with MessageTooLargeError.

	// S3Client is the S3 client for large messages; *s3.Client implements S3API.
	S3Client S3API
	// LargeMessageBucket is the bucket that holds large messages; it must exist. Every server
	// (and emitter) of the cluster needs the same bucket and prefix.
	LargeMessageBucket string
	// LargeMessagePrefix starts every object key. Default "socketio-sqsadapter/".
	LargeMessagePrefix string
	// LargeMessageThreshold is the largest message, in bytes as SNS counts them (body and
	// attributes), that is still published inline. Default 180 KiB, which works on AWS (limit
	// 256 KiB) and on the fauxqs emulator (which counts Binary attributes at their base64
	// length: about 192 KiB of data); on AWS it may be raised up to 256 KiB.
	LargeMessageThreshold int
	// LargeMessageTimeout bounds each PutObject and GetObject. A receiver fetches a large
	// message before it hands it on, so this is also how long one message can hold up one
	// poller. Default 5s.
	LargeMessageTimeout time.Duration
	// LargeMessageLifecycle makes Init add a rule to the bucket's lifecycle configuration that
	// expires the objects under LargeMessagePrefix after one day (other rules are kept); needs
	// s3:GetLifecycleConfiguration and s3:PutLifecycleConfiguration. Without it, set such a rule
	// yourself: nothing else deletes the objects.
	LargeMessageLifecycle bool
}

// Defaults.
const (
	DefaultTopicName         = "socket-io"
	DefaultQueuePrefix       = "socket-io"
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultHeartbeatTimeout  = 10 * time.Second // for DefaultHeartbeatInterval: an unset timeout is twice the interval
	DefaultHeartbeatGather   = 250 * time.Millisecond
	DefaultRequestTimeout    = 5 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultInitTimeout       = 30 * time.Second
	DefaultPublishBufferSize = 10_000
	DefaultSubscriptionCheck = time.Minute
	DefaultOrphanCleanup     = 10 * time.Minute
	DefaultReorderWindow     = time.Second
	DefaultMaxRequests       = 8
	DefaultRecoveryPackets   = 50_000
)

// ErrInvalidOptions is wrapped by every error about options.
var ErrInvalidOptions = errors.New("sqsadapter: invalid options")

// withDefaults returns a copy of o with every zero field set to its default.
func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	orDefault(&c.TopicName, DefaultTopicName)
	orDefault(&c.QueuePrefix, DefaultQueuePrefix)
	orDefault(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	// An unset timeout follows the interval, so that HeartbeatInterval alone is a valid setting.
	// A negative interval fails validate: keep the plain default then.
	if c.HeartbeatTimeout == 0 && c.HeartbeatInterval > 0 && c.HeartbeatInterval <= math.MaxInt64/2 {
		c.HeartbeatTimeout = 2 * c.HeartbeatInterval
	}
	orDefault(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	c.goHeartbeatDefaults()
	orDefault(&c.HeartbeatGather, DefaultHeartbeatGather)
	orDefault(&c.RequestTimeout, DefaultRequestTimeout)
	orDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	orDefault(&c.InitTimeout, DefaultInitTimeout)
	orDefault(&c.PublishBufferSize, DefaultPublishBufferSize)
	orDefault(&c.SubscriptionCheckInterval, DefaultSubscriptionCheck)
	orDefault(&c.OrphanCleanupInterval, DefaultOrphanCleanup)
	orDefault(&c.ReorderWindow, DefaultReorderWindow)
	orDefault(&c.MaxPublishRequests, DefaultMaxRequests)
	orDefault(&c.MaxReceiveRequests, DefaultMaxRequests)
	orDefault(&c.SignatureMaxAge, DefaultSignatureMaxAge)
	orDefault(&c.RecoveryMaxPackets, DefaultRecoveryPackets)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	largeMessageDefaults(&c)
	return c
}

// orDefault sets *v to def when it holds its zero value.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

var awsNameChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// AWS limits on names and tags.
const (
	maxQueueNameLen = 80
	maxTags         = 50
	maxTagKeyLen    = 128
	maxTagValueLen  = 256
)

// validate checks options (with defaults applied) against the AWS rules the emulators do not
// enforce, so a bad value fails before any AWS call with the rule it breaks.
func (o *Options) validate() error {
	if !wire.ValidTopicName(o.TopicName) {
		return fmt.Errorf("%w: TopicName %q: %s", ErrInvalidOptions, o.TopicName, wire.TopicNameRule)
	}
	// The longest name the prefix can yield: the prefix, a hyphen, 16 hex digits.
	if o.QueueName == nil {
		if n := len(o.QueuePrefix) + 1 + 16; n > maxQueueNameLen || !awsNameChars.MatchString(o.QueuePrefix) {
			return fmt.Errorf("%w: QueuePrefix %q: SQS queue names are 1 to %d letters, digits, hyphens or underscores, "+
				"and the prefix is followed by 17 characters, so it may have at most %d",
				ErrInvalidOptions, o.QueuePrefix, maxQueueNameLen, maxQueueNameLen-17)
		}
	}
	if err := validateTags("TopicTags", o.TopicTags, maxTags); err != nil {
		return err
	}
	// One queue tag is the adapter's own.
	if err := validateTags("QueueTags", o.QueueTags, maxTags-1); err != nil {
		return err
	}
	for name, d := range map[string]time.Duration{
		"HeartbeatInterval": o.HeartbeatInterval, "HeartbeatTimeout": o.HeartbeatTimeout,
		"GoHeartbeatInterval": o.GoHeartbeatInterval, "GoHeartbeatTimeout": o.GoHeartbeatTimeout,
		"RequestTimeout": o.RequestTimeout, "ShutdownTimeout": o.ShutdownTimeout, "InitTimeout": o.InitTimeout,
	} {
		if d < 0 {
			return fmt.Errorf("%w: %s is negative (%v)", ErrInvalidOptions, name, d)
		}
	}
	if o.MaxPublishRequests < 0 || o.MaxReceiveRequests < 0 {
		return fmt.Errorf("%w: MaxPublishRequests (%d) and MaxReceiveRequests (%d) may not be negative",
			ErrInvalidOptions, o.MaxPublishRequests, o.MaxReceiveRequests)
	}
	if o.PublishBufferSize < 0 || o.RecoveryMaxPackets < 0 {
		return fmt.Errorf("%w: PublishBufferSize (%d) and RecoveryMaxPackets (%d) may not be negative",
			ErrInvalidOptions, o.PublishBufferSize, o.RecoveryMaxPackets)
	}
	if err := validateDeadLetterQueueURL(o); err != nil {
		return err
	}
	if err := o.validateLargeMessages(); err != nil {
		return err
	}
	if o.HeartbeatTimeout <= o.HeartbeatInterval {
		return fmt.Errorf("%w: HeartbeatTimeout (%v) must be longer than HeartbeatInterval (%v), "+
			"or live nodes are dropped between two heartbeats", ErrInvalidOptions, o.HeartbeatTimeout, o.HeartbeatInterval)
	}
	if err := o.validateGoHeartbeats(); err != nil {
		return err
	}
	return o.validateSecurity()
}

// validateQueueName checks a name produced by Options.QueueName.
func validateQueueName(name string) error {
	if len(name) > maxQueueNameLen || !awsNameChars.MatchString(name) {
		return fmt.Errorf("%w: QueueName returned %q: SQS queue names are 1 to %d letters, digits, hyphens or underscores",
			ErrInvalidOptions, name, maxQueueNameLen)
	}
	return nil
}

func validateTags(field string, tags map[string]string, limit int) error {
	if len(tags) > limit {
		return fmt.Errorf("%w: %s: at most %d tags, got %d", ErrInvalidOptions, field, limit, len(tags))
	}
	for k, v := range tags {
		if k == "" || len(k) > maxTagKeyLen {
			return fmt.Errorf("%w: %s: tag key %q must be 1 to %d characters", ErrInvalidOptions, field, k, maxTagKeyLen)
		}
		if len(v) > maxTagValueLen {
			return fmt.Errorf("%w: %s: value of tag %q is longer than %d characters", ErrInvalidOptions, field, k, maxTagValueLen)
		}
	}
	return nil
}
