package sqsadapter

// A node in a separate process killed with SIGKILL: no ADAPTER_CLOSE, no clean-up of its own.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
)

// childTopicEnv makes the test binary run as a bare node on that topic (see runChildNode).
const childTopicEnv = "SQSADAPTER_TEST_CHILD_TOPIC"

// runChildNode serves a Go Socket.IO server with the adapter on the topic, prints its queue
// name, and runs until it is killed.
func runChildNode(topic string) {
	cfg, err := testsupport.LoadAWSConfig(context.Background())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	b := NewAdapterBuilder(sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg), &Options{
		TopicName: topic, QueuePrefix: "sqsadapter-test",
		HeartbeatInterval: 500 * time.Millisecond, HeartbeatTimeout: 3 * time.Second,
	})
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(b)
	socket.NewServer(nil, opts)
	if err := b.Init(context.Background()); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready", b.resources().queueName)
	select {}
}

// startChildNode starts a node in a child process and returns it with its queue name.
func startChildNode(t *testing.T, topic string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childTopicEnv+"="+topic)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) != 2 || fields[0] != "ready" {
		t.Fatalf("child node: %q, %v", line, err)
	}
	return cmd, fields[1]
}

func queueExists(t *testing.T, c *sqs.Client, name string) bool {
	t.Helper()
	out, err := c.ListQueues(context.Background(), &sqs.ListQueuesInput{QueueNamePrefix: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.QueueUrls) > 0
}

func TestKilledNodeIsDroppedAndOnlyItsResourcesAreRemoved(t *testing.T) {
	snsClient, sqsClient := awsClients(t)
	opts := testOptions(t)
	opts.RequestTimeout = 30 * time.Second // only the expiry may end the request below
	opts.OrphanCleanupInterval = 500 * time.Millisecond
	nodes := cluster(t, 3, opts)
	for _, n := range nodes {
		connect(t, n, "/", nil)
	}
	child, childQueue := startChildNode(t, opts.TopicName)
	waitServerCount(t, nodes, "/", 4)

	killed := time.Now()
	if err := child.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	got := fetchSockets(t, nodes[0].io.In())
	if len(got) != 3 {
		t.Fatalf("fetched %d sockets, want the 3 of the surviving nodes", len(got))
	}
	if d := time.Since(killed); d > opts.HeartbeatTimeout+2*time.Second {
		t.Fatalf("fetchSockets answered %v after the kill, want about the heartbeat timeout", d)
	}
	waitServerCount(t, nodes, "/", 3)

	eventually(t, 30*time.Second, func() bool { return !queueExists(t, sqsClient, childQueue) },
		"the killed node's queue %s is removed", childQueue)
	topicArn := nodes[0].resources().topicArn
	subs, err := snsClient.ListSubscriptionsByTopic(context.Background(), &sns.ListSubscriptionsByTopicInput{TopicArn: &topicArn})
	if err != nil {
		t.Fatal(err)
	}
	if len(subs.Subscriptions) != 3 {
		t.Fatalf("%d subscriptions left, want the 3 live nodes'", len(subs.Subscriptions))
	}
	for i, n := range nodes {
		if !queueExists(t, sqsClient, n.resources().queueName) {
			t.Fatalf("live node %d lost its queue", i)
		}
		if s := n.builder.Stats(); s.Reprovisions != 0 {
			t.Fatalf("live node %d had to re-provision: %+v", i, s)
		}
	}
}
