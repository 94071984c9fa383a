package main

import (
	"fmt"
	"strings"
)

// The targets of the issue "A transport built for AWS", checked against every run.
const (
	targetAWSThroughputVsNode   = 8   // Go / Node throughput, AWS-like profile, at least
	targetAWSVsEmulatorPct      = 70  // Go AWS-like / Go emulator throughput, %, at least
	targetIdlePerNodeMinute     = 43  // Go idle requests per server-minute, emulator profile, at most
	targetEmitCallP99us         = 500 // io.Emit p99 at the latency rate, us, under
	targetRequestsPerBroadcastX = 1   // Go / Node AWS requests per broadcast at every common rate, at most
)

// target is one of the targets, computed from the run: Value compared with Limit by Op.
type target struct {
	Profile string `json:"profile"`
	Name    string `json:"name"`
	// Value is nil when the run has not what the target needs (a profile or side not run, no
	// common rate).
	Value  *float64 `json:"value"`
	Op     string   `json:"op"` // ">=", "<=", "<"
	Limit  float64  `json:"limit"`
	Unit   string   `json:"unit"` // "x" (ratio), "%", "ms", "us", "requests"
	Met    *bool    `json:"met"`  // nil when not evaluated, or inconclusive (Value set, see Detail)
	Detail string   `json:"detail"`
}

func newTarget(profile, name, op string, limit float64, unit string) target {
	return target{Profile: profile, Name: name, Op: op, Limit: limit, Unit: unit}
}

// set records value and whether it meets the target.
func (t *target) set(v float64, detail string, args ...any) {
	t.Value = &v
	met := false
	switch t.Op {
	case ">=":
		met = v >= t.Limit
	case "<=":
		met = v <= t.Limit
	case "<":
		met = v < t.Limit
	}
	t.Met = &met
	t.Detail = fmt.Sprintf(detail, args...)
}

// boundedBy makes a ">=" ratio target inconclusive (Met nil, Value kept) when a throughput in it
// is only a lower bound (the search's -max-rate passed) and the verdict depends on it: a capped
// numerator that misses the target, a capped denominator that meets it.
func (t *target) boundedBy(numCapped, denomCapped bool) {
	if t.Met == nil || t.Op != ">=" {
		return
	}
	if (numCapped && !*t.Met) || (denomCapped && *t.Met) {
		t.Met = nil
		t.Detail += "; inconclusive: a throughput reached -max-rate and is only a lower bound (raise -max-rate)"
	}
}

// skip records why the target was not evaluated.
func (t *target) skip(why string) { t.Detail = why }

// profile returns the named profile's result, nil if it did not run.
func (r *results) profile(name string) *profileResult {
	switch name {
	case profileEmulator:
		for _, p := range r.Profiles {
			if p == profileEmulator {
				return &r.profileResult
			}
		}
	case profileAWSLike:
		return r.AWSLike
	}
	return nil
}

// both returns the profile's Go and Node sides, or why they are not there.
func (r *results) both(profile string) (goR, nodeR *sideResult, why string) {
	p := r.profile(profile)
	if p == nil {
		return nil, nil, fmt.Sprintf("not evaluated: the %s profile did not run", profile)
	}
	goR, nodeR = p.Sides["go"], p.Sides["node"]
	if goR == nil || nodeR == nil {
		return nil, nil, "not evaluated: the Go and the Node side must both run"
	}
	return goR, nodeR, ""
}

func throughputText(m metrics) string {
	s := fmt.Sprintf("%.0f/s", m.Throughput)
	if m.ThroughputCapped {
		s = ">= " + s + " (-max-rate passed)"
	}
	return s
}

// targets computes the targets from the run.
func (r *results) targets() []target {
	var out []target

	t := newTarget(profileAWSLike, "Go throughput / Node throughput", ">=", targetAWSThroughputVsNode, "x")
	if goR, nodeR, why := r.both(profileAWSLike); why != "" {
		t.skip(why)
	} else if nodeR.Metrics.Throughput == 0 {
		// No ratio: met when Go passed any rate.
		met := goR.Metrics.Throughput > 0
		t.Met, t.Detail = &met, fmt.Sprintf("Node passed no rate of the search, Go %s", throughputText(goR.Metrics))
	} else {
		t.set(round2(goR.Metrics.Throughput/nodeR.Metrics.Throughput), "Go %s, Node %s",
			throughputText(goR.Metrics), throughputText(nodeR.Metrics))
		t.boundedBy(goR.Metrics.ThroughputCapped, nodeR.Metrics.ThroughputCapped)
	}
	out = append(out, t)

	t = newTarget(profileAWSLike, "Go AWS-like throughput / Go emulator throughput", ">=", targetAWSVsEmulatorPct, "%")
	aws, emu := r.profile(profileAWSLike), r.profile(profileEmulator)
	switch {
	case aws == nil || emu == nil:
		t.skip("not evaluated: needs both profiles")
	case aws.Sides["go"] == nil || emu.Sides["go"] == nil:
		t.skip("not evaluated: needs the Go side in both profiles")
	case emu.Sides["go"].Metrics.Throughput == 0:
		t.skip("not evaluated: Go passed no rate in the emulator profile")
	default:
		ga, ge := aws.Sides["go"].Metrics, emu.Sides["go"].Metrics
		t.set(round1(ga.Throughput/ge.Throughput*100), "AWS-like %s, emulator %s", throughputText(ga), throughputText(ge))
		t.boundedBy(ga.ThroughputCapped, ge.ThroughputCapped)
	}
	out = append(out, t)

	for _, profile := range []string{profileEmulator, profileAWSLike} {
		rate := r.Settings.LatencyRate
		if p := r.profile(profile); p != nil {
			rate = p.Settings.LatencyRate
		}
		for _, pct := range []string{"p50", "p99"} {
			t := newTarget(profile, fmt.Sprintf("%s latency at %.0f/s, Go no worse than Node", pct, rate), "<=", 0, "ms")
			goR, nodeR, why := r.both(profile)
			if why != "" {
				t.skip(why)
				out = append(out, t)
				continue
			}
			g, n := goR.Metrics.P50ms, nodeR.Metrics.P50ms
			if pct == "p99" {
				g, n = goR.Metrics.P99ms, nodeR.Metrics.P99ms
			}
			t.Limit = n
			t.set(g, "Go %.1f ms, Node %.1f ms", g, n)
			out = append(out, t)
		}

		t := newTarget(profile, "AWS requests per broadcast (all servers), Go / Node, at every rate both pass, highest", "<=", targetRequestsPerBroadcastX, "x")
		if _, _, why := r.both(profile); why != "" {
			t.skip(why)
		} else if p := r.profile(profile); len(p.CommonRates) == 0 {
			t.skip("not evaluated: no rate that both sides passed")
		} else {
			worst, worstRatio, failing := p.CommonRates[0], -1.0, []string{}
			for _, rc := range p.CommonRates {
				g, n := rc.Sides["go"].AWSPerBroadcast, rc.Sides["node"].AWSPerBroadcast
				ratio := g / max(n, 1e-9)
				if ratio > worstRatio {
					worst, worstRatio = rc, ratio
				}
				if g > n {
					failing = append(failing, fmt.Sprintf("%.0f/s", rc.Rate))
				}
			}
			detail := fmt.Sprintf("%d rates compared; highest at %.0f/s: Go %.3f, Node %.3f requests per broadcast",
				len(p.CommonRates), worst.Rate, worst.Sides["go"].AWSPerBroadcast, worst.Sides["node"].AWSPerBroadcast)
			if len(failing) > 0 {
				detail += "; Go more at " + strings.Join(failing, ", ")
			}
			t.set(round2(worstRatio), "%s", detail)
		}
		out = append(out, t)
	}

	t = newTarget(profileEmulator, "Go idle AWS requests per server-minute", "<=", targetIdlePerNodeMinute, "requests")
	if p := r.profile(profileEmulator); p == nil || p.Sides["go"] == nil {
		t.skip("not evaluated: needs the Go side of the emulator profile")
	} else {
		s := p.Sides["go"]
		t.set(round1(s.Metrics.IdlePerNodeMinute), "%s in %.0f s", fmtRequests(s.Idle.Requests, "no requests"), s.Idle.Seconds)
	}
	out = append(out, t)

	for _, profile := range []string{profileEmulator, profileAWSLike} {
		p := r.profile(profile)
		rate := r.Settings.LatencyRate
		if p != nil {
			rate = p.Settings.LatencyRate
		}
		t := newTarget(profile, fmt.Sprintf("io.Emit p99 at %.0f/s", rate), "<", targetEmitCallP99us, "us")
		if p == nil || p.Sides["go"] == nil || p.Sides["go"].Metrics.EmitCallP99us == nil {
			t.skip("not evaluated: needs the Go side of this profile")
		} else {
			m := p.Sides["go"].Metrics
			t.set(*m.EmitCallP99us, "p50 %.1f us; in-memory adapter baseline p99 %s us", *m.EmitCallP50us, fmtOpt(m.BaselineEmitCallP99us))
		}
		out = append(out, t)
	}
	return out
}

func fmtOpt(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v)
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

func fmtValue(v float64, unit string) string {
	switch unit {
	case "x":
		return fmt.Sprintf("%.2fx", v)
	case "%":
		return fmt.Sprintf("%.0f%%", v)
	case "ms":
		return fmt.Sprintf("%.1f ms", v)
	case "us":
		return fmt.Sprintf("%.0f us", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// targetsMarkdown writes the targets as a list: met / not met / not evaluated, with the numbers.
func targetsMarkdown(b *strings.Builder, ts []target) {
	if len(ts) == 0 {
		return
	}
	fmt.Fprintf(b, "### Targets (issue \"A transport built for AWS\"), from this run\n\n")
	for _, t := range ts {
		verdict := "not evaluated"
		if t.Value != nil {
			verdict = "inconclusive"
		}
		if t.Met != nil {
			verdict = "not met"
			if *t.Met {
				verdict = "met"
			}
		}
		want := fmt.Sprintf("%s %s", t.Op, fmtValue(t.Limit, t.Unit))
		value := "-"
		if t.Value != nil {
			value = fmtValue(*t.Value, t.Unit)
		}
		if strings.HasSuffix(t.Name, "no worse than Node") {
			want = "<= Node's"
		}
		fmt.Fprintf(b, "- **%s**: %s: %s: %s (target %s; %s)\n", verdict, t.Profile, t.Name, value, want, t.Detail)
	}
	b.WriteString("\n")
}
