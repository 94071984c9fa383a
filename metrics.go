package sqsadapter

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// OpenTelemetry metrics, when Options.MeterProvider is set. Without one, nothing here runs: the
// transport keeps its plain clients and a nil *metrics, whose methods return at once.
//
// What is exported:
//   - every Stats field, as an observable counter named by its metric tag (an untagged field
//     still gets one, "sqsadapter.<field in snake case>", so a new counter cannot be forgotten),
//     all read from one snapshot in one callback;
//   - sqsadapter.publish.backlog, sqsadapter.publish.in_flight, sqsadapter.receive.in_flight:
//     observable gauges, read in the same callback;
//   - sqsadapter.publish.duration and sqsadapter.receive.latency: histograms, in seconds.

// meterName is the instrumentation scope: the module path, as OpenTelemetry recommends.
const meterName = "github.com/socketio-go/aws-sqs-adapter"

// Names of the instruments that are not Stats fields.
const (
	metricPublishDuration = "sqsadapter.publish.duration"
	metricReceiveLatency  = "sqsadapter.receive.latency"
	metricBacklog         = "sqsadapter.publish.backlog"
	metricPublishInFlight = "sqsadapter.publish.in_flight"
	metricReceiveInFlight = "sqsadapter.receive.in_flight"
)

// latencyBuckets (seconds) suit AWS round trips and queue waits: the SDK's default buckets are
// meant for milliseconds.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30}

// Attribute keys of the publish histogram: the SNS action, and on failure the AWS error code
// (OpenTelemetry's error.type; "_OTHER" when AWS did not answer).
var (
	attrMethod    = attribute.Key("rpc.method")
	attrErrorType = attribute.Key("error.type")
)

type metrics struct {
	counters        []metric.Int64ObservableCounter // one per Stats field, in field order
	backlog         metric.Int64ObservableGauge
	publishInFlight metric.Int64ObservableGauge
	receiveInFlight metric.Int64ObservableGauge
	publishDuration metric.Float64Histogram
	receiveLatency  metric.Float64Histogram
	registration    metric.Registration

	publishing atomic.Int64 // Publish and PublishBatch calls in flight
	receiving  atomic.Int64 // ReceiveMessage calls in flight
}

// statsInstrument returns the name and unit of the counter of Stats field f: its metric tag
// ("name" or "name,unit"), else a name made from the field's name.
func statsInstrument(f reflect.StructField) (name, unit string) {
	name, unit, _ = strings.Cut(f.Tag.Get("metric"), ",")
	if name == "" {
		name = "sqsadapter." + snakeCase(f.Name)
	}
	if unit == "" {
		unit = "{message}"
	}
	return name, unit
}

// snakeCase turns "LateDeliveries" into "late_deliveries".
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// newMetrics creates the instruments of t and registers the callback that observes the
// counters and gauges; nil when Options.MeterProvider is nil. An instrument the provider
// refuses is logged, and the others still work.
func newMetrics(t *transport) *metrics {
	if t.opts.MeterProvider == nil {
		return nil
	}
	meter := t.opts.MeterProvider.Meter(meterName)
	m := &metrics{}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	stats := reflect.TypeFor[Stats]()
	observables := make([]metric.Observable, 0, stats.NumField()+3)
	for i := range stats.NumField() {
		name, unit := statsInstrument(stats.Field(i))
		c, err := meter.Int64ObservableCounter(name, metric.WithUnit(unit),
			metric.WithDescription("Stats."+stats.Field(i).Name+" of the adapter"))
		note(err)
		m.counters = append(m.counters, c)
		observables = append(observables, c)
	}
	var err error
	m.backlog, err = meter.Int64ObservableGauge(metricBacklog, metric.WithUnit("{message}"),
		metric.WithDescription("Cluster messages waiting for a publish request (what PublishBufferSize bounds)"))
	note(err)
	m.publishInFlight, err = meter.Int64ObservableGauge(metricPublishInFlight, metric.WithUnit("{request}"),
		metric.WithDescription("SNS Publish and PublishBatch requests in flight (at most MaxPublishRequests)"))
	note(err)
	m.receiveInFlight, err = meter.Int64ObservableGauge(metricReceiveInFlight, metric.WithUnit("{request}"),
		metric.WithDescription("SQS ReceiveMessage requests in flight: 1 when idle (the long poll), at most MaxReceiveRequests"))
	note(err)
	observables = append(observables, m.backlog, m.publishInFlight, m.receiveInFlight)
	m.publishDuration, err = meter.Float64Histogram(metricPublishDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of one SNS Publish or PublishBatch call, the SDK's own retries included"),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	note(err)
	m.receiveLatency, err = meter.Float64Histogram(metricReceiveLatency, metric.WithUnit("s"),
		metric.WithDescription("Time from a message's SQS SentTimestamp (SNS handing it to this server's queue) "+
			"to its delivery to the namespace's handlers"),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	note(err)
	m.registration, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.observe(o, t.stats.snapshot(), t.pub.waiting.Load())
		return nil
	}, observables...)
	note(err)
	if err := errors.Join(errs...); err != nil {
		t.log.Warn("sqsadapter: some metrics are not exported", "error", err)
	}
	return m
}

// observe reports the counters and gauges: one snapshot, one callback.
func (m *metrics) observe(o metric.Observer, s Stats, backlog int64) {
	v := reflect.ValueOf(s)
	for i, c := range m.counters {
		if c != nil {
			o.ObserveInt64(c, int64(v.Field(i).Uint()))
		}
	}
	observeGauge(o, m.backlog, backlog)
	observeGauge(o, m.publishInFlight, m.publishing.Load())
	observeGauge(o, m.receiveInFlight, m.receiving.Load())
}

func observeGauge(o metric.Observer, g metric.Int64ObservableGauge, v int64) {
	if g != nil {
		o.ObserveInt64(g, v)
	}
}

// stop unregisters the callback: a closed adapter exports nothing more.
func (m *metrics) stop() {
	if m != nil && m.registration != nil {
		_ = m.registration.Unregister()
	}
}

// systemAttributes are the SQS system attributes a receive asks for: SentTimestamp, for the
// receive latency, only when there are metrics.
func (m *metrics) systemAttributes() []sqstypes.MessageSystemAttributeName {
	if m == nil {
		return nil
	}
	return []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameSentTimestamp}
}

// delivering records the receive latency of m, which is being handed to its handlers now.
// Clocks differ between AWS and this host: a negative latency counts as 0.
func (m *metrics) delivering(msg *wire.Message) {
	if m == nil || m.receiveLatency == nil || msg.Raw == nil {
		return
	}
	ms, err := strconv.ParseInt(msg.Raw.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64)
	if err != nil {
		return
	}
	m.receiveLatency.Record(context.Background(), max(time.Since(time.UnixMilli(ms)).Seconds(), 0))
}

// published records the duration of one publish call.
func (m *metrics) published(ctx context.Context, method string, start time.Time, err error) {
	if m.publishDuration == nil {
		return
	}
	attrs := []attribute.KeyValue{attrMethod.String(method)}
	if err != nil {
		code := "_OTHER"
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) {
			code = apiErr.ErrorCode()
		}
		attrs = append(attrs, attrErrorType.String(code))
	}
	m.publishDuration.Record(context.WithoutCancel(ctx), time.Since(start).Seconds(), metric.WithAttributes(attrs...))
}

// meteredSNS times the publish calls and counts those in flight; the other calls pass through.
type meteredSNS struct {
	SNSAPI
	m *metrics
}

func (c meteredSNS) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return measurePublish(ctx, c.m, "Publish", func() (*sns.PublishOutput, error) { return c.SNSAPI.Publish(ctx, in, o...) })
}

func (c meteredSNS) PublishBatch(ctx context.Context, in *sns.PublishBatchInput, o ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	return measurePublish(ctx, c.m, "PublishBatch", func() (*sns.PublishBatchOutput, error) {
		return c.SNSAPI.PublishBatch(ctx, in, o...)
	})
}

// measurePublish makes one publish call, counted in flight while it runs, and records its
// duration.
func measurePublish[T any](ctx context.Context, m *metrics, method string, call func() (T, error)) (T, error) {
	m.publishing.Add(1)
	defer m.publishing.Add(-1)
	start := time.Now()
	out, err := call()
	m.published(ctx, method, start, err)
	return out, err
}

// meteredSQS counts the receive calls in flight; the other calls pass through.
type meteredSQS struct {
	SQSAPI
	m *metrics
}

func (c meteredSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	c.m.receiving.Add(1)
	defer c.m.receiving.Add(-1)
	return c.SQSAPI.ReceiveMessage(ctx, in, o...)
}

// instrument puts the metered clients in t, when there are metrics.
func (m *metrics) instrument(t *transport) {
	if m == nil {
		return
	}
	t.sns = meteredSNS{t.sns, m}
	t.sqs = meteredSQS{t.sqs, m}
}
