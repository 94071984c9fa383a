package sqsadapter

// Signing keys on clusters over the emulator: forgeries and replays published straight to the
// topic, key rotation, the emitter, Node servers.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/socketio-go/aws-sqs-adapter/emitter"
	"github.com/socketio-go/aws-sqs-adapter/internal/nodepeer"
	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// broadcast returns the first BROADCAST published, nil if none yet.
func (r *snsTap) broadcast() *sns.PublishInput {
	for _, in := range r.published() {
		if *in.Message == (&wire.Message{Type: wire.Broadcast}).Body() {
			return in
		}
	}
	return nil
}

// forgedBroadcast is a BROADCAST of event to every client of "/", from uid, signed with key
// unless it is nil.
func forgedBroadcast(t *testing.T, topicArn, topicName, uid, event string, key []byte) *sns.PublishInput {
	t.Helper()
	data, err := wire.Encode(&wire.BroadcastData{
		Packet: wire.Packet{Type: wire.PacketEvent, Data: []any{event}},
		Opts:   wire.Options{Rooms: []string{}, Except: []string{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &wire.Message{Type: wire.Broadcast, Nsp: "/", UID: uid, Data: data, ID: wire.NewID()}
	if key != nil {
		m.Sign(key, topicName, time.Now())
	}
	return m.PublishInput(topicArn)
}

func publishRaw(t *testing.T, in *sns.PublishInput) {
	t.Helper()
	snsClient, _ := awsClients(t)
	if _, err := snsClient.Publish(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// reasonsSink collects the reasons of the RejectedMessageErrors a node reports.
type reasonsSink struct {
	mu      sync.Mutex
	reasons []error
	uids    []string
}

func (s *reasonsSink) onError(err error) {
	var r *RejectedMessageError
	if errors.As(err, &r) {
		s.mu.Lock()
		s.reasons = append(s.reasons, r.Reason)
		s.uids = append(s.uids, r.UID)
		s.mu.Unlock()
	}
}

func (s *reasonsSink) has(reason error, uid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.reasons {
		if errors.Is(r, reason) && (uid == "" || s.uids[i] == uid) {
			return true
		}
	}
	return false
}

// A principal that may publish to the topic but holds no key: an unsigned broadcast, one signed
// with another key, a captured genuine broadcast published again at once and again after its
// signature expired. Each is refused, counted and reported; the cluster goes on.
func TestForgedAndReplayedMessagesAreRefusedAndTheClusterGoesOn(t *testing.T) {
	opts := testOptions(t)
	opts.SigningKeys = [][]byte{keyOld}
	opts.SignatureMaxAge = 4 * time.Second
	snsClient, sqsClient := awsClients(t)
	capture := &snsTap{SNSAPI: snsClient}
	o0, o1 := *opts, *opts
	sink := &reasonsSink{}
	o1.OnError = sink.onError
	sender := startNodeWith(t, NewAdapterBuilder(capture, sqsClient, &o0))
	receiver := startNode(t, &o1)
	waitServerCount(t, []*node{sender, receiver}, "/", 2)
	cl, _ := connect(t, receiver, "/", nil)
	cl.record("before", "forged", "after")

	sender.io.Emit("before")
	if e := cl.next(t); e.name != "before" {
		t.Fatalf("got %s", e.name)
	}
	eventually(t, 5*time.Second, func() bool { return capture.broadcast() != nil }, "the broadcast is captured")
	genuine := capture.broadcast()

	topicArn := sender.resources().topicArn
	publishRaw(t, forgedBroadcast(t, topicArn, opts.TopicName, "forger0000000001", "forged", nil))
	publishRaw(t, forgedBroadcast(t, topicArn, opts.TopicName, "forger0000000002", "forged", keyOther))
	publishRaw(t, genuine)
	time.Sleep(opts.SignatureMaxAge + time.Second)
	publishRaw(t, genuine)

	eventually(t, 10*time.Second, func() bool {
		s := receiver.builder.Stats()
		return s.Unsigned == 1 && s.BadSignatures == 1 && s.Duplicates >= 1 && s.ExpiredSignatures == 1
	}, "the receiver refuses the four: %+v", receiver.builder.Stats())
	for _, want := range []struct {
		reason error
		uid    string
	}{{ErrUnsigned, "forger0000000001"}, {ErrBadSignature, "forger0000000002"}, {ErrSignatureExpired, ""}} {
		if !sink.has(want.reason, want.uid) {
			t.Errorf("no report of %v from %q", want.reason, want.uid)
		}
	}

	sender.io.Emit("after")
	if e := cl.next(t); e.name != "after" {
		t.Fatalf("got %s %v, want after", e.name, e.args)
	}
	cl.none(t)
	if s := receiver.builder.Stats(); s.Malformed != 0 || s.HandlerPanics != 0 || s.Replays != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// everyBroadcastArrives connects a client to each node; each node broadcasts once, and every
// client must receive every broadcast.
func everyBroadcastArrives(t *testing.T, nodes []*node, stage string) {
	t.Helper()
	clients := make([]*testClient, len(nodes))
	events := make([]string, len(nodes))
	for i, n := range nodes {
		clients[i], _ = connect(t, n, "/", nil)
		events[i] = fmt.Sprintf("%s from node %d", stage, i)
	}
	for _, c := range clients {
		c.record(events...)
	}
	for i, n := range nodes {
		n.io.Emit(events[i])
	}
	for i, c := range clients {
		var got []string
		for range events {
			got = append(got, c.next(t).name)
		}
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(events)); !slices.Equal(got, want) {
			t.Fatalf("%s: client of node %d got %v, want %v", stage, i, got, want)
		}
		c.Disconnect()
	}
}

// Keys rotate without a lost message when every server first learns the new key, then signs
// with it, then forgets the old one: [old] -> [old, new] -> [new, old] -> [new], one server at a
// time, every broadcast checked after each restart, and no server ever refuses a message.
// (Going from [old] straight to [new, old] would lose messages: a server that has not yet
// restarted cannot check what the restarted ones sign with the new key.)
func TestSigningKeyRotationLosesNoMessage(t *testing.T) {
	opts := testOptions(t)
	steps := [][][]byte{{keyOld}, {keyOld, keyNew}, {keyNew, keyOld}, {keyNew}}
	start := func(keys [][]byte) *node {
		o := *opts
		o.SigningKeys = keys
		return startNode(t, &o)
	}
	nodes := []*node{start(steps[0]), start(steps[0])}
	waitServerCount(t, nodes, "/", 2)
	everyBroadcastArrives(t, nodes, "[old]")
	var refused uint64
	countRefused := func(n *node) {
		s := n.builder.Stats()
		refused += s.Unsigned + s.BadSignatures + s.ExpiredSignatures + s.Replays
	}
	for step, keys := range steps[1:] {
		for i := range nodes {
			countRefused(nodes[i])
			nodes[i].close()
			nodes[i] = start(keys)
			waitServerCount(t, nodes, "/", 2)
			everyBroadcastArrives(t, nodes, fmt.Sprintf("step %d, node %d restarted", step+1, i))
		}
	}
	for _, n := range nodes {
		countRefused(n)
	}
	if refused != 0 {
		t.Fatalf("%d messages refused during the rotation", refused)
	}
}

// An emitter with one of the cluster's keys reaches the clients; one without is refused by
// every server, which counts and reports it.
func TestEmitterSigningKey(t *testing.T) {
	opts := testOptions(t)
	opts.SigningKeys = [][]byte{keyNew, keyOld}
	nodes := cluster(t, 2, opts)
	var clients []*testClient
	for _, n := range nodes {
		c, _ := connect(t, n, "/", nil)
		c.record("signed", "unsigned", "sync")
		clients = append(clients, c)
	}
	snsClient, _ := awsClients(t)
	newEmitter := func(key []byte) *emitter.Emitter {
		e, err := emitter.New(emitCtx(t), snsClient, &emitter.Options{TopicName: opts.TopicName, SigningKey: key, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	signed, unsigned := newEmitter(keyOld), newEmitter(nil)

	if err := signed.Emit(emitCtx(t), "signed"); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if e := c.next(t); e.name != "signed" {
			t.Fatalf("client %d got %s", i, e.name)
		}
	}
	if err := unsigned.Emit(emitCtx(t), "unsigned"); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		eventually(t, 10*time.Second, func() bool { return n.builder.Stats().Unsigned == 1 }, "node %d refuses the unsigned emitter", i)
	}
	if err := signed.Emit(emitCtx(t), "sync"); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if e := c.next(t); e.name != "sync" {
			t.Fatalf("client %d got %s, want sync only", i, e.name)
		}
	}
}

// Node servers cannot sign. With SigningKeys alone, Go servers refuse everything a Node server
// sends (and report its uid), while the Node server still acts on what the Go servers send: it
// is no member of the cluster for them. With AcceptUnsigned the mixed cluster works both ways,
// and a Node server's fetchSockets of a Go socket gets its handshake without the secrets.
func TestMixedClusterWithSigningKeys(t *testing.T) {
	for _, acceptUnsigned := range []bool{false, true} {
		t.Run(fmt.Sprintf("AcceptUnsigned=%v", acceptUnsigned), func(t *testing.T) {
			opts := testOptions(t)
			opts.SigningKeys = [][]byte{keyOld}
			opts.AcceptUnsigned = acceptUnsigned
			sink := &reasonsSink{}
			opts.OnError = sink.onError
			gos := cluster(t, 2, opts)
			peer := nodepeer.Start(t, peerConfig(opts, "node-peer"))
			gc, s := connect(t, gos[0], "/", map[string]any{"token": "s3cr3t"})
			g := newGoClient(gc, s, "Go client")
			nc := connectNodeClient(t, peer, "/", nil)
			g.listen(t, "from Go", "from Node")
			nc.listen(t, "from Go", "from Node")

			if acceptUnsigned {
				waitCounts(t, gos, []*nodepeer.Peer{peer}, "/", 3)
			} else {
				eventually(t, 10*time.Second, func() bool {
					var n int
					peerCallInto(t, peer, "serverCount", map[string]any{"nsp": "/"}, &n)
					return n == 3 && sink.has(ErrUnsigned, peer.UID("/"))
				}, "the Node server counts the Go servers, and a Go server reports the Node server's uid")
				for i, n := range gos {
					if c := n.io.Sockets().Adapter().ServerCount(); c != 2 {
						t.Fatalf("Go node %d counts %d servers, want 2: the Node server is refused", i, c)
					}
				}
			}

			// Go to Node works either way: Node ignores the signature.
			goSender{gos[0]}.emit(t, sel{}, "from Go")
			for _, c := range []anyClient{g, nc} {
				if ev, _ := c.next(t); ev != "from Go" {
					t.Fatalf("%s got %s", c, ev)
				}
			}
			nodeSender{peer}.emit(t, sel{}, "from Node")
			if ev, _ := nc.next(t); ev != "from Node" {
				t.Fatalf("%s got %s", nc, ev)
			}
			if acceptUnsigned {
				if ev, _ := g.next(t); ev != "from Node" {
					t.Fatalf("%s got %s", g, ev)
				}
				var list []struct {
					ID        string
					Handshake map[string]any
				}
				peerCallInto(t, peer, "fetchSockets", map[string]any{"rooms": []string{string(s.Id())}, "timeoutMs": 3000}, &list)
				if len(list) != 1 || list[0].ID != string(s.Id()) || fmt.Sprint(list[0].Handshake["auth"]) != "map[]" {
					t.Fatalf("fetchSockets: %+v, want the Go socket without its auth token", list)
				}
			} else {
				// The Go client gets the next Go broadcast, not the Node one.
				goSender{gos[0]}.emit(t, sel{}, "from Go")
				if ev, _ := g.next(t); ev != "from Go" {
					t.Fatalf("%s got %s: the Node broadcast was acted on", g, ev)
				}
			}
			// Messages of two senders keep no order between them: the Node broadcast may reach a
			// Go server after the Go one.
			for i, n := range gos {
				eventually(t, 10*time.Second, func() bool { return n.builder.Stats().Unsigned > 0 },
					"Go node %d counts the Node server's messages as unsigned", i)
				if st := n.builder.Stats(); st.BadSignatures != 0 {
					t.Fatalf("Go node %d: %+v, want no bad signatures", i, st)
				}
			}
		})
	}
}
