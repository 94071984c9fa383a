package sqsadapter

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// numbered is message n of sender's stream to every node.
func numbered(sender string, n uint64) *wire.Message {
	return &wire.Message{Type: wire.Broadcast, Nsp: "/", UID: sender + "00000000", ID: wire.SequencedID(sender, wire.AllNodes, n)}
}

func sequenceOf(t *testing.T, ms []*wire.Message) []uint64 {
	t.Helper()
	out := make([]uint64, len(ms))
	for i, m := range ms {
		_, _, n, ok := wire.ParseSequencedID(m.ID)
		if !ok {
			t.Fatalf("message %q has no sequence number", m.ID)
		}
		out[i] = n
	}
	return out
}

func inOrder(ns []uint64) bool {
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			return false
		}
	}
	return true
}

// Messages of one sender that arrive shuffled within the window come out in order, each once.
func TestOrdererRestoresEachSendersOrder(t *testing.T) {
	var stats counters
	o := newOrderer(time.Second, "self0000", &stats)
	now := time.Now()
	o.add(numbered("aaaaaaaa", 1), now) // the first heard sets where the stream starts
	rest := make([]uint64, 0, 999)
	for n := uint64(2); n <= 1000; n++ {
		rest = append(rest, n)
	}
	rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	for i, n := range rest {
		o.add(numbered("aaaaaaaa", n), now)
		if i%7 == 0 { // and duplicates, as SQS delivers at least once
			o.add(numbered("aaaaaaaa", n), now)
		}
	}
	got, next := o.take(now)
	if seq := sequenceOf(t, got); len(seq) != 1000 || !inOrder(seq) || seq[0] != 1 {
		t.Fatalf("delivered %d messages, in order: %v", len(seq), inOrder(seq))
	}
	if !next.IsZero() {
		t.Fatalf("a gap is still open")
	}
	if s := stats.snapshot(); s.Duplicates != uint64((len(rest)+6)/7) || s.LateDeliveries != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A message missing for longer than the window is given up on: what follows it goes on, and if
// it arrives after all it is delivered then, once, and counted late.
func TestOrdererGivesUpAfterTheWindowAndDeliversLateOnce(t *testing.T) {
	var stats counters
	o := newOrderer(500*time.Millisecond, "self0000", &stats)
	start := time.Now()
	o.add(numbered("aaaaaaaa", 1), start)
	o.add(numbered("aaaaaaaa", 3), start)
	o.add(numbered("aaaaaaaa", 4), start.Add(100*time.Millisecond))
	got, deadline := o.take(start.Add(400 * time.Millisecond))
	if seq := sequenceOf(t, got); len(seq) != 1 || seq[0] != 1 {
		t.Fatalf("delivered %v before the window ran out", seq)
	}
	if want := start.Add(500 * time.Millisecond); !deadline.Equal(want) {
		t.Fatalf("next deadline %v, want %v", deadline, want)
	}
	got, deadline = o.take(start.Add(500 * time.Millisecond))
	if seq := sequenceOf(t, got); len(seq) != 2 || seq[0] != 3 || seq[1] != 4 || !deadline.IsZero() {
		t.Fatalf("after the window: %v, deadline %v", seq, deadline)
	}
	o.add(numbered("aaaaaaaa", 2), start.Add(5*time.Second)) // SQS hands it back after its visibility timeout
	o.add(numbered("aaaaaaaa", 2), start.Add(6*time.Second)) // and again
	got, _ = o.take(start.Add(6 * time.Second))
	if seq := sequenceOf(t, got); len(seq) != 1 || seq[0] != 2 {
		t.Fatalf("late message delivered as %v", seq)
	}
	if s := stats.snapshot(); s.LateDeliveries != 1 || s.Duplicates != 1 || s.Reordered != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// Senders are ordered independently; unnumbered messages (Node servers, emitters), this node's
// own and responses to other nodes pass straight through.
func TestOrdererHoldsOnlyWhatItCanOrder(t *testing.T) {
	var stats counters
	o := newOrderer(time.Second, "self0000", &stats)
	now := time.Now()
	o.add(numbered("aaaaaaaa", 1), now)
	o.add(numbered("bbbbbbbb", 1), now)
	o.add(numbered("aaaaaaaa", 3), now) // held: 2 is missing
	o.add(numbered("bbbbbbbb", 2), now) // another sender: not held up by a's gap
	o.add(&wire.Message{Type: wire.Broadcast, ID: "node-sqs-message-id"}, now)
	o.add(numbered("self0000", 7), now)
	o.add(&wire.Message{Type: wire.BroadcastAck, ID: wire.SequencedID("aaaaaaaa", "cccccccc", 9)}, now)
	got, _ := o.take(now)
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	want := []string{"aaaaaaaa/*/1", "bbbbbbbb/*/1", "bbbbbbbb/*/2", "node-sqs-message-id", "self0000/*/7", "aaaaaaaa/cccccccc/9"}
	if !slices.Equal(ids, want) {
		t.Fatalf("delivered %v, want %v", ids, want)
	}
	// The response stream to this node is ordered on its own.
	o.add(&wire.Message{Type: wire.BroadcastAck, ID: wire.SequencedID("aaaaaaaa", "self0000", 1)}, now)
	o.add(&wire.Message{Type: wire.BroadcastAck, ID: wire.SequencedID("aaaaaaaa", "self0000", 3)}, now)
	o.add(numbered("aaaaaaaa", 2), now)
	got, _ = o.take(now)
	if len(got) != 3 || got[0].ID != "aaaaaaaa/self0000/1" || got[1].ID != "aaaaaaaa/*/2" || got[2].ID != "aaaaaaaa/*/3" {
		t.Fatalf("got %d: %v %v %v", len(got), got[0].ID, got[1].ID, got[2].ID)
	}
}

// With a negative window messages go out as they arrive.
func TestOrdererDisabled(t *testing.T) {
	var stats counters
	o := newOrderer(-1, "self0000", &stats)
	now := time.Now()
	for _, n := range []uint64{1, 3, 2} {
		o.add(numbered("aaaaaaaa", n), now)
	}
	got, _ := o.take(now)
	if seq := sequenceOf(t, got); len(seq) != 3 || seq[1] != 3 {
		t.Fatalf("got %v", seq)
	}
}

// A message from before the first one heard of its sender (overtaken by it) is delivered, once.
func TestOrdererDeliversWhatCameBeforeTheFirstHeard(t *testing.T) {
	var stats counters
	o := newOrderer(time.Second, "self0000", &stats)
	now := time.Now()
	for _, n := range []uint64{3, 4, 1, 2, 1} {
		o.add(numbered("aaaaaaaa", n), now)
	}
	got, _ := o.take(now)
	if seq := sequenceOf(t, got); !slices.Equal(seq, []uint64{3, 4, 1, 2}) {
		t.Fatalf("delivered %v", seq)
	}
	if s := stats.snapshot(); s.LateDeliveries != 2 || s.Duplicates != 1 {
		t.Fatalf("stats %+v", s)
	}
}
