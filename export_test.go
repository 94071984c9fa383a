package sqsadapter

import (
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// The only place where tests reach the adapter's private state.

// resources returns what Init provisioned, nil before.
func (b *AdapterBuilder) resources() *resources { return b.transport.resources() }

// handleSQSMessage runs one received message through the receive path and hands what that
// releases to the handlers, on the calling goroutine.
func (b *AdapterBuilder) handleSQSMessage(m *sqstypes.Message) {
	b.transport.receive(m, time.Now())
	ready, _ := b.transport.order.take(time.Now())
	for _, m := range ready {
		b.deliver(m)
	}
}

// expireParts gives up on the incomplete messages as the clock would at now.
func (b *AdapterBuilder) expireParts(now time.Time) { b.transport.parts.expire(now) }

// limitParts lowers the bytes held for incomplete messages.
func (b *AdapterBuilder) limitParts(n int) { b.transport.parts.limit = n }

// publishBacklog is how many cluster messages wait for SNS.
func (b *AdapterBuilder) publishBacklog() int { return len(b.transport.pub.queue) }

// simulateCrash stops the node as a killed process would: no ADAPTER_CLOSE, no more heartbeats,
// polls or publishes. Close still removes its queue.
func (b *AdapterBuilder) simulateCrash() {
	b.mu.Lock()
	stopHeartbeats := b.stopHeartbeats
	b.mu.Unlock()
	stopHeartbeats()
	b.heartbeats.Wait()
	t := b.transport
	t.mu.Lock()
	stopLoops := t.stopLoops
	t.mu.Unlock()
	stopLoops()
	t.pub.abandon()
	t.loops.Wait()
}

// closeStarted reports whether a Close (the server's or the application's) has begun.
func (b *AdapterBuilder) closeStarted() bool { return b.closing.Load() }

// metered reports whether the transport measures anything (Options.MeterProvider).
func (b *AdapterBuilder) metered() bool {
	_, sns := b.transport.sns.(meteredSNS)
	return b.transport.metrics != nil || sns
}

// topicName is the topic the builder's options name.
func (b *AdapterBuilder) topicName() string { return b.opts.TopicName }

// setTopicName changes the topic name before Init, to test its validation.
func (b *AdapterBuilder) setTopicName(name string) { b.opts.TopicName = name }

// messageID numbers m as the builder's next message.
func (b *AdapterBuilder) messageID(m *wire.Message) string { return b.transport.messageID(m) }

// publishMessage hands m to the transport as a namespace adapter does.
func (b *AdapterBuilder) publishMessage(m *wire.Message) error { return b.transport.publish(m) }

// setSigningClock replaces the clock signatures are checked against.
func (b *AdapterBuilder) setSigningClock(now func() time.Time) { b.guard.now = now }

// namespaceUID is the uid of the adapter of namespace nsp.
func (b *AdapterBuilder) namespaceUID(nsp string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.adapters[nsp].uid
}

// handedOffSessions is how many sessions handed off by closing servers namespace nsp holds.
func (b *AdapterBuilder) handedOffSessions(nsp string) int {
	b.mu.Lock()
	a := b.adapters[nsp]
	b.mu.Unlock()
	if a == nil || a.rec == nil {
		return 0
	}
	a.rec.mu.Lock()
	defer a.rec.mu.Unlock()
	return len(a.rec.handedOff)
}
