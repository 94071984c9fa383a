package testsupport

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// ServerCounter counts the servers of one namespace: a Go server's namespace adapter
// (socket.Adapter, io.Of(nsp, nil).Adapter()), or a Node peer's namespace
// (nodepeer.Peer.ServerCounter).
type ServerCounter interface {
	ServerCount() int64
}

// A counter that can fail to count (a Node peer that does not answer) also has Err; a non-nil
// Err ends the wait with that error.
type failingCounter interface {
	Err() error
}

// pollInterval is how often the counts are read while waiting.
const pollInterval = 10 * time.Millisecond

// AwaitServerCount waits until every counter counts want servers. It returns an error that gives
// the last counts when ctx ends first, or the error of a counter that failed.
func AwaitServerCount[C ServerCounter](ctx context.Context, want int, counters ...C) error {
	counts := make([]int64, len(counters))
	for {
		done := true
		for i, c := range counters {
			counts[i] = c.ServerCount()
			if f, ok := any(c).(failingCounter); ok {
				if err := f.Err(); err != nil {
					return err
				}
			}
			done = done && counts[i] == int64(want)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server counts %v, want %d each: %w", counts, want, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// WaitServerCount is AwaitServerCount for a test: it fails t after timeout. nsp names the
// namespace the counters count in the failure message.
func WaitServerCount[C ServerCounter](t testing.TB, timeout time.Duration, nsp string, want int, counters ...C) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := AwaitServerCount(ctx, want, counters...); err != nil {
		t.Fatalf("waiting %v until every server of namespace %s counts %d servers: %v", timeout, nsp, want, err)
	}
}
