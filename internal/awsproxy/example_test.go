package awsproxy_test

import (
	"context"
	"log"
	"os"
	"os/exec"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/socketio-go/aws-sqs-adapter/internal/awsproxy"
)

// A benchmark or reliability test puts the proxy between its clients and the emulator
// (AWS_ENDPOINT_URL, set by scripts/with-emulator.sh): Go clients get its URL as their base
// endpoint, a Node peer as its AWS_ENDPOINT_URL.
func ExampleStart() {
	p := awsproxy.AWSLike() // 15-25 ms per request
	p.Reorder = true
	p.HoldBack = 0.05 // 5% of received messages come back after the visibility timeout
	p.Throttle = 0.01 // 1% of Publish, PublishBatch, ReceiveMessage, DeleteMessageBatch
	px, err := awsproxy.Start(os.Getenv("AWS_ENDPOINT_URL"), p)
	if err != nil {
		log.Fatal(err)
	}
	defer px.Close()

	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(px.URL())
	sqsClient := sqs.NewFromConfig(cfg)
	_ = sqsClient

	peer := exec.Command("node", "interop/node/peer.js")
	peer.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+px.URL())

	// ... run the test; change the weather while it runs:
	px.SetProfile(awsproxy.Profile{ServerError: 0.2})
	log.Printf("%+v", px.Counts())
}
