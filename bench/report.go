package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/socketio-go/aws-sqs-adapter/internal/nodepeer"
)

// results is results.json. The emulator profile is the top level (settings, endpoint, order,
// sides, at_common_rate, as before the AWS-like profile existed); the AWS-like profile is the
// same shape under aws_like.
type results struct {
	StartedAt       string  `json:"started_at"`
	DurationSeconds float64 `json:"duration_s"`
	// Profiles are the profiles run, in order (a profile not run has no sides).
	Profiles []string `json:"profiles"`
	profileResult
	AWSLike *profileResult `json:"aws_like,omitempty"`
	// Targets are the targets, computed from this run.
	Targets []target  `json:"targets"`
	Machine machine   `json:"machine"`
	Codec   []goBench `json:"codec"`
}

type machine struct {
	NProc     int    `json:"nproc"`
	CPU       string `json:"cpu"`
	Go        string `json:"go"`
	Node      string `json:"node"`
	Emulator  string `json:"emulator"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

func machineInfo() machine {
	m := machine{NProc: runtime.NumCPU(), Go: runtime.Version(), CPU: cpuModel(), LoadStart: loadAvg()}
	root, err := nodepeer.RepoRoot()
	if err != nil {
		return m
	}
	if out, err := exec.Command(filepath.Join(root, "scripts", "node.sh")).Output(); err == nil {
		if v, err := exec.Command(strings.TrimSpace(string(out)), "--version").Output(); err == nil {
			m.Node = strings.TrimSpace(string(v))
		}
	}
	var pkg struct{ Version string }
	if b, err := os.ReadFile(filepath.Join(root, "tools", "emulator", "node_modules", "fauxqs", "package.json")); err == nil {
		if json.Unmarshal(b, &pkg) == nil {
			m.Emulator = "fauxqs " + pkg.Version
		}
	}
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		m.Emulator = "none (AWS)"
	}
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// goBench is one line of `go test -bench -benchmem` output.
type goBench struct {
	Name        string  `json:"name"`
	N           int64   `json:"n"`
	NsPerOp     float64 `json:"ns_op"`
	BytesPerOp  float64 `json:"b_op"`
	AllocsPerOp float64 `json:"allocs_op"`
}

func parseGoBench(path string) ([]goBench, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []goBench
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		g := goBench{Name: f[0]}
		g.N, _ = strconv.ParseInt(f[1], 10, 64)
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				g.NsPerOp = v
			case "B/op":
				g.BytesPerOp = v
			case "allocs/op":
				g.AllocsPerOp = v
			}
		}
		out = append(out, g)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no benchmark lines")
	}
	return out, nil
}

// markdown is results.md: a table and the throughput steps per profile, the targets, the codec
// microbenchmarks, the machine.
func (r *results) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	for _, name := range r.Profiles {
		switch name {
		case profileEmulator:
			r.profileResult.markdown(&b, name)
		case profileAWSLike:
			if r.AWSLike != nil {
				r.AWSLike.markdown(&b, name)
			}
		}
	}
	targetsMarkdown(&b, r.Targets)
	if len(r.Codec) > 0 {
		w("### Codec microbenchmarks (go test -run '^$' -bench . -benchmem, root package)\n\n")
		w("| benchmark | ns/op | B/op | allocs/op |\n|---|---:|---:|---:|\n")
		for _, c := range r.Codec {
			w("| %s | %.0f | %.0f | %.0f |\n", c.Name, c.NsPerOp, c.BytesPerOp, c.AllocsPerOp)
		}
		w("\n")
	}
	m := r.Machine
	w("Machine: %d CPUs (%s), %s, Node %s, %s; load average %s at start, %s at end; run took %.0f s (%s).\n",
		m.NProc, m.CPU, m.Go, m.Node, m.Emulator, m.LoadStart, m.LoadEnd, r.DurationSeconds, r.StartedAt)
	return b.String()
}

// markdown writes the profile's table and its sides' throughput steps.
func (r *profileResult) markdown(b *strings.Builder, profile string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	goR, nodeR := r.Sides["go"], r.Sides["node"]
	val := func(s *sideResult, f func(*metrics) string) string {
		if s == nil {
			return "-"
		}
		return f(&s.Metrics)
	}
	ratio := func(f func(*metrics) float64, higherBetter bool) string {
		if goR == nil || nodeR == nil {
			return ""
		}
		g, n := f(&goR.Metrics), f(&nodeR.Metrics)
		return betterBy(g, n, higherBetter)
	}
	stepsHeading := ""
	if r.Proxy == nil {
		w("## Go adapter vs upstream's transport (Node), same workload, same emulator\n\n")
	} else {
		stepsHeading = "AWS-like: "
		w("## AWS-like profile: the same, through a proxy that adds %g ms + 0..%g ms to every request\n\n", r.Proxy.LatencyMs, r.Proxy.JitterMs)
		w("The proxy (internal/awsproxy) runs in the bench process in front of the same emulator; both sides' SDK clients use it as their endpoint. ")
	}
	w("%d servers per side, %d clients per server (Go Socket.IO clients, websocket), broadcasts from server 0 with a %d-byte pad; ",
		r.Settings.Nodes, r.Settings.ClientsPerNode, r.Settings.PayloadBytes)
	w("AWS requests counted by action in each server's SDK clients.\n\n")
	w("| metric | Go (this adapter) | Node (upstream transport) | Go better by |\n|---|---:|---:|---:|\n")
	thr := func(m *metrics) string {
		s := fmt.Sprintf("%.0f", m.Throughput)
		if m.ThroughputCapped {
			s = ">= " + s
		}
		return s
	}
	w("| throughput, zero-loss broadcasts/s | %s | %s | %s |\n", val(goR, thr), val(nodeR, thr),
		ratio(func(m *metrics) float64 { return m.Throughput }, true))
	f1 := func(get func(*metrics) float64) func(*metrics) string {
		return func(m *metrics) string { return fmt.Sprintf("%.1f", get(m)) }
	}
	rows := []struct {
		name string
		get  func(*metrics) float64
	}{
		{fmt.Sprintf("p50 latency at %.0f/s, ms", r.Settings.LatencyRate), func(m *metrics) float64 { return m.P50ms }},
		{fmt.Sprintf("p99 latency at %.0f/s, ms", r.Settings.LatencyRate), func(m *metrics) float64 { return m.P99ms }},
		{"SNS Publish+PublishBatch requests per 1000 broadcasts (at the throughput rate)", func(m *metrics) float64 { return m.SNSPer1000 }},
		{"SQS ReceiveMessage+DeleteMessageBatch per 1000 deliveries (at the throughput rate)", func(m *metrics) float64 { return m.SQSPer1000 }},
		{"wasted deliveries per 1000 broadcasts (at the throughput rate)", func(m *metrics) float64 { return m.WastedPer1000 }},
		{"idle AWS requests per server per minute", func(m *metrics) float64 { return m.IdlePerNodeMinute }},
	}
	for _, row := range rows {
		w("| %s | %s | %s | %s |\n", row.name, val(goR, f1(row.get)), val(nodeR, f1(row.get)), ratio(row.get, false))
	}
	if g, n := r.AtCommonRate["go"], r.AtCommonRate["node"]; g.Rate > 0 && g.Rate == n.Rate {
		common := []struct {
			name string
			g, n float64
		}{
			{"SNS Publish+PublishBatch requests per 1000 broadcasts", g.SNSPer1000, n.SNSPer1000},
			{"SQS ReceiveMessage+DeleteMessageBatch per 1000 deliveries", g.SQSPer1000, n.SQSPer1000},
			{"wasted deliveries per 1000 broadcasts", g.WastedPer1000, n.WastedPer1000},
		}
		for _, row := range common {
			w("| %s, both at %.0f/s | %.1f | %.1f | %s |\n", row.name, g.Rate, row.g, row.n, betterBy(row.g, row.n, false))
		}
	}
	transient := func(m *metrics) string { return fmt.Sprint(m.TransientFailures) }
	w("| throughput steps failed by a transient AWS error (late redelivery), tried again | %s | %s | |\n",
		val(goR, transient), val(nodeR, transient))
	emit := func(get func(*metrics) *float64) string {
		if goR == nil {
			return "-"
		}
		if v := get(&goR.Metrics); v != nil {
			return fmt.Sprintf("%.1f", *v)
		}
		return "-"
	}
	w("| io.Emit blocks the caller at %.0f/s, p50 / p99 us | %s / %s | - | |\n", r.Settings.LatencyRate,
		emit(func(m *metrics) *float64 { return m.EmitCallP50us }), emit(func(m *metrics) *float64 { return m.EmitCallP99us }))
	w("| the same on one server with the in-memory adapter (no cluster), p50 / p99 us | %s / %s | - | |\n",
		emit(func(m *metrics) *float64 { return m.BaselineEmitCallP50us }), emit(func(m *metrics) *float64 { return m.BaselineEmitCallP99us }))
	w("| io.Emit blocks the caller at the throughput rate, p99 us | %s | - | |\n",
		emit(func(m *metrics) *float64 { return m.EmitCallP99usAtPeak }))
	if len(r.CommonRates) > 0 {
		w("\nAWS requests per broadcast (all actions, all servers, until the queues were empty) at every rate both sides passed, Go / Node: ")
		parts := make([]string, len(r.CommonRates))
		for i, rc := range r.CommonRates {
			parts[i] = fmt.Sprintf("%.0f/s %.3f / %.3f", rc.Rate, rc.Sides["go"].AWSPerBroadcast, rc.Sides["node"].AWSPerBroadcast)
		}
		w("%s.\n", strings.Join(parts, "; "))
	}
	if r.Proxy != nil {
		w("\nIdle window %.0f s in this profile. The proxy saw, by side: ", r.Settings.IdleSeconds)
		parts := []string{}
		for _, name := range r.Order {
			c := r.Proxy.BySide[name]
			parts = append(parts, fmt.Sprintf("%s %d requests (%d abandoned by closing servers during the added latency, %d unanswered long polls)",
				name, c.total(), c.Abandoned, c.UpstreamErrors))
		}
		w("%s.\n", strings.Join(parts, "; "))
	}
	w("\n")
	for _, name := range r.Order {
		s := r.Sides[name]
		w("### %s%s side: throughput search (step %.0f s; pass = every remote client got every broadcast within %.1f s of the last emit, p99 latency <= %.0f ms, emitter at >= %.0f%% of the rate)\n\n",
			stepsHeading, name, r.Settings.StepSeconds, r.Settings.DrainSeconds, r.Settings.MaxP99Ms, r.Settings.MinAchieved*100)
		w("missing: (remote client, broadcast) pairs not received by the verdict; late: of them, received before the queues emptied. ")
		w("SNS req: Publish + PublishBatch; wasted: deliveries dropped on arrival (Go: derived, deliveries minus the other nodes' messages); ")
		w("publish lost: messages the Go adapter gave up on; AWS errors: failed attempts by action (each may have been retried); ")
		proxyCPU := ""
		if r.Proxy != nil {
			proxyCPU = "; and the proxy"
		}
		w("CPU: %% of one core for the emulator, this process (Go servers and all clients on the Go side, clients only on the Node side%s), the Node peers, and everything else on the machine.\n\n", proxyCPU)
		w("| rate/s | achieved/s | sent | missing (of them late) | p50 ms | p99 ms | max ms | SNS req | SQS recv+del | deliveries | wasted | publish lost | AWS errors | CPU%% emulator / bench / peers / others | verdict |\n")
		w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		all := append([]step{s.Latency}, s.Steps...)
		for i, st := range all {
			v := "pass"
			if !st.Pass {
				v = "FAIL"
			}
			if i == 0 {
				v += " (latency phase)"
			}
			if st.Transient {
				v += " (transient: AWS error, rate tried again)"
			}
			lost := "-"
			if name == "go" {
				lost = fmt.Sprint(st.AWS.PublishLost)
			}
			missing := fmt.Sprint(st.Clients.Missing)
			if st.Clients.Late > 0 {
				missing += fmt.Sprintf(" (%d late)", st.Clients.Late)
			}
			w("| %.0f | %.1f | %d | %s | %.1f | %.1f | %.1f | %d | %d | %d | %d | %s | %s | %s | %s |\n", st.Rate, st.Achieved, st.Sent,
				missing, st.Clients.P50ms, st.Clients.P99ms, st.Clients.MaxMs,
				st.AWS.sum("Publish", "PublishBatch"), st.AWS.sum("ReceiveMessage", "DeleteMessageBatch"),
				st.AWS.Deliveries, st.AWS.Wasted, lost, fmtRequests(st.AWS.Failed, "0"), st.CPU, v)
		}
		w("\nIdle %.0f s, all %d servers: %s (CPU%% emulator / bench / peers / others: %s)", s.Idle.Seconds, r.Settings.Nodes,
			fmtRequests(s.Idle.Requests, "no requests"), s.IdleCPU)
		w(". Load average %s at the start of this side, %s at its end; %.0f s.\n\n", s.LoadStart, s.LoadEnd, s.Seconds)
	}
}

func fmtRequests(m map[string]uint64, none string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return none
	}
	return strings.Join(parts, ", ")
}

func (u cpuUse) String() string {
	return fmt.Sprintf("%.0f / %.0f / %.0f / %.0f", u.Emulator, u.Bench, u.Peers, u.Others)
}

// betterBy says how many times better the Go value g is than the Node value n.
func betterBy(g, n float64, higherBetter bool) string {
	switch {
	case g == n:
		return "1.00x"
	case higherBetter && n > 0:
		return fmt.Sprintf("%.2fx", g/n)
	case !higherBetter && g == 0:
		return "Go: none"
	case !higherBetter && n == 0:
		return "Node: none"
	case !higherBetter:
		return fmt.Sprintf("%.2fx", n/g)
	}
	return ""
}
