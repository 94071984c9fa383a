package main

// What a cluster did between two snapshots, and the per-1000 costs compared between the sides.

// window is what a cluster did between two snapshots.
type window struct {
	Seconds    float64           `json:"seconds"`
	Requests   map[string]uint64 `json:"requests"` // all nodes, by action
	Failed     map[string]uint64 `json:"failed"`   // requests that returned an error, by action
	Deliveries uint64            `json:"deliveries"`
	Published  uint64            `json:"published"`
	// PublishLost: cluster messages the servers gave up on (failed or dropped; Go only).
	PublishLost uint64 `json:"publish_lost"`
	// Wasted is the deliveries dropped on arrival; WastedCounted says whether the servers
	// counted them (Node peer) or they are derived: deliveries minus the messages of the other
	// nodes (Go: the adapter's Stats has no drop counter).
	Wasted        int64 `json:"wasted"`
	WastedCounted bool  `json:"wasted_counted"`
	WastedDerived int64 `json:"wasted_derived"`
}

func diff(a, b []nodeSnap, secs float64) window {
	w := window{Seconds: secs, Requests: map[string]uint64{}, Failed: map[string]uint64{}, WastedCounted: true}
	for i := range b {
		for k, v := range b[i].Requests {
			if d := v - a[i].Requests[k]; d > 0 {
				w.Requests[k] += d
			}
		}
		for k, v := range b[i].Failed {
			if d := v - a[i].Failed[k]; d > 0 {
				w.Failed[k] += d
			}
		}
		w.Deliveries += b[i].Deliveries - a[i].Deliveries
		w.Published += b[i].Published - a[i].Published
		w.PublishLost += b[i].PublishLost - a[i].PublishLost
		if b[i].Dropped < 0 {
			w.WastedCounted = false
		} else {
			w.Wasted += b[i].Dropped - a[i].Dropped
		}
	}
	// Every published message lands in every node's queue; only the other nodes' are useful
	// (the workload has no responses).
	w.WastedDerived = int64(w.Deliveries) - int64(len(b)-1)*int64(w.Published)
	if !w.WastedCounted {
		w.Wasted = w.WastedDerived
	}
	return w
}

func (w window) sum(actions ...string) uint64 {
	var n uint64
	for _, a := range actions {
		n += w.Requests[a]
	}
	return n
}

func (w window) total() uint64 { return sumValues(w.Requests) }

// sumValues adds up the counts of a map of counts by action.
func sumValues[V int64 | uint64](m map[string]V) V {
	var n V
	for _, v := range m {
		n += v
	}
	return n
}

// costAt are the per-1000 costs of one passing step, for comparing both sides at one rate.
type costAt struct {
	Rate          float64 `json:"rate_per_s"`
	SNSPer1000    float64 `json:"sns_publish_requests_per_1000"`
	SQSPer1000    float64 `json:"sqs_requests_per_1000_deliveries"`
	WastedPer1000 float64 `json:"wasted_deliveries_per_1000"`
	// AWSPerBroadcast is every AWS request of every server during the step (until its queues
	// were empty; all actions, SNS and SQS), per broadcast.
	AWSPerBroadcast float64 `json:"aws_requests_per_broadcast"`
}

// commonRateCosts compares the sides' costs at the highest rate that all of them passed (the
// per-1000 metrics at each side's own throughput rate compare different rates).
func commonRateCosts(sides map[string]*sideResult) map[string]costAt {
	passed := func(s *sideResult, rate float64) (step, bool) {
		for _, st := range s.Steps {
			if st.Pass && st.Rate == rate {
				return st, true
			}
		}
		return step{}, false
	}
	var best float64
	for _, s := range sides {
		for _, st := range s.Steps {
			all := st.Pass
			for _, o := range sides {
				_, ok := passed(o, st.Rate)
				all = all && ok
			}
			if all && st.Rate > best {
				best = st.Rate
			}
		}
	}
	if best == 0 {
		return nil
	}
	out := map[string]costAt{}
	for name, s := range sides {
		st, _ := passed(s, best)
		out[name] = costOf(st)
	}
	return out
}

func costOf(st step) costAt {
	return costAt{
		Rate:          st.Rate,
		SNSPer1000:    per1000(st.AWS.sum("Publish", "PublishBatch"), uint64(st.Sent)),
		SQSPer1000:    per1000(st.AWS.sum("ReceiveMessage", "DeleteMessageBatch"), st.AWS.Deliveries),
		WastedPer1000: per1000(uint64(max(0, st.AWS.Wasted)), uint64(st.Sent)),
		// per1000 rounds to 0.1 per 1000: three decimals per broadcast.
		AWSPerBroadcast: per1000(st.AWS.total(), uint64(st.Sent)) / 1000,
	}
}
