// Package awsop describes a failed AWS call the same way for the adapter and the emitter, and
// says what the failure means: worth trying again, or a resource that does not exist.
package awsop

import (
	"context"
	"errors"

	"github.com/aws/smithy-go"
)

// OpError is the error of one AWS call: Op names it ("sns:CreateTopic", "sqs:ReceiveMessage",
// ...), Resource is the topic, queue or subscription it acted on when there was one. errors.As
// reaches the AWS error (smithy.APIError) through it. Its text has no package prefix: whoever
// reports or returns it adds one, once.
type OpError struct {
	Op       string
	Resource string
	Err      error
}

// Error names the action and the resource, then the AWS error.
func (e *OpError) Error() string {
	if e.Resource == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return e.Op + " " + e.Resource + ": " + e.Err.Error()
}

// Unwrap returns the AWS SDK's error.
func (e *OpError) Unwrap() error { return e.Err }

// Wrap returns err as an *OpError of op on resource, or nil when err is nil.
func Wrap(op, resource string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Resource: resource, Err: err}
}

// IsNotFound reports whether err says the topic, queue or subscription does not exist.
func IsNotFound(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "NotFound", "NotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist":
		return true
	}
	return false
}

// Retryable reports whether a failed AWS call may succeed if tried again: throttling, a server
// fault, or no answer at all (the endpoint unreachable, the connection dropped). A topic or
// queue that does not exist counts too: the adapter makes it again.
func Retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return true // no response from AWS
	}
	switch apiErr.ErrorCode() {
	case "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "RequestLimitExceeded",
		"TooManyRequestsException", "KMSThrottling":
		return true
	}
	return apiErr.ErrorFault() == smithy.FaultServer || IsNotFound(err)
}
