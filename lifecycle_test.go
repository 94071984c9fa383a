package sqsadapter

// Integration tests beyond upstream's suite: what is left in AWS after Close, bad input on the
// real queue, isolation between clusters, dynamic namespaces, node expiry, response routing.

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func (n *node) resources() *resources { return n.builder.resources() }

func TestCloseRemovesQueueAndSubscription(t *testing.T) {
	snsClient, sqsClient := awsClients(t)
	n := startNode(t, testOptions(t))
	res := n.resources()
	ctx := context.Background()

	queues, err := sqsClient.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: &res.queueName})
	if err != nil || len(queues.QueueUrls) != 1 {
		t.Fatalf("before Close: queues %v, err %v", queues.QueueUrls, err)
	}
	if !hasSubscription(t, snsClient, res) {
		t.Fatal("before Close: no subscription")
	}

	n.close() // io.Close(nil), as a user shuts a server down

	queues, err = sqsClient.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: &res.queueName})
	if err != nil || len(queues.QueueUrls) != 0 {
		t.Fatalf("after Close: queues %v, err %v", queues.QueueUrls, err)
	}
	if hasSubscription(t, snsClient, res) {
		t.Fatal("after Close: the subscription is still there")
	}
	if err := n.builder.Close(ctx); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

func hasSubscription(t *testing.T, c *sns.Client, res *resources) bool {
	t.Helper()
	out, err := c.ListSubscriptionsByTopic(context.Background(), &sns.ListSubscriptionsByTopicInput{TopicArn: &res.topicArn})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range out.Subscriptions {
		if aws.ToString(s.SubscriptionArn) == res.subscriptionArn {
			return true
		}
	}
	return false
}

// garbageMessages are messages that are not cluster messages: a bad body, an unknown type,
// missing or mistyped attributes, a hostile msgpack length, a requesterUid on a heartbeat.
func garbageMessages() []sqs.SendMessageInput {
	str := func(s string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
	}
	bin := func(b []byte) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("Binary"), BinaryValue: b}
	}
	return []sqs.SendMessageInput{
		{MessageBody: aws.String("hello")},
		{MessageBody: aws.String("42"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{"nsp": str("/"), "uid": str("x")}},
		{MessageBody: aws.String("3"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{"nsp": str("/")}},
		{MessageBody: aws.String("3"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"nsp": str("/"), "uid": str("x"), "data": bin([]byte{0xc1, 0x00})}},
		{MessageBody: aws.String("3"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"nsp": str("/"), "uid": str("x"), "data": bin([]byte{0xdd, 0x7f, 0xff, 0xff, 0xff, 0x90})}},
		{MessageBody: aws.String("4"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"nsp": str("/"), "uid": str("x"), "data": str("not binary")}},
		{MessageBody: aws.String("3"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"nsp": bin([]byte("/")), "uid": str("x"), "data": bin([]byte{0x80})}},
		{MessageBody: aws.String("2"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"nsp": str("/"), "uid": str("x"), "requesterUid": str("y")}},
	}
}

func TestMalformedMessagesOnTheQueueAreDroppedAndTheClusterGoesOn(t *testing.T) {
	_, sqsClient := awsClients(t)
	nodes := cluster(t, 2, testOptions(t))
	cl, _ := connect(t, nodes[1], "/", nil)
	cl.record("after")
	queueURL := nodes[1].resources().queueURL
	garbage := garbageMessages()
	for i := range garbage {
		garbage[i].QueueUrl = &queueURL
		if _, err := sqsClient.SendMessage(context.Background(), &garbage[i]); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, func() bool { return nodes[1].builder.Stats().Malformed == uint64(len(garbage)) },
		"node 1 counts %d malformed messages", len(garbage))
	nodes[0].io.Emit("after")
	if e := cl.next(t); e.name != "after" {
		t.Fatalf("got %s", e.name)
	}
	eventually(t, 10*time.Second, func() bool {
		out, err := sqsClient.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
			QueueUrl: &queueURL,
			AttributeNames: []sqstypes.QueueAttributeName{
				sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			},
		})
		return err == nil && out.Attributes["ApproximateNumberOfMessages"] == "0" &&
			out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
	}, "the malformed messages are deleted from the queue")
}

func TestTwoClustersOnDifferentTopicsAreIsolated(t *testing.T) {
	a := cluster(t, 2, testOptions(t))
	b := cluster(t, 2, testOptions(t))
	clA, _ := connect(t, a[1], "/", nil)
	clB, _ := connect(t, b[1], "/", nil)
	clA.record("test", "marker")
	clB.record("test", "marker")
	a[0].io.Emit("test")
	if e := clA.next(t); e.name != "test" {
		t.Fatalf("cluster A client got %s", e.name)
	}
	b[0].io.Emit("marker")
	if e := clB.next(t); e.name != "marker" {
		t.Fatalf("cluster B client got %s first: A's broadcast crossed over", e.name)
	}
	for _, n := range append(a, b...) {
		if got := n.io.Sockets().Adapter().ServerCount(); got != 2 {
			t.Fatalf("ServerCount %d, want 2", got)
		}
	}
}

func TestDynamicNamespaceCreatedAfterStart(t *testing.T) {
	nodes := cluster(t, 3, testOptions(t))
	for _, n := range nodes {
		n.io.Of(regexp.MustCompile(`^/dyn-\d+$`), nil)
	}
	var clients []*testClient
	for _, n := range nodes {
		cl, _ := connect(t, n, "/dyn-7", nil) // the child namespace is created by this connect
		cl.record("test")
		clients = append(clients, cl)
	}
	waitServerCount(t, nodes, "/dyn-7", 3)
	nodes[2].io.Of("/dyn-7", nil).Emit("test", "dynamic")
	for _, cl := range clients {
		if e := cl.next(t); e.args[0] != "dynamic" {
			t.Fatalf("got %v", e.args)
		}
	}
}

// crash stops a node as a killed process would: no ADAPTER_CLOSE, no more heartbeats or polls.
// Its queue is still removed when the test ends.
func crash(n *node) {
	n.builder.simulateCrash()
}

func TestNodeExpiresAfterTheHeartbeatTimeoutAndPendingRequestsResolve(t *testing.T) {
	opts := testOptions(t)
	opts.RequestTimeout = 30 * time.Second // so only the expiry can end the request below
	nodes := cluster(t, 3, opts)
	serverOn(nodes[1], "hello", func(args ...any) { ackFromArgs(t, args)([]any{"from 1"}, nil) })
	serverOn(nodes[2], "hello", func(...any) {})

	crashed := time.Now()
	crash(nodes[2])
	ch := make(chan ackResult, 1)
	_ = nodes[0].io.ServerSideEmit("hello", ackInto(ch))
	r := awaitAck(t, ch)
	if r.err != nil || len(r.responses) != 1 || r.responses[0] != "from 1" {
		t.Fatalf("responses %#v, err %v", r.responses, r.err)
	}
	if d := time.Since(crashed); d < opts.HeartbeatTimeout-opts.HeartbeatInterval || d > opts.HeartbeatTimeout+2*time.Second {
		t.Fatalf("resolved %v after the crash, want about the heartbeat timeout (%v)", d, opts.HeartbeatTimeout)
	}
	waitServerCount(t, nodes[:2], "/", 2)
}

func TestResponsesReachOnlyTheirRequester(t *testing.T) {
	c := setupThree(t)
	for i, n := range c.nodes {
		serverOn(n, "who", func(args ...any) { ackFromArgs(t, args)([]any{"node" + strconv.Itoa(i)}, nil) })
	}
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(2)
		go func() { // every node asks at once: each must get exactly the answers to its own request
			defer wg.Done()
			ch := make(chan ackResult, 1)
			_ = c.nodes[i].io.ServerSideEmit("who", ackInto(ch))
			r := awaitAck(t, ch)
			if r.err != nil || len(r.responses) != 2 {
				t.Errorf("node %d: responses %v, err %v", i, r.responses, r.err)
			}
		}()
		go func() {
			defer wg.Done()
			if got := fetchSockets(t, c.nodes[i].io.In()); len(got) != 3 {
				t.Errorf("node %d fetched %d sockets", i, len(got))
			}
		}()
	}
	wg.Wait()
}

func TestInitAfterMessagesWereQueued(t *testing.T) {
	// The server publishes INITIAL_HEARTBEAT for "/" as it is built, before Init: it must wait
	// for the topic, then leave, so that the other nodes count this one.
	opts := testOptions(t)
	first := startNode(t, opts)
	second := startNode(t, opts) // startNode builds the server, then calls Init
	waitServerCount(t, []*node{first, second}, "/", 2)
}

func TestCloseUnderLoadDeliversOrReportsAndMeetsItsDeadline(t *testing.T) {
	opts := testOptions(t)
	nodes := cluster(t, 2, opts)
	cl, _ := connect(t, nodes[1], "/", nil)
	var received atomic.Int64
	_ = cl.On("load", func(...any) { received.Add(1) })
	var unpublished atomic.Int64
	sender := nodes[0]
	const sent = 2000
	for i := range sent {
		sender.io.Emit("load", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := sender.builder.Close(ctx)
	took := time.Since(start)
	if took > 5*time.Second+500*time.Millisecond {
		t.Fatalf("Close took %v with a 5 s deadline", took)
	}
	if err != nil {
		// Whatever did not leave is counted in the error.
		var n int64
		if _, scanErr := fmt.Sscanf(err.Error(), "sqsadapter: %d cluster messages not published", &n); scanErr != nil {
			t.Fatalf("Close: %v", err)
		}
		unpublished.Store(n)
	}
	published := int64(sender.builder.Stats().Published)
	eventually(t, 30*time.Second, func() bool { return received.Load()+unpublished.Load() >= sent },
		"every broadcast is delivered or reported (received %d, reported unpublished %d, published %d)",
		received.Load(), unpublished.Load(), published)
	t.Logf("Close took %v: %d published, %d received by a client on the other node, %d reported unpublished",
		took.Round(time.Millisecond), published, received.Load(), unpublished.Load())
}

// With the subscription filter a node's queue gets neither its own messages nor the responses
// meant for other nodes; without it (upstream's way) it gets both, only to drop them.
func TestSubscriptionFilterKeepsOutWhatANodeWouldDrop(t *testing.T) {
	for _, filtered := range []bool{true, false} {
		t.Run(fmt.Sprintf("filtered=%v", filtered), func(t *testing.T) {
			opts := testOptions(t)
			opts.DisableSubscriptionFilter = !filtered
			c := &threeNodes{nodes: cluster(t, 3, opts)}
			for _, n := range c.nodes {
				cl, s := connect(t, n, "/", nil)
				c.clients, c.sockets = append(c.clients, cl), append(c.sockets, s)
			}
			fetchSockets(t, c.nodes[0].io.In()) // two responses, each also seen by the third node unfiltered
			c.nodes[0].io.Emit("b")
			assertStays(t, c, "none", false, false, false) // waits until every client got a later broadcast
			var notForUs uint64
			for _, n := range c.nodes {
				notForUs += n.builder.Stats().NotForUs
			}
			if filtered && notForUs != 0 {
				t.Fatalf("%d messages delivered only to be dropped", notForUs)
			}
			if !filtered && notForUs == 0 {
				t.Fatal("without the filter every node receives its own messages: the count is broken")
			}
			t.Logf("messages delivered only to be dropped: %d", notForUs)
		})
	}
}
