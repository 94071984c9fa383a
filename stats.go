package sqsadapter

import (
	"reflect"
	"sync/atomic"
)

// Stats counts what the adapter did since it was built.
type Stats struct {
	Received          uint64 // SQS messages received
	Malformed         uint64 // received messages dropped as malformed (logged at warn level)
	Duplicates        uint64 // redeliveries of a message already handled, dropped
	Reordered         uint64 // messages that arrived ahead of an earlier one of their sender, held to restore its order
	LateDeliveries    uint64 // messages that arrived after the reorder window gave up on them, delivered out of order
	Published         uint64 // cluster messages SNS accepted
	PublishFailures   uint64 // cluster messages SNS did not accept (reported)
	PublishDropped    uint64 // cluster messages dropped because the publish buffer was full (reported)
	HandlerPanics     uint64 // messages whose handling panicked (recovered and reported)
	UnknownNamespaces uint64 // messages for a namespace this server does not have
	NotForUs          uint64 // this node's own messages and responses to other nodes: received only to be dropped
	Reprovisions      uint64 // times the queue and subscription were made again after AWS lost them

	LargeMessagesOffloaded uint64 // cluster messages whose data was put in S3 (one PutObject each)
	LargeMessagesFetched   uint64 // offloaded messages received and read from S3 (one GetObject each)
	LargeMessageFailures   uint64 // offloaded messages not sent (PutObject failed) or dropped (object missing, unreadable or not matching its pointer): reported
}

// counters are the live Stats. Every field of s is only ever touched atomically
// (atomic.AddUint64(&c.s.Received, 1)), so the list of counters is Stats itself and nothing has
// to be kept in step with it.
type counters struct{ s Stats }

// snapshot reads every counter.
func (c *counters) snapshot() Stats {
	var out Stats
	src, dst := reflect.ValueOf(&c.s).Elem(), reflect.ValueOf(&out).Elem()
	for i := range src.NumField() {
		dst.Field(i).SetUint(atomic.LoadUint64(src.Field(i).Addr().Interface().(*uint64)))
	}
	return out
}
