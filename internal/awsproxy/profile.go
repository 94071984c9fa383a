package awsproxy

import (
	"slices"
	"time"
)

// Profile is how the proxy deviates from the emulator it fronts. The zero value adds no latency
// and no faults: a plain pass-through.
//
// Faults (Throttle, ServerError) are drawn per request, and only for the actions in
// FaultActions; Reorder and HoldBack change SQS ReceiveMessage responses. Start from AWSLike and
// add what a test needs:
//
//	p := awsproxy.AWSLike()
//	p.Throttle = 0.05 // 5% of Publish, PublishBatch, ReceiveMessage, DeleteMessageBatch
//	p.HoldBack = 0.1  // 10% of received messages come back after their visibility timeout
type Profile struct {
	// Latency is added to every request (long polls included) before it is forwarded.
	Latency time.Duration
	// Jitter adds a uniform random 0..Jitter on top of Latency.
	Jitter time.Duration

	// Reorder shuffles the messages of every SQS ReceiveMessage response (SNS and SQS standard
	// promise only best-effort order).
	Reorder bool
	// HoldBack is the fraction (0..1) of received messages removed from ReceiveMessage responses.
	// The emulator has already made them invisible, so they come back after the queue's
	// visibility timeout: the late redelivery AWS sometimes does.
	HoldBack float64

	// Throttle is the fraction (0..1) of requests answered with the service's throttling error
	// instead of being forwarded (SNS: HTTP 400 Throttling; SQS: HTTP 400 RequestThrottled).
	Throttle float64
	// ServerError is the fraction (0..1) of requests answered HTTP 500 instead of being forwarded
	// (SNS: InternalError; SQS: InternalFailure). Drawn after Throttle: Throttle+ServerError of
	// the requests, at most all of them, fail.
	ServerError float64
	// FaultActions are the actions Throttle and ServerError apply to, by their AWS name
	// ("Publish", "ReceiveMessage", ...). Empty means DefaultFaultActions: the data path only, so
	// that provisioning and teardown (CreateQueue, Subscribe, DeleteQueue, ...) always succeed.
	FaultActions []string

	// Seed makes the random draws reproducible (for a given sequence of requests); 0 picks a
	// random seed. SetProfile with a non-zero Seed restarts the sequence.
	Seed uint64
}

// AWSLike is the latency of a real AWS region seen from inside it: 15 ms plus a uniform 0..10 ms
// on every request, and no faults.
func AWSLike() Profile {
	return Profile{Latency: 15 * time.Millisecond, Jitter: 10 * time.Millisecond}
}

// DefaultFaultActions are the actions faults apply to when Profile.FaultActions is empty: what
// the adapter does in steady state.
func DefaultFaultActions() []string {
	return []string{"Publish", "PublishBatch", "ReceiveMessage", "DeleteMessageBatch"}
}

// settings is a Profile made ready for the request path: values clamped, fault actions in a set.
type settings struct {
	Profile
	faults map[string]bool
}

func newSettings(p Profile) *settings {
	p.Latency = max(p.Latency, 0)
	p.Jitter = max(p.Jitter, 0)
	p.HoldBack = clamp01(p.HoldBack)
	p.Throttle = clamp01(p.Throttle)
	p.ServerError = clamp01(p.ServerError)
	actions := p.FaultActions
	if len(actions) == 0 {
		actions = DefaultFaultActions()
	}
	p.FaultActions = slices.Clone(actions)
	s := &settings{Profile: p, faults: make(map[string]bool, len(actions))}
	for _, a := range actions {
		s.faults[a] = true
	}
	return s
}

func clamp01(f float64) float64 {
	if !(f > 0) { // also NaN
		return 0
	}
	return min(f, 1)
}
