package sqsadapter

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// receiveRecorder serves the batches it is given and records what each receive asked for.
type receiveRecorder struct {
	*fakeAWS
	batches chan []sqstypes.Message

	mu     sync.Mutex
	system [][]sqstypes.MessageSystemAttributeName
}

func (q *receiveRecorder) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	q.system = append(q.system, in.MessageSystemAttributeNames)
	q.mu.Unlock()
	select {
	case batch := <-q.batches:
		return &sqs.ReceiveMessageOutput{Messages: batch}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (q *receiveRecorder) askedFor() [][]sqstypes.MessageSystemAttributeName {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.system
}

// collect reads the adapter's metrics, by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != meterName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// gaugeValue is the single value of an int64 gauge, or -1 when it has none.
func gaugeValue(m metricdata.Metrics) int64 {
	g, ok := m.Data.(metricdata.Gauge[int64])
	if !ok || len(g.DataPoints) != 1 {
		return -1
	}
	return g.DataPoints[0].Value
}

// Every Stats field is a counter (a new field too, without a list to update), the gauges and the
// two histograms report what happened, and a closed adapter stops reporting.
func TestMetricsExportEveryStatsFieldGaugesAndLatencies(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	f := &fakeAWS{}
	q := &receiveRecorder{fakeAWS: f, batches: make(chan []sqstypes.Message, 1)}
	io, b := fakeServerWith(t, f, q, nil, func(o *Options) { o.MeterProvider = provider })
	handled := make(chan struct{}, 2)
	_ = io.Sockets().On("ping", func(...any) { handled <- struct{}{} })
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}

	io.Emit("hello")
	eventually(t, 5*time.Second, func() bool { return b.Stats().Published >= 2 }, "the announcement and the broadcast are published")
	f.mu.Lock()
	f.fail = map[string]error{"Publish": apiError("AuthorizationError")}
	f.mu.Unlock()
	io.Emit("refused")
	eventually(t, 5*time.Second, func() bool { return b.Stats().PublishFailures == 1 }, "the refused publish is counted")

	sent := strconv.FormatInt(time.Now().Add(-1500*time.Millisecond).UnixMilli(), 10)
	batch := []sqstypes.Message{serverSideEmitMessage(t, "m1", "ping"), serverSideEmitMessage(t, "m2", "ping")}
	for i := range batch {
		batch[i].Attributes = map[string]string{"SentTimestamp": sent}
	}
	q.batches <- batch
	for range batch {
		select {
		case <-handled:
		case <-time.After(5 * time.Second):
			t.Fatal("the messages were not delivered")
		}
	}

	var got map[string]metricdata.Metrics
	eventually(t, 5*time.Second, func() bool {
		got = collect(t, reader)
		return gaugeValue(got[metricReceiveInFlight]) == 1 // the long poll, waiting again
	}, "one receive in flight")
	stats := b.Stats()

	fields := reflect.TypeFor[Stats]()
	values := reflect.ValueOf(stats)
	for i := range fields.NumField() {
		name, unit := statsInstrument(fields.Field(i))
		m, ok := got[name]
		if !ok {
			t.Errorf("Stats.%s: no metric %s", fields.Field(i).Name, name)
			continue
		}
		sum, ok := m.Data.(metricdata.Sum[int64])
		if !ok || !sum.IsMonotonic || len(sum.DataPoints) != 1 || m.Unit != unit || !strings.HasPrefix(name, "sqsadapter.") {
			t.Errorf("%s: %+v, unit %q", name, m.Data, m.Unit)
			continue
		}
		if v := sum.DataPoints[0].Value; uint64(v) != values.Field(i).Uint() {
			t.Errorf("%s = %d, Stats.%s = %d", name, v, fields.Field(i).Name, values.Field(i).Uint())
		}
	}
	if stats.Received != 2 || stats.Published < 2 || stats.PublishFailures != 1 {
		t.Errorf("stats %+v", stats)
	}
	if v := gaugeValue(got[metricBacklog]); v != 0 {
		t.Errorf("backlog %d, want 0", v)
	}
	if v := gaugeValue(got[metricPublishInFlight]); v != 0 {
		t.Errorf("publish requests in flight %d, want 0", v)
	}

	publish, ok := got[metricPublishDuration].Data.(metricdata.Histogram[float64])
	if !ok || got[metricPublishDuration].Unit != "s" {
		t.Fatalf("%s: %+v", metricPublishDuration, got[metricPublishDuration])
	}
	var succeeded, failed uint64
	for _, dp := range publish.DataPoints {
		// The announcement and the first broadcast may leave together, in one PublishBatch.
		if method, _ := dp.Attributes.Value("rpc.method"); method.AsString() != "Publish" && method.AsString() != "PublishBatch" {
			t.Errorf("publish duration attributes %v", dp.Attributes.ToSlice())
		}
		if code, isErr := dp.Attributes.Value("error.type"); isErr {
			if code != attribute.StringValue("AuthorizationError") {
				t.Errorf("error.type %v", code)
			}
			failed += dp.Count
		} else {
			succeeded += dp.Count
		}
	}
	if succeeded < 1 || failed != 1 {
		t.Errorf("publish durations: %d successful calls, %d failed, want >= 1 and 1", succeeded, failed)
	}

	latency, ok := got[metricReceiveLatency].Data.(metricdata.Histogram[float64])
	if !ok || len(latency.DataPoints) != 1 || latency.DataPoints[0].Count != 2 || got[metricReceiveLatency].Unit != "s" {
		t.Fatalf("%s: %+v", metricReceiveLatency, got[metricReceiveLatency])
	}
	if low, _ := latency.DataPoints[0].Min.Value(); low < 1.4 || low > 10 {
		t.Errorf("receive latency %v s, want about 1.5 s (SentTimestamp 1.5 s ago)", low)
	}
	for _, asked := range q.askedFor() {
		if len(asked) != 1 || asked[0] != sqstypes.MessageSystemAttributeNameSentTimestamp {
			t.Fatalf("receive asked for %v, want SentTimestamp", asked)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sqsadapter.messages.received", metricBacklog, metricReceiveInFlight} {
		if m, ok := collect(t, reader)[name]; ok {
			t.Errorf("%s still reported after Close: %+v", name, m.Data)
		}
	}
}

// Without a MeterProvider nothing is measured: the clients are the caller's, and receives ask for
// no system attribute.
func TestNoMeterProviderMeasuresNothing(t *testing.T) {
	f := &fakeAWS{}
	q := &receiveRecorder{fakeAWS: f, batches: make(chan []sqstypes.Message, 1)}
	_, b := fakeServerWith(t, f, q, nil, nil)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return len(q.askedFor()) > 0 }, "a receive")
	if asked := q.askedFor()[0]; asked != nil {
		t.Fatalf("receive asked for %v", asked)
	}
	if b.metered() {
		t.Fatal("metrics without a MeterProvider")
	}
}

func TestStatsFieldsWithoutATagStillGetAName(t *testing.T) {
	type withNew struct {
		Tagged      uint64 `metric:"sqsadapter.x.y,{request}"`
		BrandNewOne uint64
	}
	typ := reflect.TypeFor[withNew]()
	if name, unit := statsInstrument(typ.Field(0)); name != "sqsadapter.x.y" || unit != "{request}" {
		t.Fatalf("tagged: %s %s", name, unit)
	}
	if name, unit := statsInstrument(typ.Field(1)); name != "sqsadapter.brand_new_one" || unit != "{message}" {
		t.Fatalf("untagged: %s %s", name, unit)
	}
}

// Against the endpoint under test: receives ask for SentTimestamp in a form it understands, and
// the latency of what the other node sends is measured.
func TestReceiveLatencyIsMeasuredOnALiveQueue(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	opts := testOptions(t)
	plain := *opts
	opts.MeterProvider = provider
	nodes := []*node{startNode(t, &plain), startNode(t, opts)}
	waitServerCount(t, nodes, "/", 2)
	eventually(t, 10*time.Second, func() bool {
		h, ok := collect(t, reader)[metricReceiveLatency].Data.(metricdata.Histogram[float64])
		return ok && len(h.DataPoints) == 1 && h.DataPoints[0].Count > 0
	}, "the receive latency of node 0's heartbeats is recorded")
	h := collect(t, reader)[metricReceiveLatency].Data.(metricdata.Histogram[float64])
	if high, _ := h.DataPoints[0].Max.Value(); high > 10 {
		t.Fatalf("receive latency up to %v s on an idle emulator", high)
	}
}
