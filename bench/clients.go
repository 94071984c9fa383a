package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	client "github.com/zishang520/socket.io/clients/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// benchEvent is the event every broadcast of the benchmark carries. Its one argument is
// {step, seq, ts, pad}: ts is the emit time in ms since the epoch (fractional), taken by the
// emitting server; the clients run in this process on the same machine, so clocks agree.
const benchEvent = "bench"

// tracker records what the clients receive, for the current step only.
type tracker struct {
	mu      sync.Mutex
	step    int
	count   int
	remote  []bool   // by client index: the client is connected to another node than the emitter
	got     [][]bool // by client, by seq
	n       []int    // by client: distinct messages received
	lat     []float64
	dups    int
	stale   int // messages of another step (a failed step's backlog)
	invalid int
	closed  bool // the step's verdict is taken: later arrivals count as late
	late    int  // remote arrivals after the verdict, before the next step
}

func newTracker(remote []bool) *tracker {
	return &tracker{remote: remote, step: -1}
}

// begin starts step with count broadcasts.
func (t *tracker) begin(step, count int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.step, t.count = step, count
	t.got = make([][]bool, len(t.remote))
	for i := range t.got {
		t.got[i] = make([]bool, count)
	}
	t.n = make([]int, len(t.remote))
	t.lat = make([]float64, 0, count*len(t.remote))
	t.dups, t.stale, t.invalid, t.late, t.closed = 0, 0, 0, 0, false
}

func (t *tracker) record(clientIdx int, args []any) {
	now := float64(time.Now().UnixNano()) / 1e6
	var m map[string]any
	if len(args) > 0 {
		m, _ = args[0].(map[string]any)
	}
	step, ok1 := m["step"].(float64)
	seq, ok2 := m["seq"].(float64)
	ts, ok3 := m["ts"].(float64)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !ok1 || !ok2 || !ok3:
		t.invalid++
	case int(step) != t.step:
		t.stale++
	case int(seq) < 0 || int(seq) >= t.count:
		t.invalid++
	case t.got[clientIdx][int(seq)]:
		t.dups++
	case t.closed:
		t.got[clientIdx][int(seq)] = true
		if t.remote[clientIdx] {
			t.late++
		}
	default:
		t.got[clientIdx][int(seq)] = true
		t.n[clientIdx]++
		if t.remote[clientIdx] {
			t.lat = append(t.lat, now-ts)
		}
	}
}

// complete reports whether every remote client has received the first sent broadcasts.
func (t *tracker) complete(sent int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.remote {
		if r && t.n[i] < sent {
			return false
		}
	}
	return true
}

// stepResult is what the clients saw of one step.
type stepResult struct {
	Expected int `json:"expected_per_client"`
	Missing  int `json:"missing"` // remote (client, broadcast) pairs not received in time
	// MissingByClient is Missing by client index (clients of node 0 first, so always 0).
	MissingByClient []int `json:"missing_by_client"`
	// Late counts the missing pairs that arrived after the verdict, before the queues emptied.
	Late      int     `json:"late"`
	Dups      int     `json:"duplicates"`
	Stale     int     `json:"stale"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	Samples   int     `json:"latency_samples"`
	lat       []float64
	remoteCnt int
}

// result takes the verdict of the step: what every client has received by now.
func (t *tracker) result(sent int) stepResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	r := stepResult{Expected: sent, Dups: t.dups, Stale: t.stale, MissingByClient: make([]int, len(t.remote))}
	for i, remote := range t.remote {
		if !remote {
			continue
		}
		r.remoteCnt++
		for seq := 0; seq < sent && seq < t.count; seq++ {
			if !t.got[i][seq] {
				r.Missing++
				r.MissingByClient[i]++
			}
		}
	}
	r.lat = append([]float64(nil), t.lat...)
	sort.Float64s(r.lat)
	r.Samples = len(r.lat)
	r.P50ms, r.P99ms = percentile(r.lat, 50), percentile(r.lat, 99)
	if len(r.lat) > 0 {
		r.MaxMs = r.lat[len(r.lat)-1]
	}
	return r
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// benchClient is one real Go Socket.IO client (websocket transport).
type benchClient struct {
	sock *client.Socket
}

// dialClient connects client idx to url (testsupport.Connect: it works around the races of the
// Go client v3.0.1), recording what it receives in tr.
func dialClient(url string, idx int, tr *tracker) (*benchClient, error) {
	s, err := testsupport.Connect(context.Background(), url, "/", nil, func(s *client.Socket) {
		_ = s.On(benchEvent, func(args ...any) { tr.record(idx, args) })
	})
	if err != nil {
		return nil, fmt.Errorf("client %d: %w", idx, err)
	}
	return &benchClient{sock: s}, nil
}

func (c *benchClient) close() { c.sock.Disconnect() }

// lateArrivals returns how many remote pairs arrived after result.
func (t *tracker) lateArrivals() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.late
}

// silent returns the clients that received nothing of the current step.
func (t *tracker) silent() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int
	for i, n := range t.n {
		if n == 0 {
			out = append(out, i)
		}
	}
	return out
}
