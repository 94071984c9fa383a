package main

import (
	"context"
	"log"
	"maps"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
)

// awsCounter counts the AWS requests of the SNS and SQS clients of one Go node, by action, in
// the client: a Finalize middleware placed after the retry middleware, so that every HTTP
// attempt is counted, as AWS bills it (the Node peer counts the same way, inside its SDK's
// retry middleware). It also counts the messages ReceiveMessage returned: the deliveries.
type awsCounter struct {
	mu       sync.Mutex
	requests map[string]uint64
	failed   map[string]uint64 // attempts that returned an error, by action
	received uint64
}

func newAWSCounter() *awsCounter {
	return &awsCounter{requests: map[string]uint64{}, failed: map[string]uint64{}}
}

// config returns cfg with the counting middleware on every client built from it.
func (c *awsCounter) config(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	cfg.APIOptions = append(cfg.APIOptions, func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("benchAWSCounter", c.handle), middleware.After)
	})
	return cfg
}

func (c *awsCounter) handle(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error) {
	op := awsmiddleware.GetOperationName(ctx)
	c.mu.Lock()
	c.requests[op]++
	c.mu.Unlock()
	t0 := time.Now()
	out, md, err := next.HandleFinalize(ctx, in)
	if os.Getenv("BENCH_DEBUG_AWS") != "" && (err != nil || time.Since(t0) > 500*time.Millisecond) {
		log.Printf("  %s took %v: err=%v", op, time.Since(t0), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failed[op]++
	} else if r, ok := out.Result.(*sqs.ReceiveMessageOutput); ok && r != nil {
		c.received += uint64(len(r.Messages))
	}
	return out, md, err
}

func (c *awsCounter) snapshot() (requests, failed map[string]uint64, received uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.requests), maps.Clone(c.failed), c.received
}
