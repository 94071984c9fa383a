package main

import (
	"context"
	"fmt"
	"log"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/socketio-go/aws-sqs-adapter/internal/awsproxy"
)

// The profiles: the same workload on both sides against the endpoint as it is (the emulator
// answers in about 1 ms), and through a proxy in this process that adds AWS's 15-25 ms to
// every request (internal/awsproxy), so that the figures say what a real region would do to
// both transports.
const (
	profileEmulator = "emulator"
	profileAWSLike  = "aws-like"
)

// parseProfiles checks the -profiles list: known names, no repeats, and an emulator on
// loopback for the AWS-like profile (the proxy fronts only a local endpoint).
func parseProfiles(list, endpoint string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			continue
		case name != profileEmulator && name != profileAWSLike:
			return nil, fmt.Errorf("-profiles: unknown profile %q (%s, %s)", name, profileEmulator, profileAWSLike)
		case slices.Contains(out, name):
			return nil, fmt.Errorf("-profiles: %s twice", name)
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-profiles: none given")
	}
	if slices.Contains(out, profileAWSLike) {
		u, err := url.Parse(endpoint)
		if endpoint == "" || err != nil || u.Scheme != "http" {
			return nil, fmt.Errorf("the %s profile puts a proxy in front of a local emulator: set AWS_ENDPOINT_URL "+
				"(scripts/with-emulator.sh does), or run -profiles %s", profileAWSLike, profileEmulator)
		}
	}
	return out, nil
}

// profileResult is one profile's run: both sides, and their costs compared at the same rates.
// The emulator profile's fields are the top level of results.json (as before there were
// profiles); the AWS-like profile's are under "aws_like".
type profileResult struct {
	// Proxy is the AWS-like profile's proxy: its settings and what it forwarded (nil for the
	// emulator profile).
	Proxy    *proxyInfo `json:"proxy,omitempty"`
	Settings settings   `json:"settings"`
	// Endpoint is the endpoint the servers used: the emulator, or the proxy in front of it.
	Endpoint     string                 `json:"endpoint"`
	Order        []string               `json:"order"`
	Sides        map[string]*sideResult `json:"sides"`
	AtCommonRate map[string]costAt      `json:"at_common_rate,omitempty"` // by side
	// CommonRates are the costs at every rate that all sides passed (the latency phase's
	// included), lowest first.
	CommonRates []rateCosts `json:"common_rates,omitempty"`
	Seconds     float64     `json:"seconds"`
}

// rateCosts are the sides' costs at one rate that all of them passed.
type rateCosts struct {
	Rate  float64           `json:"rate_per_s"`
	Sides map[string]costAt `json:"sides"`
}

// proxyInfo is the AWS-like profile's proxy.
type proxyInfo struct {
	LatencyMs float64 `json:"latency_ms"`
	JitterMs  float64 `json:"jitter_ms"` // uniform 0..jitter on top of latency_ms
	Upstream  string  `json:"upstream"`  // the emulator
	URL       string  `json:"url"`       // what both sides' SDK clients used as their endpoint
	// BySide is what the proxy saw while each side ran (start, phases, close): every server's
	// requests should be there; requests counted by the servers but missing here went around it.
	BySide map[string]proxyCounts `json:"by_side"`
}

type proxyCounts struct {
	Requests       map[string]int64 `json:"requests"` // by action
	Forwarded      int64            `json:"forwarded"`
	Abandoned      int64            `json:"abandoned"`       // the client left during the added latency (closing servers)
	UpstreamErrors int64            `json:"upstream_errors"` // forwarded, not answered (long polls cut by a closing server)
}

func proxyDiff(a, b awsproxy.Counts) proxyCounts {
	out := proxyCounts{
		Requests:       map[string]int64{},
		Forwarded:      b.Forwarded - a.Forwarded,
		Abandoned:      b.Abandoned - a.Abandoned,
		UpstreamErrors: b.UpstreamErrors - a.UpstreamErrors,
	}
	for k, v := range b.Requests {
		if d := v - a.Requests[k]; d > 0 {
			out.Requests[k] = d
		}
	}
	return out
}

func (c proxyCounts) total() int64 { return sumValues(c.Requests) }

// runProfile runs the sides with settings s on cfg's endpoint, or, when proxy is set, through a
// proxy with that profile in front of it, started here and closed after the last side: the Go
// servers get its URL as their SDK clients' BaseEndpoint, the Node peers as AWS_ENDPOINT_URL.
func (b *bencher) runProfile(ctx context.Context, name string, s settings, cfg aws.Config, proxy *awsproxy.Profile,
	cpuProfile string, sides []string) (*profileResult, error) {
	began := time.Now()
	log.SetPrefix("bench: " + name + ": ")
	defer log.SetPrefix("bench: ")
	p := &profileResult{Settings: s, Endpoint: b.endpoint, Order: []string{}, Sides: map[string]*sideResult{}}
	b.s, b.cfg, b.nodeEnv, b.cpuProfile = s, cfg, nil, cpuProfile
	var px *awsproxy.Proxy
	if proxy != nil {
		var err error
		px, err = awsproxy.Start(b.endpoint, *proxy)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := px.Close(); err != nil {
				log.Printf("closing the proxy: %v", err)
			}
		}()
		b.cfg = cfg.Copy()
		b.cfg.BaseEndpoint = aws.String(px.URL())
		b.nodeEnv = []string{"AWS_ENDPOINT_URL=" + px.URL()}
		p.Endpoint = px.URL()
		p.Proxy = &proxyInfo{
			LatencyMs: float64(proxy.Latency.Microseconds()) / 1000,
			JitterMs:  float64(proxy.Jitter.Microseconds()) / 1000,
			Upstream:  b.endpoint,
			URL:       px.URL(),
			BySide:    map[string]proxyCounts{},
		}
		log.Printf("proxy %s in front of %s: %v + 0..%v per request", px.URL(), b.endpoint, proxy.Latency, proxy.Jitter)
	}
	for _, side := range sides {
		var before awsproxy.Counts
		if px != nil {
			before = px.Counts()
		}
		r, err := b.runSide(ctx, side)
		if err != nil {
			return nil, fmt.Errorf("%s side: %w", side, err)
		}
		p.Sides[side] = r
		p.Order = append(p.Order, side)
		if px != nil {
			c := proxyDiff(before, px.Counts())
			p.Proxy.BySide[side] = c
			counted := r.Idle.total() + r.Latency.AWS.total()
			for _, st := range r.Steps {
				counted += st.AWS.total()
			}
			if seen := c.total(); seen < int64(counted) {
				log.Printf("WARNING: %s side: the proxy saw %d requests, the servers counted %d in their measured windows: "+
					"some went around it (AWS_ENDPOINT_URL_SNS or _SQS set?)", side, seen, counted)
			}
		}
	}
	p.AtCommonRate = commonRateCosts(p.Sides)
	p.CommonRates = commonRates(p.Sides)
	p.Seconds = time.Since(began).Seconds()
	return p, nil
}

// commonRates returns the costs of the sides at every rate that all of them passed (the
// latency phase and the throughput steps; of several passing steps at one rate, the longest),
// lowest rate first.
func commonRates(sides map[string]*sideResult) []rateCosts {
	passing := map[string]map[float64]step{} // by side, by rate
	for name, s := range sides {
		passing[name] = map[float64]step{}
		for _, st := range append([]step{s.Latency}, s.Steps...) {
			if prev, ok := passing[name][st.Rate]; st.Pass && (!ok || st.Sent > prev.Sent) {
				passing[name][st.Rate] = st
			}
		}
	}
	rates := map[float64]bool{}
	for _, steps := range passing {
		for rate := range steps {
			rates[rate] = true
		}
	}
	var out []rateCosts
	for _, rate := range slices.Sorted(maps.Keys(rates)) {
		rc := rateCosts{Rate: rate, Sides: map[string]costAt{}}
		for name, steps := range passing {
			if st, ok := steps[rate]; ok {
				rc.Sides[name] = costOf(st)
			}
		}
		if len(rc.Sides) == len(sides) {
			out = append(out, rc)
		}
	}
	return out
}
