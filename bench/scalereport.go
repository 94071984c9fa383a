package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// What -scale writes: scale.json (scaleResults) and scale.md (its markdown).

type scaleResults struct {
	StartedAt       string       `json:"started_at"`
	DurationSeconds float64      `json:"duration_s"`
	Machine         machine      `json:"machine"`
	Config          scaleConfig  `json:"config"`
	Runs            []scaleRun   `json:"runs"`
	SocketsHeap     *socketsHeap `json:"sockets_heap,omitempty"`
}

type scaleRun struct {
	Side  string `json:"side"`
	Nodes int    `json:"nodes"`
	// Idle is the whole cluster's idle window; IdlePerServerMinute the same per server and minute.
	Idle                window       `json:"idle"`
	IdlePerServerMinute perMinute    `json:"idle_per_server_minute"`
	FetchMs             latencyStats `json:"fetch_sockets_ms"`
	P50ms               float64      `json:"broadcast_p50_ms"`
	P99ms               float64      `json:"broadcast_p99_ms"`
	Missing             int          `json:"broadcasts_missing"`
	// DeliveriesPerBroadcast: the latency step's deliveries, less the idle window's rate (the
	// heartbeats) over the step's length, per broadcast.
	DeliveriesPerBroadcast float64 `json:"deliveries_per_broadcast"`
	JoinSeconds            float64 `json:"join_s"`
	DropSeconds            float64 `json:"drop_killed_s"`
	HeapPerServerMB        float64 `json:"heap_per_server_mb,omitempty"` // Go: this process's heap / N
	LoadStart              string  `json:"loadavg_start"`
	LoadEnd                string  `json:"loadavg_end"`
	Seconds                float64 `json:"seconds"`
}

// perMinute is a window's requests per server and minute, by action and in all.
type perMinute struct {
	Total    float64            `json:"total"`
	ByAction map[string]float64 `json:"by_action"`
}

type latencyStats struct {
	P50 float64 `json:"p50"`
	Max float64 `json:"max"`
	N   int     `json:"n"`
}

func perServerMinute(w window, servers int) perMinute {
	p := perMinute{ByAction: map[string]float64{}}
	if w.Seconds <= 0 || servers <= 0 {
		return p
	}
	scale := 60 / w.Seconds / float64(servers)
	for k, v := range w.Requests {
		p.ByAction[k] = round1(float64(v) * scale)
	}
	p.Total = round1(float64(w.total()) * scale)
	return p
}

// deliveriesPerBroadcast takes the idle rate of deliveries (heartbeats) out of a step's.
func deliveriesPerBroadcast(step, idle window, sent int) float64 {
	if sent <= 0 {
		return 0
	}
	heartbeats := 0.0
	if idle.Seconds > 0 {
		heartbeats = float64(idle.Deliveries) / idle.Seconds * step.Seconds
	}
	return round1(math.Max(0, float64(step.Deliveries)-heartbeats) / float64(sent))
}

func summarize(ms []float64) latencyStats {
	if len(ms) == 0 {
		return latencyStats{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	return latencyStats{P50: round1(percentile(s, 50)), Max: round1(s[len(s)-1]), N: len(s)}
}

// idleActions are the columns of the idle table, in order; any other action goes to "other".
var idleActions = []struct{ action, short string }{
	{"Publish", "pub"}, {"PublishBatch", "pubB"}, {"ReceiveMessage", "recv"},
	{"DeleteMessageBatch", "del"}, {"DeleteMessage", "del1"},
}

func (r *scaleResults) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Scale: this adapter (go) and upstream's transport (node) at N servers\n\n")
	fmt.Fprintf(&b, "Run %s, %.0f s, on %s (%d cores), load %s at the start, %s at the end.\n",
		r.StartedAt, r.DurationSeconds, r.Machine.CPU, r.Machine.NProc, r.Machine.LoadStart, r.Machine.LoadEnd)
	fmt.Fprintf(&b, "Idle window %.0f s; broadcasts %.0f/s for %.0f s from server 0, one client per server; fetchSockets %d times from server 0.\n",
		r.Config.IdleSeconds, r.Config.LatencyRate, r.Config.LatencySecs, r.Config.FetchRepeats)
	if r.Config.GoHeartbeatInterval != 0 || r.Config.HeartbeatGather != 0 {
		fmt.Fprintf(&b, "Go options changed: GoHeartbeatInterval %v, HeartbeatGather %v (0: default).\n", r.Config.GoHeartbeatInterval, r.Config.HeartbeatGather)
	}
	b.WriteString("\n| side | N | idle req/server-min | pub | pubB | recv | del | other | join s | drop killed s | fetchSockets p50/max ms | bcast p50/p99 ms | deliveries/bcast | heap/server MB |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		pm := run.IdlePerServerMinute
		other := pm.Total
		cells := make([]string, 0, 4)
		for _, a := range idleActions {
			other -= pm.ByAction[a.action]
			if a.short == "del1" {
				continue
			}
			cells = append(cells, fmt.Sprintf("%.1f", pm.ByAction[a.action]))
		}
		heap := "–"
		if run.HeapPerServerMB > 0 {
			heap = fmt.Sprintf("%.1f", run.HeapPerServerMB)
		}
		fmt.Fprintf(&b, "| %s | %d | **%.1f** | %s | %.1f | %.1f | %.1f | %.1f/%.1f | %.1f/%.1f | %.1f | %s |\n",
			run.Side, run.Nodes, pm.Total, strings.Join(cells, " | "), math.Max(0, round1(other)), run.JoinSeconds, run.DropSeconds,
			run.FetchMs.P50, run.FetchMs.Max, run.P50ms, run.P99ms, run.DeliveriesPerBroadcast, heap)
	}
	b.WriteString("\nidle: all AWS requests of the idle cluster per server and minute (pub: Publish, pubB: PublishBatch, recv: ReceiveMessage, del: DeleteMessageBatch; other: the rest, e.g. the subscription check). join: from the new server's Init until every server, the newcomer included, counts N+1. drop: from SIGKILL of that server until every other server counts N. heap/server: this process's Go heap after a collection with the N servers and their clients, divided by N.\n")
	if h := r.SocketsHeap; h != nil {
		fmt.Fprintf(&b, "\nHeap of one Go server with the adapter: %.1f MB, %.1f MB with %d sockets (%.1f KB per socket; %s; connected in %.1f s).\n",
			h.HeapBeforeMB, h.HeapWithMB, h.Sockets, h.PerSocketKB, h.How, h.ConnectSeconds)
	}
	return b.String()
}

const scaleUsage = "Go and Node clusters of several sizes: idle requests, membership join/drop times, fetchSockets, broadcast latency, Go heap; writes scale.json and scale.md"

// parseSizes reads a list like "3,10,30" ("" is none).
func parseSizes(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 {
			return nil, fmt.Errorf("cluster size %q: want a number of servers, 2 or more", f)
		}
		out = append(out, n)
	}
	return out, nil
}
