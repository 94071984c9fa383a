package sqsadapter

import (
	"errors"
	"strings"
)

// Readiness: whether this server is part of the cluster now, for a health check.

// ErrNotReady is wrapped by every error Ready returns.
var ErrNotReady = errors.New("sqsadapter: not ready")

// notReadyError says why the adapter is not serving; errors.Is matches ErrNotReady, and
// errors.Is / errors.As reach the cause (ErrClosed, the *OpError of the lost queue, ...).
type notReadyError struct {
	reason string
	cause  error
}

func (e *notReadyError) Error() string {
	if e.cause == nil {
		return ErrNotReady.Error() + ": " + e.reason
	}
	return ErrNotReady.Error() + ": " + e.reason + ": " + strings.TrimPrefix(e.cause.Error(), errPrefix)
}

func (e *notReadyError) Is(target error) bool { return target == ErrNotReady }
func (e *notReadyError) Unwrap() error        { return e.cause }

// Ready returns nil while the adapter serves: Init succeeded, it is not closed, and its queue and
// subscription exist. Otherwise it returns an error wrapping ErrNotReady that says why: Init
// has not succeeded yet; the adapter is closing or closed (the error wraps ErrClosed too); or
// AWS lost the queue or subscription and they are being made again (the error wraps what
// showed the loss, or why making them again failed; polling retries). It makes no AWS call, so
// a health handler may call it as often as it likes:
//
//	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
//		if err := builder.Ready(); err != nil {
//			http.Error(w, err.Error(), http.StatusServiceUnavailable)
//		}
//	})
//
// Failing AWS calls alone (throttling, an outage) do not make it fail: the queue still exists,
// and every server of the cluster would be taken out of service at once. Use it for readiness,
// not liveness: a server that is making its queue again needs no restart.
func (b *AdapterBuilder) Ready() error {
	b.mu.Lock()
	ready, closed := b.ready, b.closed
	b.mu.Unlock()
	switch {
	case closed || b.closing.Load():
		return &notReadyError{reason: "closed", cause: ErrClosed}
	case !ready:
		return &notReadyError{reason: "Init has not succeeded"}
	}
	if cause := b.transport.lostQueue(); cause != nil {
		return &notReadyError{reason: "AWS lost this server's queue or subscription; making them again", cause: cause}
	}
	return nil
}

// markLost records why the queue and subscription are being made again (nil once they are).
func (t *transport) markLost(cause error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lost = cause
}

// lostQueue returns why the queue and subscription are being made again, nil when they exist.
func (t *transport) lostQueue() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lost
}
