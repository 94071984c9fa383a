package sqsadapter

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/socketio-go/aws-sqs-adapter/internal/awsop"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// ErrClosed is returned (or reported) for work asked of an adapter after it closed.
var ErrClosed = errors.New("sqsadapter: adapter closed")

// errBadFrontier is a SESSION_HANDOFF whose session points at a frontier it does not carry.
var errBadFrontier = errors.New("session hand-off: a session refers to a frontier that is not there")

// ErrPublishBufferFull is reported (and counted in Stats.PublishDropped) for a cluster message
// dropped because Options.PublishBufferSize messages were already waiting for SNS: publishing
// never blocks the emitting goroutine.
var ErrPublishBufferFull = errors.New("sqsadapter: publish buffer full")

// MessageTooLargeError is reported for a cluster message over the SNS size limit (256 KiB, body
// and attributes included); nothing is sent to AWS for it. The emitter returns the same type.
type MessageTooLargeError = wire.MessageTooLargeError

// OpError is the error of one AWS call: Op names it ("sns:CreateTopic", "sqs:ReceiveMessage",
// ...), Resource is the topic, queue or subscription it acted on when there was one. errors.As
// reaches the AWS error (smithy.APIError) through it. The emitter returns the same type.
type OpError = awsop.OpError

var (
	opErr      = awsop.Wrap
	isNotFound = awsop.IsNotFound
	retryable  = awsop.Retryable
)

// errPrefix starts every error the adapter logs, hands to Options.OnError or returns; the
// errors inside it do not repeat it.
const errPrefix = "sqsadapter: "

// prefixed returns err with the package prefix, unless it has it already.
func prefixed(err error) error {
	if err == nil || strings.HasPrefix(err.Error(), errPrefix) {
		return err
	}
	return &prefixedError{err}
}

type prefixedError struct{ err error }

func (e *prefixedError) Error() string { return errPrefix + e.err.Error() }
func (e *prefixedError) Unwrap() error { return e.err }

// reporter hands the errors that have no caller to return to to the log and Options.OnError.
type reporter struct {
	log     *slog.Logger
	onError func(error)
}

// quietError is an error its caller returns but nobody reports again: the next of a streak
// already reported (a full publish buffer drops message after message; each is counted).
type quietError struct{ error }

func (e quietError) Unwrap() error { return e.error }

func quiet(err error) error { return quietError{err} }

// report logs err, with the package prefix once, and hands it to Options.OnError; a quiet error
// is left out.
func (r reporter) report(err error) {
	if errors.As(err, new(quietError)) {
		return
	}
	err = prefixed(err)
	r.log.Error(err.Error())
	if r.onError != nil {
		r.onError(err)
	}
}

// errMissingRegion is the hint regionHint adds.
var errMissingRegion = errors.New("no AWS region is configured: set AWS_REGION or the region " +
	"of the AWS profile, or load the configuration with config.WithRegion")

// regionHint returns err, from an AWS call, with a hint added when the SDK failed it for want of
// a region: aws-sdk-go-v2 then fails before sending anything, with an error whose text ends in
// "Invalid Configuration: Missing Region" and says nothing of where a region comes from. The
// result wraps err (errors.As still reaches an *OpError and the SDK's error) and errMissingRegion.
// Any other error, nil, and an error that already carries the hint come back as they are.
func regionHint(err error) error {
	if err == nil || errors.Is(err, errMissingRegion) {
		return err
	}
	var missing *aws.MissingRegionError // the SDK's older endpoint resolvers
	if !strings.Contains(err.Error(), "Missing Region") && !errors.As(err, &missing) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, errMissingRegion)
}
