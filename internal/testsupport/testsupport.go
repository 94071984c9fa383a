// Package testsupport holds what the tests of the repository (the adapter's, internal/nodepeer's)
// and the benchmark program (bench/) share: the AWS configuration of the endpoint under test with
// its skip-or-fail rule, waiting until servers count each other, a Go Socket.IO client that
// connects despite the races of the client library, and unique names for topics.
//
// It is an ordinary package, not a _test.go file, so that every package can import it; nothing
// outside tests and bench/ does. It must not import internal/nodepeer, whose tests import it.
package testsupport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// LoadAWSConfig loads the SDK's default configuration (AWS_ENDPOINT_URL, AWS_REGION, credentials
// from the environment and the shared files), in region us-east-1 when none is set.
func LoadAWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return cfg, nil
}

// RequireAWS skips the test unless there is an endpoint to run it against: AWS_ENDPOINT_URL (an
// emulator; `make test` and scripts/with-emulator.sh start one), or real AWS when
// SQSADAPTER_TEST_REAL_AWS=1. Under CI=true it fails the test instead of skipping it: a suite
// that silently skips its integration tests proves nothing.
func RequireAWS(t testing.TB) {
	t.Helper()
	if os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("SQSADAPTER_TEST_REAL_AWS") == "1" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("integration test needs AWS_ENDPOINT_URL (run `make test` or scripts/with-emulator.sh), and CI=true forbids skipping it")
	}
	t.Skip("integration test: set AWS_ENDPOINT_URL (run `make test` or scripts/with-emulator.sh)")
}

// AWSConfig is the configuration of the endpoint under test, after RequireAWS.
func AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	RequireAWS(t)
	cfg, err := LoadAWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// UniqueName returns prefix followed by "-" and 12 random hex digits: a valid SNS topic or SQS
// queue-prefix name that no other test or run uses.
func UniqueName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}
