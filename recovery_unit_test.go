package sqsadapter

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// The packet log and the frontier on their own: a server with the adapter and recovery on, no
// AWS (nothing is published before Init; local broadcasts are logged all the same).

func recoveryServer(t testing.TB, opts *Options) (*socket.Server, *namespaceAdapter) {
	t.Helper()
	serverOpts := recoveryServerOptions(0)
	b := NewAdapterBuilder(nil, nil, opts)
	serverOpts.SetAdapter(b)
	io := socket.NewServer(nil, serverOpts)
	t.Cleanup(func() { io.Close(nil) })
	return io, io.Of("/", nil).Adapter().(*namespaceAdapter)
}

func TestSeenMessagesTracksHoles(t *testing.T) {
	s := newSeenMessages()
	for _, n := range []uint64{5, 6, 9, 4} {
		s.add("a", n)
	}
	f := s.snapshot(time.Now())
	got := f.Senders["a"]
	slices.Sort(got.Missing)
	if got.First != 4 || got.Last != 9 || fmt.Sprint(got.Missing) != "[7 8]" {
		t.Fatalf("seen %+v, want 4..9 without 7 and 8", got)
	}
	if s.snapshot(time.Now()) != f {
		t.Error("an unchanged frontier is made again")
	}
	s.add("a", 7) // came late
	fs := newFrontierSet(s.snapshot(time.Now()))
	for n, want := range map[uint64]bool{3: false, 4: true, 7: true, 8: false, 9: true, 10: false} {
		if got := fs.has(&logEntry{kind: entrySequenced, sender: "a", seq: n}); got != want {
			t.Errorf("has a/%d = %v, want %v", n, got, want)
		}
	}
	if fs.has(&logEntry{kind: entrySequenced, sender: "b", seq: 1}) || fs.has(&logEntry{kind: entryNode}) {
		t.Error("a frontier has what its server never heard of")
	}
}

func TestRecoveryLogIsBounded(t *testing.T) {
	io, a := recoveryServer(t, &Options{RecoveryMaxPackets: 100})
	for i := range 250 {
		io.Local().Emit("msg", i)
	}
	a.rec.mu.Lock()
	n, first := len(a.rec.entries), a.rec.entries[0].data[1]
	a.rec.mu.Unlock()
	if n != 100 || first != 150 {
		t.Fatalf("log holds %d packets from %v, want the last 100 (from 150)", n, first)
	}

	a.rec.mu.Lock()
	a.rec.entries[0].at = time.Now().Add(-3 * time.Minute) // older than the disconnection duration
	a.rec.mu.Unlock()
	io.Local().Emit("msg", "new")
	a.rec.mu.Lock()
	defer a.rec.mu.Unlock()
	if len(a.rec.entries) != 100 || a.rec.entries[0].data[1] != 151 {
		t.Fatalf("an expired packet is still kept: %d packets from %v", len(a.rec.entries), a.rec.entries[0].data[1])
	}
}

func TestRecoveryLastPacketOfASession(t *testing.T) {
	io, a := recoveryServer(t, nil)
	rooms := types.NewSet[socket.Room]("sid1", "r")
	a.rec.mu.Lock()
	none := a.rec.lastMatching(rooms)
	a.rec.mu.Unlock()
	io.Local().To("r").Emit("msg", "to r")
	io.Local().Except("r").Emit("msg", "not to r")
	io.Local().To("r").Except("sid1").Emit("msg", "not to sid1")
	io.Local().To("other").Emit("msg", "to other")
	a.rec.mu.Lock()
	defer a.rec.mu.Unlock()
	last := a.rec.lastMatching(rooms)
	if none != "" || last != a.rec.entries[0].offset {
		t.Fatalf("last offsets %q then %q, want none then that of %v", none, last, a.rec.entries[0].data)
	}
}

func TestRecoveryRefusesABadHandoff(t *testing.T) {
	_, a := recoveryServer(t, nil)
	err := a.receiveHandoff(&wire.SessionHandoffData{Sessions: []wire.HandedOffSession{{Pid: "p", Frontier: 3}}})
	if err == nil {
		t.Fatal("a session pointing at a missing frontier was taken")
	}
}

// BenchmarkRecoveryLogMemory reports the heap that 10 000 logged chat-sized packets take.
func BenchmarkRecoveryLogMemory(b *testing.B) {
	for range b.N {
		io, a := recoveryServer(b, &Options{Logger: discardLogger()})
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range 10_000 {
			io.To("room").Local().Emit("chat", map[string]any{"user": "ann", "text": fmt.Sprintf("message %d: hello, how are you all doing", i)})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		a.rec.mu.Lock()
		if len(a.rec.entries) != 10_000 {
			b.Fatalf("%d packets logged", len(a.rec.entries))
		}
		a.rec.mu.Unlock()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc), "heap-B/10k-packets")
		io.Close(nil)
	}
}

func TestRecoveryKeepsNoVolatileOrAcknowledgedPackets(t *testing.T) {
	io, a := recoveryServer(t, nil)
	io.Local().Volatile().Emit("msg", "volatile")
	io.Local().Timeout(time.Second).Emit("msg", "with ack", func([]any, error) {})
	io.Local().Emit("msg", "kept")
	a.rec.mu.Lock()
	defer a.rec.mu.Unlock()
	if len(a.rec.entries) != 1 || a.rec.entries[0].data[1] != "kept" {
		t.Fatalf("log holds %d packets, want only the plain one", len(a.rec.entries))
	}
}
