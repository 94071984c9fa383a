package wire

import (
	cryptorand "crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// What the adapter and the emitter both need to put a Message on the topic.

// MaxTopicNameLen is the longest SNS topic name.
const MaxTopicNameLen = 256

var topicNameChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// TopicNameRule says what ValidTopicName checks, for error messages.
var TopicNameRule = fmt.Sprintf("SNS topic names are 1 to %d letters, digits, hyphens or underscores", MaxTopicNameLen)

// ValidTopicName reports whether SNS accepts name for a standard topic. Emulators do not check
// it, so a bad name is refused before any AWS call.
func ValidTopicName(name string) bool {
	return len(name) <= MaxTopicNameLen && topicNameChars.MatchString(name)
}

// MessageTooLargeError is the error for a cluster message over the SNS size limit; nothing is
// sent to AWS for it.
type MessageTooLargeError struct {
	Type  string // the cluster message type, e.g. "BROADCAST"
	Nsp   string // the namespace it was published on
	Size  int    // bytes, body and attributes as SNS counts them
	Limit int    // the limit it is over: MaxMessageSize, or what parts can carry
	// Requester is the uid of the server a response was for ("" for other messages).
	Requester string
	// Reason says why the message could not be split into parts, when it could not ("").
	Reason string
}

// Error says which message, its size and the limit, and why it was not split.
func (e *MessageTooLargeError) Error() string {
	s := fmt.Sprintf("%s on namespace %q is %d bytes, over the SNS limit of %d bytes", e.Type, e.Nsp, e.Size, e.Limit)
	if e.Limit != MaxMessageSize {
		s = fmt.Sprintf("%s on namespace %q is %d bytes, over the %d bytes it can send in parts", e.Type, e.Nsp, e.Size, e.Limit)
	}
	if e.Requester != "" {
		s += " (an answer to " + e.Requester + ")"
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// CheckSize returns a *MessageTooLargeError when SNS would refuse m for its size.
func (m *Message) CheckSize() error {
	if size := m.Size(); size > MaxMessageSize {
		return &MessageTooLargeError{Type: m.Type.String(), Nsp: m.Nsp, Size: size, Limit: MaxMessageSize}
	}
	return nil
}

// NewID returns a random message id for the msgId attribute.
func NewID() string {
	b := make([]byte, 8)
	_, _ = cryptorand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// PublishInput is the request that publishes m alone to the topic.
func (m *Message) PublishInput(topicArn string) *sns.PublishInput {
	return &sns.PublishInput{TopicArn: &topicArn, Message: ptr(m.Body()), MessageAttributes: m.SNSAttributes()}
}

// BatchEntry is m as entry id of a PublishBatch request.
func (m *Message) BatchEntry(id string) snstypes.PublishBatchRequestEntry {
	return snstypes.PublishBatchRequestEntry{Id: &id, Message: ptr(m.Body()), MessageAttributes: m.SNSAttributes()}
}

// Go servers number the messages they publish, so that receivers can put each sender's messages
// back in order (SNS standard topics and SQS standard queues do not keep it). The number travels
// in the msgId attribute, which therefore stays unique per message and keeps serving dedup:
// "<sender node id>/<stream>/<sequence number>". A sender numbers its messages to the whole
// cluster in the stream "*", and its responses to one node in a stream named by that node's id,
// since a receiver never sees the responses meant for others. Upstream ignores msgId; other Go
// senders (emitters) send a random msgId without a slash, and are not ordered.

// AllNodes is the stream of the messages a node sends to the whole cluster.
const AllNodes = "*"

// SequencedID returns the msgId of message n of sender's stream.
func SequencedID(sender, stream string, n uint64) string {
	return sender + "/" + stream + "/" + strconv.FormatUint(n, 10)
}

// ParseSequencedID splits a msgId made by SequencedID; ok is false for any other id.
func ParseSequencedID(id string) (sender, stream string, n uint64, ok bool) {
	sender, rest, found := strings.Cut(id, "/")
	if !found || sender == "" {
		return "", "", 0, false
	}
	stream, num, found := strings.Cut(rest, "/")
	if !found || stream == "" {
		return "", "", 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 {
		return "", "", 0, false
	}
	return sender, stream, n, true
}
