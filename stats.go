package sqsadapter

import (
	"reflect"
	"sync/atomic"
)

// Stats counts what the adapter did since it was built. With Options.MeterProvider, every field
// is also an OpenTelemetry counter, named by its metric tag ("name" or "name,unit"; the unit
// defaults to {message}); see Options.MeterProvider.
type Stats struct {
	Received           uint64 `metric:"sqsadapter.messages.received"`          // SQS messages received
	Malformed          uint64 `metric:"sqsadapter.messages.malformed"`         // received messages dropped as malformed (logged at warn level)
	Duplicates         uint64 `metric:"sqsadapter.messages.duplicates"`        // redeliveries of a message already handled, dropped
	Reordered          uint64 `metric:"sqsadapter.messages.reordered"`         // messages that arrived ahead of an earlier one of their sender, held to restore its order
	LateDeliveries     uint64 `metric:"sqsadapter.messages.late"`              // messages that arrived after the reorder window gave up on them, delivered out of order
	Published          uint64 `metric:"sqsadapter.messages.published"`         // cluster messages SNS accepted
	PublishFailures    uint64 `metric:"sqsadapter.publish.failures"`           // cluster messages SNS did not accept (reported)
	PublishDropped     uint64 `metric:"sqsadapter.publish.dropped"`            // cluster messages dropped because the publish buffer was full (reported)
	HandlerPanics      uint64 `metric:"sqsadapter.handler.panics"`             // messages whose handling panicked (recovered and reported)
	UnknownNamespaces  uint64 `metric:"sqsadapter.messages.unknown_namespace"` // messages for a namespace this server does not have
	NotForUs           uint64 `metric:"sqsadapter.messages.not_for_us"`        // this node's own messages and responses to other nodes: received only to be dropped
	Reprovisions       uint64 `metric:"sqsadapter.reprovisions,{reprovision}"` // times the queue and subscription were made again after AWS lost them
	DeadLettered       uint64 `metric:"sqsadapter.dead_letter.sent"`           // dropped messages kept in Options.DeadLetterQueueURL
	DeadLetterFailures uint64 `metric:"sqsadapter.dead_letter.failures"`       // dropped messages that did not reach the dead-letter queue (buffer full, SQS refused, closing)

	// With Options.SigningKeys; each refused message is dropped and reported (once a minute per sender).
	Unsigned          uint64 `metric:"sqsadapter.messages.unsigned"`          // messages without a signature (refused unless Options.AcceptUnsigned)
	BadSignatures     uint64 `metric:"sqsadapter.messages.bad_signature"`     // messages whose signature no key made, or malformed, refused
	ExpiredSignatures uint64 `metric:"sqsadapter.messages.expired_signature"` // messages signed further than Options.SignatureMaxAge from this server's clock, refused
	Replays           uint64 `metric:"sqsadapter.messages.replayed"`          // signed messages acted on already (a replay, or a redelivery past de-duplication), refused

	LargeMessagesOffloaded uint64 `metric:"sqsadapter.large_messages.offloaded"` // cluster messages whose data was put in S3 (one PutObject each)
	LargeMessagesFetched   uint64 `metric:"sqsadapter.large_messages.fetched"`   // offloaded messages received and read from S3 (one GetObject each)
	LargeMessageFailures   uint64 `metric:"sqsadapter.large_messages.failures"`  // offloaded messages not sent (PutObject failed) or dropped (object missing, unreadable or not matching its pointer): reported

	// Messages over the SNS limit, without S3 or where S3 does not apply (see README, "Large messages").
	TooLarge            uint64 `metric:"sqsadapter.messages.too_large"` // cluster messages not sent for their size (MessageTooLargeError, reported): an answer to a Node server over the SNS limit, a message to a cluster with Node servers, a message over what parts carry
	MessagesSplit       uint64 `metric:"sqsadapter.parts.split"`        // cluster messages over the SNS limit sent in parts
	PartsSent           uint64 `metric:"sqsadapter.parts.sent,{part}"`  // the parts they were sent in (each one SNS message)
	MessagesReassembled uint64 `metric:"sqsadapter.parts.reassembled"`  // messages received in parts and put back together
	IncompleteMessages  uint64 `metric:"sqsadapter.parts.incomplete"`   // messages whose parts did not all arrive in time, or that were dropped to bound memory: logged at warn level

	// With the server's ConnectionStateRecovery option.
	SessionsRecovered    uint64 `metric:"sqsadapter.sessions.recovered,{session}"`     // clients that reconnected here and got their session and missed packets back
	SessionsNotRecovered uint64 `metric:"sqsadapter.sessions.not_recovered,{session}"` // clients that came back with a session that could not be restored here (unknown, expired, offset too old): they connected afresh
	SessionsHandedOff    uint64 `metric:"sqsadapter.sessions.handed_off,{session}"`    // sessions published to the cluster as this server closed
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
