package sqsadapter

// Large messages (largemessage.go) on the emulator: fauxqs emulates S3 too.

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/socketio-go/aws-sqs-adapter/emitter"
	"github.com/socketio-go/aws-sqs-adapter/internal/offload"
	"github.com/socketio-go/aws-sqs-adapter/internal/testsupport"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// countingS3 counts the S3 requests of the node (or emitter) it is given to, and can delete
// each object right after it is put, as an out-of-band deletion before any receiver reads it.
type countingS3 struct {
	*s3.Client
	puts, gets, lifecyclePuts atomic.Int64
	deleteAfterPut            atomic.Bool
}

func (c *countingS3) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	c.puts.Add(1)
	out, err := c.Client.PutObject(ctx, in, opts...)
	if err == nil && c.deleteAfterPut.Load() {
		if _, derr := c.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: in.Bucket, Key: in.Key}); derr != nil {
			return nil, derr
		}
	}
	return out, err
}

func (c *countingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	c.gets.Add(1)
	return c.Client.GetObject(ctx, in, opts...)
}

func (c *countingS3) PutBucketLifecycleConfiguration(ctx context.Context, in *s3.PutBucketLifecycleConfigurationInput, opts ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error) {
	c.lifecyclePuts.Add(1)
	return c.Client.PutBucketLifecycleConfiguration(ctx, in, opts...)
}

// testS3 returns an S3 client of the endpoint under test (path-style: an emulator on
// 127.0.0.1 has no bucket subdomains) and a new bucket of the test's own.
func testS3(t testing.TB) (*s3.Client, string) {
	t.Helper()
	client := s3.NewFromConfig(testsupport.AWSConfig(t), func(o *s3.Options) { o.UsePathStyle = true })
	bucket := testsupport.UniqueName("sqsadapter-test")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	return client, bucket
}

// largeOptions are testOptions with large messages in a bucket of the test's own; each node
// started with a copy counts its S3 requests in its own countingS3 (see nodeS3).
func largeOptions(t testing.TB) (*Options, *s3.Client) {
	client, bucket := testS3(t)
	o := testOptions(t)
	o.LargeMessageBucket = bucket
	return o, client
}

// largeCluster starts size nodes, each with its own countingS3.
func largeCluster(t *testing.T, size int, opts *Options, client *s3.Client) ([]*node, []*countingS3) {
	t.Helper()
	nodes := make([]*node, size)
	counters := make([]*countingS3, size)
	for i := range nodes {
		o := *opts
		counters[i] = &countingS3{Client: client}
		o.S3Client = counters[i]
		nodes[i] = startNode(t, &o)
	}
	waitServerCount(t, nodes, "/", size)
	return nodes, counters
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	copy(b, randomHex(16))
	return b
}

func sum(cs []*countingS3, f func(*countingS3) int64) (n int64) {
	for _, c := range cs {
		n += f(c)
	}
	return n
}

// A 900 KiB binary broadcast from a Go server reaches the clients of every other server with
// the same bytes, for one PutObject and N-1 GetObject.
func TestLargeBroadcast(t *testing.T) {
	opts, client := largeOptions(t)
	nodes, s3s := largeCluster(t, 3, opts, client)
	clients := make([]*testClient, 3)
	for i, n := range nodes {
		clients[i], _ = connect(t, n, "/", nil)
		clients[i].record("big", "small")
	}
	payload := randomBytes(900 * 1024)
	nodes[0].io.Emit("big", payload)
	for i := range clients {
		ev := clients[i].next(t)
		if ev.name != "big" || len(ev.args) != 1 || !isBytes(ev.args[0], payload) {
			got, _ := asBytes(ev.args[0])
			t.Fatalf("client %d got %s with %d bytes, want big with the %d bytes sent", i, ev.name, len(got), len(payload))
		}
	}
	eventually(t, 5*time.Second, func() bool {
		return sum(s3s, func(c *countingS3) int64 { return c.gets.Load() }) == 2
	}, "2 GetObject")
	if puts, gets := sum(s3s, func(c *countingS3) int64 { return c.puts.Load() }), sum(s3s, func(c *countingS3) int64 { return c.gets.Load() }); puts != 1 || gets != 2 {
		t.Fatalf("S3 requests for one broadcast on 3 servers: %d PUT, %d GET; want 1 PUT and 2 GET", puts, gets)
	}
	t.Logf("S3 requests for one offloaded broadcast on 3 servers: 1 PUT, 2 GET")
	if s := nodes[0].builder.Stats(); s.LargeMessagesOffloaded != 1 {
		t.Fatalf("sender: %+v, want LargeMessagesOffloaded 1", s)
	}
	for _, n := range nodes[1:] {
		if s := n.builder.Stats(); s.LargeMessagesFetched != 1 || s.LargeMessageFailures != 0 {
			t.Fatalf("receiver: %+v, want LargeMessagesFetched 1", s)
		}
	}
	// The order of one sender's messages holds across inline and offloaded ones.
	nodes[0].io.Emit("small", 1)
	nodes[0].io.Emit("big", payload[:300*1024])
	nodes[0].io.Emit("small", 2)
	for i := range clients {
		for _, want := range []string{"small", "big", "small"} {
			if ev := clients[i].next(t); ev.name != want {
				t.Fatalf("client %d got %s, want %s (order of small, big, small)", i, ev.name, want)
			}
		}
	}
}

// The emitter offloads the same way.
func TestLargeBroadcastFromEmitter(t *testing.T) {
	opts, client := largeOptions(t)
	nodes, s3s := largeCluster(t, 3, opts, client)
	clients := make([]*testClient, 3)
	for i, n := range nodes {
		clients[i], _ = connect(t, n, "/", nil)
		clients[i].record("big")
	}
	snsClient, _ := awsClients(t)
	es3 := &countingS3{Client: client}
	e, err := emitter.New(emitCtx(t), snsClient, &emitter.Options{
		TopicName: opts.TopicName, Logger: testLogger(t), S3Client: es3, LargeMessageBucket: opts.LargeMessageBucket,
	})
	if err != nil {
		t.Fatal(err)
	}
	payload := randomBytes(900 * 1024)
	if err := e.Emit(emitCtx(t), "big", payload); err != nil {
		t.Fatal(err)
	}
	for i := range clients {
		if ev := clients[i].next(t); ev.name != "big" || !isBytes(ev.args[0], payload) {
			t.Fatalf("client %d got %s, want big with the bytes sent", i, ev.name)
		}
	}
	if puts, gets := es3.puts.Load(), sum(s3s, func(c *countingS3) int64 { return c.gets.Load() }); puts != 1 || gets != 3 {
		t.Fatalf("emitter broadcast to 3 servers: %d PUT, %d GET; want 1 and 3", puts, gets)
	}
	// Without a bucket, the emitter refuses it as before.
	plain, err := emitter.New(emitCtx(t), snsClient, &emitter.Options{TopicName: opts.TopicName, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var tooLarge *emitter.MessageTooLargeError
	if err := plain.Emit(emitCtx(t), "big", payload); !errors.As(err, &tooLarge) {
		t.Fatalf("emitter without a bucket: %v, want a MessageTooLargeError", err)
	}
}

// serverSideEmit with a large argument reaches the other servers' handlers.
func TestLargeServerSideEmit(t *testing.T) {
	opts, client := largeOptions(t)
	nodes, _ := largeCluster(t, 3, opts, client)
	payload := randomBytes(700 * 1024)
	got := make(chan []byte, 2)
	for _, n := range nodes[1:] {
		serverOn(n, "big", func(args ...any) {
			b, _ := asBytes(args[0])
			got <- b
		})
	}
	if err := nodes[0].io.ServerSideEmit("big", payload); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case b := <-got:
			if !bytes.Equal(b, payload) {
				t.Fatalf("server got %d bytes, want the %d sent", len(b), len(payload))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serverSideEmit did not arrive in 10s")
		}
	}
	// A large acknowledgement, a response to one Go server, goes through S3 too.
	answer := randomBytes(400 * 1024)
	for _, n := range nodes[1:] {
		serverOn(n, "ask", func(args ...any) { ackFromArgs(t, args)([]any{answer}, nil) })
	}
	ch := make(chan ackResult, 1)
	if err := nodes[0].io.ServerSideEmit("ask", ackInto(ch)); err != nil {
		t.Fatal(err)
	}
	r := awaitAck(t, ch)
	if r.err != nil || len(r.responses) != 2 {
		t.Fatalf("responses: %d, err %v", len(r.responses), r.err)
	}
	for _, v := range r.responses {
		if !isBytes(v, answer) {
			b, _ := asBytes(v)
			t.Fatalf("a response of %d bytes (%T), want the %d sent", len(b), v, len(answer))
		}
	}
	if s := nodes[0].builder.Stats(); s.LargeMessagesFetched != 2 {
		t.Fatalf("requester stats %+v, want the 2 responses fetched from S3", s)
	}
}

// sizedBroadcast returns a BROADCAST of event from node n on "/" whose size, as SNS counts it
// (body and every attribute, msgId included), is exactly size.
func sizedBroadcast(t *testing.T, n *node, event string, size int) *wire.Message {
	t.Helper()
	uid := n.builder.namespaceUID("/")
	id := n.builder.messageID(&wire.Message{})
	build := func(payload int) *wire.Message {
		data, err := wire.Encode(&wire.BroadcastData{
			Packet: wire.Packet{Type: 2, Data: []any{event, make([]byte, payload)}, Nsp: "/"},
			Opts:   wire.Options{Rooms: []string{}, Except: []string{}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return &wire.Message{Type: wire.Broadcast, Nsp: "/", UID: uid, Data: data, ID: id}
	}
	probe := build(size / 2)
	m := build(size/2 + size - probe.Size())
	if m.Size() != size {
		t.Fatalf("built a message of %d bytes, want %d", m.Size(), size)
	}
	return m
}

// A message exactly at the threshold (attributes counted) goes inline; one byte more goes
// through S3. Both arrive; the inline one also passes the emulator's own size check.
func TestLargeMessageThreshold(t *testing.T) {
	opts, client := largeOptions(t)
	nodes, s3s := largeCluster(t, 2, opts, client)
	c, _ := connect(t, nodes[1], "/", nil)
	c.record("under", "over")
	under := sizedBroadcast(t, nodes[0], "under", DefaultLargeMessageThreshold)
	if err := nodes[0].builder.publishMessage(under); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(t); ev.name != "under" {
		t.Fatalf("got %s, want under", ev.name)
	}
	if n := s3s[0].puts.Load(); n != 0 {
		t.Fatalf("a message at the threshold made %d PutObject, want 0", n)
	}
	over := sizedBroadcast(t, nodes[0], "over", DefaultLargeMessageThreshold+1)
	if err := nodes[0].builder.publishMessage(over); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(t); ev.name != "over" {
		t.Fatalf("got %s, want over", ev.name)
	}
	if n := s3s[0].puts.Load(); n != 1 {
		t.Fatalf("a message one byte over the threshold made %d PutObject, want 1", n)
	}
}

// An object deleted before the receivers read it: each reports it and counts it, and the poll
// loop goes on: a later broadcast, small or large, arrives.
func TestLargeMessageObjectMissing(t *testing.T) {
	opts, client := largeOptions(t)
	var mu sync.Mutex
	var reported []error
	opts.OnError = func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}
	nodes, s3s := largeCluster(t, 2, opts, client)
	c, _ := connect(t, nodes[1], "/", nil)
	c.record("big", "after")
	s3s[0].deleteAfterPut.Store(true)
	nodes[0].io.Emit("big", randomBytes(400*1024))
	eventually(t, 10*time.Second, func() bool { return nodes[1].builder.Stats().LargeMessageFailures == 1 },
		"the receiver counts the missing object")
	mu.Lock()
	var found bool
	for _, err := range reported {
		var apiErr *s3types.NoSuchKey
		found = found || errors.As(err, &apiErr)
	}
	mu.Unlock()
	if !found {
		t.Fatalf("reported %v, want a NoSuchKey error of s3:GetObject", reported)
	}
	nodes[0].io.Emit("after", 1)
	start := time.Now()
	if ev := c.next(t); ev.name != "after" {
		t.Fatalf("got %s, want after (the dropped message must not be delivered)", ev.name)
	}
	// The dropped message kept its place in the sender's order: nothing waited for it.
	if d := time.Since(start); d > DefaultReorderWindow {
		t.Logf("the next message took %v", d)
	}
	s3s[0].deleteAfterPut.Store(false)
	payload := randomBytes(400 * 1024)
	nodes[0].io.Emit("big", payload)
	if ev := c.next(t); ev.name != "big" || !isBytes(ev.args[0], payload) {
		t.Fatalf("got %s, want the later big broadcast", ev.name)
	}
	if s := nodes[1].builder.Stats(); s.LargeMessagesFetched != 1 || s.LargeMessageFailures != 1 || s.Malformed != 0 {
		t.Fatalf("receiver stats %+v, want 1 fetched, 1 failure", s)
	}
}

// With LargeMessageLifecycle, Init adds a rule expiring the prefix after a day and keeps the
// bucket's other rules; a second node finds it there and writes nothing. (The expiry itself is
// S3's; fauxqs stores lifecycle rules but does not apply them.)
func TestLargeMessageLifecycle(t *testing.T) {
	opts, client := largeOptions(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	other := s3types.LifecycleRule{
		ID: aws.String("someone-elses"), Status: s3types.ExpirationStatusEnabled,
		Filter:     &s3types.LifecycleRuleFilter{Prefix: aws.String("logs/")},
		Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(30)},
	}
	if _, err := client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket: &opts.LargeMessageBucket, LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{other}},
	}); err != nil {
		t.Fatal(err)
	}
	opts.LargeMessageLifecycle = true
	_, s3s := largeCluster(t, 2, opts, client)
	out, err := client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &opts.LargeMessageBucket})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]s3types.LifecycleRule{}
	for _, r := range out.Rules {
		byID[aws.ToString(r.ID)] = r
	}
	if _, ok := byID["someone-elses"]; !ok || len(out.Rules) != 2 {
		t.Fatalf("rules %+v: want the bucket's own rule kept and ours added", out.Rules)
	}
	ours, ok := byID[offload.RuleID(DefaultLargeMessagePrefix)]
	if !ok || ours.Filter == nil || aws.ToString(ours.Filter.Prefix) != DefaultLargeMessagePrefix ||
		ours.Expiration == nil || aws.ToInt32(ours.Expiration.Days) != 1 || ours.Status != s3types.ExpirationStatusEnabled {
		t.Fatalf("our rule %+v: want prefix %q expiring after 1 day", ours, DefaultLargeMessagePrefix)
	}
	if a, b := s3s[0].lifecyclePuts.Load(), s3s[1].lifecyclePuts.Load(); a != 1 || b != 0 {
		t.Fatalf("PutBucketLifecycleConfiguration calls: first node %d, second %d; want 1 and 0", a, b)
	}
}

// Without a bucket nothing goes to S3: a broadcast over the SNS limit goes in parts; options
// that ask for large messages are checked.
func TestLargeMessagesOff(t *testing.T) {
	n := startNode(t, testOptions(t))
	// Alone, a Go server is a cluster of Go servers only: the message goes in parts
	// (TestWhoGetsParts covers what is refused instead).
	if err := n.builder.publishMessage(sizedBroadcast(t, n, "big", wire.MaxMessageSize+1)); err != nil {
		t.Fatalf("publish over the limit without a bucket: %v", err)
	}
	if s := n.builder.Stats(); s.MessagesSplit != 1 || s.LargeMessagesOffloaded != 0 {
		t.Fatalf("stats %+v", s)
	}
	for _, o := range []Options{
		{LargeMessageBucket: "b"}, // no client
		{LargeMessageLifecycle: true},
		{LargeMessageBucket: "b", S3Client: &countingS3{}, LargeMessageThreshold: wire.MaxMessageSize + 1},
	} {
		c := o.withDefaults()
		if err := c.validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%+v: %v, want ErrInvalidOptions", o, err)
		}
	}
}

// In a signed cluster an offloaded message is signed over its data, not its pointer: receivers
// read the object, then check the signature; an emitter with the key reaches them too.
func TestLargeBroadcastInASignedCluster(t *testing.T) {
	opts, client := largeOptions(t)
	key := []byte("a cluster key of 32 bytes, test!")
	opts.SigningKeys = [][]byte{key}
	nodes, _ := largeCluster(t, 2, opts, client)
	cl, _ := connect(t, nodes[1], "/", nil)
	cl.record("big")
	payload := randomBytes(400 * 1024)
	nodes[0].io.Emit("big", payload)
	if ev := cl.next(t); ev.name != "big" || !isBytes(ev.args[0], payload) {
		t.Fatalf("got %s, want the big broadcast", ev.name)
	}
	snsClient, _ := awsClients(t)
	e, err := emitter.New(emitCtx(t), snsClient, &emitter.Options{
		TopicName: opts.TopicName, SigningKey: key, S3Client: client, LargeMessageBucket: opts.LargeMessageBucket,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Emit(emitCtx(t), "big", payload); err != nil {
		t.Fatal(err)
	}
	if ev := cl.next(t); ev.name != "big" || !isBytes(ev.args[0], payload) {
		t.Fatalf("got %s, want the emitter's big broadcast", ev.name)
	}
	if s := nodes[1].builder.Stats(); s.BadSignatures != 0 || s.LargeMessagesFetched != 2 {
		t.Fatalf("receiver %+v: want 2 large messages fetched and no signature refused", s)
	}
}
