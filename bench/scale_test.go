package main

import (
	"strings"
	"testing"
)

// Smoke test of the scale run's arithmetic and report, without AWS.
func TestScaleArithmeticAndReport(t *testing.T) {
	idle := window{Seconds: 30, Requests: map[string]uint64{"Publish": 6, "ReceiveMessage": 12, "DeleteMessageBatch": 9}, Deliveries: 60}
	pm := perServerMinute(idle, 3)
	if pm.Total != 18 || pm.ByAction["ReceiveMessage"] != 8 {
		t.Fatalf("per server-minute %+v", pm)
	}
	step := window{Seconds: 10, Deliveries: 420}
	if got := deliveriesPerBroadcast(step, idle, 200); got != 2 { // (420 - 2/s × 10 s) / 200
		t.Fatalf("deliveries per broadcast %v, want 2", got)
	}
	if s := summarize([]float64{30, 10, 20}); s.P50 != 20 || s.Max != 30 || s.N != 3 {
		t.Fatalf("summarize %+v", s)
	}
	if _, err := parseSizes("3, 10,1"); err == nil {
		t.Fatal("a cluster of 1 accepted")
	}
	if got, err := parseSizes("3,10,"); err != nil || len(got) != 2 {
		t.Fatalf("parseSizes: %v %v", got, err)
	}
	r := scaleResults{Runs: []scaleRun{{Side: "go", Nodes: 3, IdlePerServerMinute: pm}}, SocketsHeap: &socketsHeap{Sockets: 10}}
	if md := r.markdown(); !strings.Contains(md, "| go | 3 | **18.0** |") || !strings.Contains(md, "10 sockets") {
		t.Fatalf("markdown:\n%s", md)
	}
}
