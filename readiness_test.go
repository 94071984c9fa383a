package sqsadapter

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// lostQueue is a queue that AWS loses once lose is closed: the next receive fails with
// NonExistentQueue, and the CreateQueue that makes it again waits for release.
type lostQueue struct {
	*fakeAWS
	lose     chan struct{}
	failed   atomic.Bool
	creates  atomic.Int32
	creating chan struct{} // closed when the second CreateQueue starts
	release  chan struct{}
}

func (q *lostQueue) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	select {
	case <-q.lose:
		if q.failed.CompareAndSwap(false, true) {
			return nil, apiError("AWS.SimpleQueueService.NonExistentQueue")
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (q *lostQueue) CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, o ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error) {
	if q.creates.Add(1) == 2 {
		close(q.creating)
		select {
		case <-q.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return q.fakeAWS.CreateQueue(ctx, in, o...)
}

func TestReadyBeforeInitAfterInitDuringAReprovisionAndAfterClose(t *testing.T) {
	q := &lostQueue{fakeAWS: &fakeAWS{}, lose: make(chan struct{}), creating: make(chan struct{}), release: make(chan struct{})}
	_, b := fakeServerWith(t, q.fakeAWS, q, nil, nil)

	err := b.Ready()
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "Init has not succeeded") {
		t.Fatalf("before Init: %v", err)
	}

	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err != nil {
		t.Fatalf("after Init: %v", err)
	}

	close(q.lose)
	select {
	case <-q.creating:
	case <-time.After(5 * time.Second):
		t.Fatal("the lost queue is not made again")
	}
	err = b.Ready()
	var opErr *OpError
	if !errors.Is(err, ErrNotReady) || !errors.As(err, &opErr) || opErr.Op != "sqs:ReceiveMessage" ||
		!strings.Contains(err.Error(), "making them again") || !strings.Contains(err.Error(), "NonExistentQueue") {
		t.Fatalf("during the reprovision: %v", err)
	}
	if strings.Count(err.Error(), errPrefix) != 1 {
		t.Fatalf("prefix not once: %q", err)
	}

	close(q.release)
	eventually(t, 5*time.Second, func() bool { return b.Ready() == nil }, "ready once the queue is made again")
	if n := b.Stats().Reprovisions; n != 1 {
		t.Fatalf("%d reprovisions", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); !errors.Is(err, ErrNotReady) || !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// A reprovision that fails leaves the adapter not ready, with the failure as the reason, until
// polling tries again and succeeds.
func TestReadyStaysFalseWhileMakingTheQueueAgainFails(t *testing.T) {
	f := &fakeAWS{}
	q := &lostQueue{fakeAWS: f, lose: make(chan struct{}), creating: make(chan struct{}), release: make(chan struct{})}
	close(q.release)
	_, b := fakeServerWith(t, f, q, nil, nil)
	if err := b.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.fail = map[string]error{"Subscribe": apiError("AuthorizationError")}
	f.mu.Unlock()
	close(q.lose)
	eventually(t, 5*time.Second, func() bool {
		err := b.Ready()
		return errors.Is(err, ErrNotReady) && strings.Contains(err.Error(), "AuthorizationError")
	}, "not ready, saying why making the queue again failed")
}
