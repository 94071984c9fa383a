package nodepeer

import (
	"context"
	"testing"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// TestBenchCommands covers what the benchmark (bench/) uses: Launch, emitRate, and awsStats,
// which only a peer started with PEER_AWS_STATS=1 answers.
func TestBenchCommands(t *testing.T) {
	testsupport.RequireAWS(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := testsupport.UniqueName("nodepeer")
	a := Start(t, testConfig(topic, "peer-a"))
	cfg := testConfig(topic, "peer-b")
	cfg.Env = []string{"PEER_AWS_STATS=1"}
	b, err := Launch(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})

	if _, err := a.Call(ctx, "awsStats", nil); err == nil {
		t.Fatal("awsStats answered without PEER_AWS_STATS=1")
	}
	mustCall(ctx, t, a, "connectClient", map[string]any{"name": "c1"})
	mustCall(ctx, t, a, "clientOn", map[string]any{"name": "c1", "ev": "tick"})
	testsupport.WaitServerCount(t, serverCountWait, "/", 2, a.ServerCounter("/"), b.ServerCounter("/"))

	var sent struct {
		Sent      int
		ElapsedMs float64
	}
	if err := b.CallInto(ctx, "emitRate", map[string]any{
		"event": "tick", "rate": 50, "count": 5, "payload": map[string]any{"step": 7},
	}, &sent); err != nil {
		t.Fatal(err)
	}
	// Five broadcasts due 20 ms apart: the last one 80 ms after the first.
	if sent.Sent != 5 || sent.ElapsedMs < 75 || sent.ElapsedMs > 1000 {
		t.Fatalf("emitRate: %+v", sent)
	}
	for seq := range 5 {
		ev, err := a.WaitEvent(ctx, func(e Event) bool { return e.Name == "client" && e.Str("ev") == "tick" })
		if err != nil {
			t.Fatal(err)
		}
		arg, _ := ev.Value("args").([]any)[0].(map[string]any)
		if arg["step"] != float64(7) || arg["seq"] != float64(seq) {
			t.Fatalf("tick %d: %s", seq, ev.Raw)
		}
		if ts, _ := arg["ts"].(float64); time.Since(time.UnixMilli(int64(ts))).Abs() > 30*time.Second {
			t.Fatalf("tick %d: ts %v is not the emit time", seq, arg["ts"])
		}
	}

	// b received its own five broadcasts back from the topic and dropped them.
	var stats struct {
		Requests              map[string]int
		MessagesReceived      int
		OwnDropped            int
		OtherRequesterDropped int
	}
	for {
		if err := b.CallInto(ctx, "awsStats", nil, &stats); err != nil {
			t.Fatal(err)
		}
		if stats.OwnDropped >= 5 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("awsStats: %+v", stats)
		case <-time.After(50 * time.Millisecond):
		}
	}
	r := stats.Requests
	// Provisioning, then at least the five broadcasts and the initial heartbeats.
	for _, action := range []string{"CreateTopic", "CreateQueue", "GetQueueAttributes", "SetQueueAttributes", "Subscribe"} {
		if r[action] != 1 {
			t.Errorf("%s: %d requests, want 1 (%v)", action, r[action], r)
		}
	}
	if r["Publish"] < 7 || r["ReceiveMessage"] < 1 || r["DeleteMessageBatch"] < 1 || stats.MessagesReceived < stats.OwnDropped {
		t.Errorf("awsStats: %+v", stats)
	}
}
