package sqsadapter

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// Unit tests of the heartbeat timing: aligned instants, skipping, gathering, and the timeouts
// of Go and Node peers.

func TestAlignedBeatIsTheSameInstantOnEveryServer(t *testing.T) {
	base := time.Unix(1_700_000_010, 0) // a multiple of 5, 10 and 15 s
	for _, offset := range []time.Duration{0, time.Millisecond, 2 * time.Second, 5*time.Second - time.Nanosecond} {
		if got := alignedBeat(base.Add(offset), 5*time.Second); !got.Equal(base) {
			t.Errorf("alignedBeat(base+%v) = %v, want %v", offset, got, base)
		}
	}
	o := (&Options{}).withDefaults()
	if d := o.untilNextBeat(base.Add(4 * time.Second)); d != time.Second {
		t.Errorf("untilNextBeat 4 s after an instant = %v, want 1s", d)
	}
	o = (&Options{HeartbeatInterval: 10 * time.Second, GoHeartbeatInterval: 15 * time.Second}).withDefaults()
	if d := o.untilNextBeat(base.Add(11 * time.Second)); d != 4*time.Second {
		t.Errorf("untilNextBeat picks the nearer of two intervals: %v, want 4s", d)
	}
}

// beatDue sends once per aligned instant, skips an instant shortly after another message, and
// never leaves more than 1.5 intervals between two messages.
func TestBeatDueOncePerInstantAndNeverTooLongSilent(t *testing.T) {
	const interval = 5 * time.Second
	base := time.Unix(1_700_000_010, 0)
	var last time.Time
	lastPublish := base.Add(-time.Hour)
	var sent []time.Time
	publish := func(at time.Time) { lastPublish = at }
	// The loop wakes at every aligned instant (plus a little) and now and then in between; the
	// server also publishes a message of its own at 12.6 s.
	for _, at := range []float64{5, 5.001, 7, 10.002, 12.6, 15.001, 20.001, 25.003} {
		now := base.Add(time.Duration(at * float64(time.Second)))
		if at == 12.6 {
			publish(now)
			continue
		}
		var due bool
		last, due = beatDue(now, last, lastPublish, interval)
		if due {
			sent = append(sent, alignedBeat(now, interval))
			publish(now)
		}
	}
	want := []time.Duration{5, 10, 20, 25} // 15 s skipped: something left 2.4 s before it
	if len(sent) != len(want) {
		t.Fatalf("heartbeats at %v, want at %v s", sent, want)
	}
	for i, w := range want {
		if got := sent[i].Sub(base); got != w*time.Second {
			t.Errorf("heartbeat %d at %v, want %v", i, got, w*time.Second)
		}
	}
	// The longest silence the skip allows: a message just after half an interval before an
	// instant, then the next instant's heartbeat.
	_, due := beatDue(base.Add(5*time.Second), time.Time{}, base.Add(2500*time.Millisecond+time.Nanosecond), interval)
	if due {
		t.Fatal("a message within half an interval before the instant did not skip it")
	}
	if silence := 2*interval - (2500*time.Millisecond + time.Nanosecond); silence > interval*3/2 {
		t.Fatalf("silence up to %v, more than 1.5 intervals", silence)
	}
}

func TestHeartbeatGatherWaitsOnlyWhenIdle(t *testing.T) {
	hb := func(n int) []sqstypes.Message {
		out := make([]sqstypes.Message, n)
		for i := range out {
			out[i] = sqstypes.Message{Body: aws.String(heartbeatBody)}
		}
		return out
	}
	broadcast := []sqstypes.Message{{Body: aws.String("3")}}
	const wait = 250 * time.Millisecond
	now := time.Unix(1_700_000_000, 0)
	var g heartbeatGather
	if d := g.pause(hb(1), now, wait); d != wait {
		t.Fatalf("one heartbeat in an idle queue: pause %v, want %v", d, wait)
	}
	if d := g.pause(hb(maxBatch), now, wait); d != 0 {
		t.Fatalf("a full batch: pause %v, want none (more are there)", d)
	}
	if d := g.pause(nil, now, wait); d != 0 {
		t.Fatalf("an empty receive: pause %v", d)
	}
	if d := g.pause(append(hb(2), broadcast...), now, wait); d != 0 {
		t.Fatalf("a batch with a broadcast: pause %v", d)
	}
	if d := g.pause(hb(1), now.Add(500*time.Millisecond), wait); d != 0 {
		t.Fatalf("heartbeats 0.5 s after a broadcast: pause %v, want none while messages flow", d)
	}
	if d := g.pause(hb(1), now.Add(quietBeforeGather+time.Millisecond), wait); d != wait {
		t.Fatalf("heartbeats once the queue is quiet: pause %v, want %v", d, wait)
	}
	if d := g.pause(hb(1), now.Add(time.Hour), -1); d != 0 {
		t.Fatalf("a negative HeartbeatGather: pause %v", d)
	}
}

func TestGoHeartbeatDefaultsAndValidation(t *testing.T) {
	o := (&Options{}).withDefaults()
	if o.GoHeartbeatInterval != 15*time.Second || o.GoHeartbeatTimeout != 30*time.Second || o.HeartbeatGather != DefaultHeartbeatGather {
		t.Fatalf("defaults: GoHeartbeatInterval %v, GoHeartbeatTimeout %v, HeartbeatGather %v",
			o.GoHeartbeatInterval, o.GoHeartbeatTimeout, o.HeartbeatGather)
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	// One interval toward all: the Go timeout is at least the Node one.
	o = (&Options{GoHeartbeatInterval: DefaultHeartbeatInterval}).withDefaults()
	if o.GoHeartbeatTimeout != DefaultHeartbeatTimeout {
		t.Fatalf("GoHeartbeatTimeout %v, want %v", o.GoHeartbeatTimeout, DefaultHeartbeatTimeout)
	}
	for _, bad := range []Options{
		{GoHeartbeatInterval: time.Second},                                            // shorter than HeartbeatInterval
		{GoHeartbeatInterval: 20 * time.Second, GoHeartbeatTimeout: 20 * time.Second}, // not longer than its interval
		{HeartbeatTimeout: 40 * time.Second, GoHeartbeatTimeout: 35 * time.Second},    // shorter than HeartbeatTimeout
	} {
		o := bad.withDefaults()
		if err := o.validate(); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "GoHeartbeat") {
			t.Errorf("%+v: validate = %v, want ErrInvalidOptions about GoHeartbeat*", bad, err)
		}
	}
}

// A peer whose messages carry this adapter's msgId is a Go server, kept for GoHeartbeatTimeout;
// any other for HeartbeatTimeout. Counting a Node server brings this node's interval down to
// HeartbeatInterval.
func TestGoAndNodePeersExpireAfterTheirOwnTimeouts(t *testing.T) {
	io, b := fakeServerWith(t, &fakeAWS{}, &fakeAWS{}, nil, func(o *Options) {
		o.HeartbeatInterval, o.HeartbeatTimeout = time.Hour, 2*time.Hour
		o.GoHeartbeatInterval, o.GoHeartbeatTimeout = 3*time.Hour, 6*time.Hour
	})
	a := io.Sockets().Adapter().(*namespaceAdapter)
	const goPeer, nodePeer = "aaaaaaaa00000001", "bbbbbbbb00000002"
	hb := func(uid, id string) *sqstypes.Message {
		m := sqsMessage(t, "sqs-"+uid+id, &wire.Message{Type: wire.Heartbeat, Nsp: "/", UID: uid, ID: id}, nil)
		return &m
	}
	b.handleSQSMessage(hb(goPeer, wire.SequencedID("aaaaaaaa", wire.AllNodes, 1)))
	testsupport.WaitServerCount(t, 5*time.Second, "/", 2, a)
	if got := a.heartbeatInterval(); got != 3*time.Hour {
		t.Fatalf("with Go peers only: interval %v, want GoHeartbeatInterval", got)
	}
	b.handleSQSMessage(hb(nodePeer, "")) // a Node server's message has no msgId
	testsupport.WaitServerCount(t, 5*time.Second, "/", 3, a)
	if got := a.heartbeatInterval(); got != time.Hour {
		t.Fatalf("counting a Node server: interval %v, want HeartbeatInterval", got)
	}

	a.expireNodes(time.Now().Add(2*time.Hour + time.Minute)) // past the Node timeout only
	if got := a.ServerCount(); got != 2 {
		t.Fatalf("after the Node timeout: ServerCount %d, want 2 (the Go peer stays)", got)
	}
	if got := a.heartbeatInterval(); got != 3*time.Hour {
		t.Fatalf("the Node server gone: interval %v, want GoHeartbeatInterval again", got)
	}
	a.expireNodes(time.Now().Add(6*time.Hour + time.Minute))
	if got := a.ServerCount(); got != 1 {
		t.Fatalf("after the Go timeout: ServerCount %d, want 1", got)
	}
}

// heartbeatTimes records when the heartbeats were published.
type heartbeatTimes struct {
	*fakeAWS
	at chan time.Time
}

func (h *heartbeatTimes) Publish(ctx context.Context, in *sns.PublishInput, o ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if *in.Message == heartbeatBody {
		h.at <- time.Now()
	}
	return h.fakeAWS.Publish(ctx, in, o...)
}

// An idle server alone sends one heartbeat per GoHeartbeatInterval, at its aligned instants.
func TestIdleServerBeatsAtTheAlignedInstants(t *testing.T) {
	const interval, goInterval = 200 * time.Millisecond, 600 * time.Millisecond
	h := &heartbeatTimes{fakeAWS: &fakeAWS{}, at: make(chan time.Time, 100)}
	_, b := fakeServerWith(t, h, h.fakeAWS, nil, func(o *Options) {
		o.HeartbeatInterval, o.HeartbeatTimeout = interval, 2*interval
		o.GoHeartbeatInterval = goInterval
	})
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	var beats []time.Time
	for end := time.After(4 * goInterval); len(beats) < 10; {
		select {
		case at := <-h.at:
			beats = append(beats, at)
			continue
		case <-end:
		}
		break
	}
	if len(beats) < 3 || len(beats) > 4 {
		t.Fatalf("%d heartbeats in %v, want one per %v", len(beats), 4*goInterval, goInterval)
	}
	for _, at := range beats {
		if late := at.Sub(alignedBeat(at, goInterval)); late > 100*time.Millisecond {
			t.Errorf("heartbeat %v after its aligned instant", late)
		}
	}
}
