package wire

import (
	cryptorand "crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"

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
	Limit int    // the SNS limit, MaxMessageSize
}

// Error says which message, its size and the limit.
func (e *MessageTooLargeError) Error() string {
	return fmt.Sprintf("%s on namespace %q is %d bytes, over the SNS limit of %d bytes", e.Type, e.Nsp, e.Size, e.Limit)
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
