package sqsadapter

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// policyRecorder remembers the topic policy Init sets.
type policyRecorder struct {
	*fakeAWS
	sets []*sns.SetTopicAttributesInput
}

func (p *policyRecorder) SetTopicAttributes(ctx context.Context, in *sns.SetTopicAttributesInput, o ...func(*sns.Options)) (*sns.SetTopicAttributesOutput, error) {
	p.sets = append(p.sets, in)
	return p.fakeAWS.SetTopicAttributes(ctx, in, o...)
}

type policyStatement struct {
	Sid       string
	Effect    string
	Principal map[string]string
	Action    []string
	Resource  string
	Condition map[string]map[string]any
}

func initWithTopicPolicy(t *testing.T, p *TopicPolicy) (*policyRecorder, error) {
	t.Helper()
	rec := &policyRecorder{fakeAWS: &fakeAWS{}}
	b := NewAdapterBuilder(rec, rec.fakeAWS, &Options{TopicName: "chat", TopicPolicy: p, Logger: testLogger(t)})
	err := b.Init(context.Background())
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return rec, err
}

func statementsOf(t *testing.T, rec *policyRecorder) map[string]policyStatement {
	t.Helper()
	if len(rec.sets) != 1 || *rec.sets[0].AttributeName != "Policy" || *rec.sets[0].TopicArn != "arn:aws:sns:us-east-1:000000000000:chat" {
		t.Fatalf("SetTopicAttributes calls %+v", rec.sets)
	}
	var doc struct{ Statement []policyStatement }
	if err := json.Unmarshal([]byte(*rec.sets[0].AttributeValue), &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]policyStatement{}
	for _, s := range doc.Statement {
		if s.Resource != "arn:aws:sns:us-east-1:000000000000:chat" {
			t.Fatalf("statement %+v on another resource", s)
		}
		out[s.Sid] = s
	}
	return out
}

func TestTopicPolicyLimitsTheTopicToTheAccount(t *testing.T) {
	rec, err := initWithTopicPolicy(t, &TopicPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock() // the poll goroutine is calling ReceiveMessage
	calls := slices.Clone(rec.calls)
	rec.mu.Unlock()
	if i, j := slices.Index(calls, "CreateTopic"), slices.Index(calls, "SetTopicAttributes"); i < 0 || j != i+1 {
		t.Fatalf("calls %v: the policy must follow CreateTopic", calls)
	}
	st := statementsOf(t, rec)
	if len(st) != 2 {
		t.Fatalf("statements %+v", st)
	}
	allow := st["AccountAdministersAndUses"]
	if allow.Effect != "Allow" || allow.Principal["AWS"] != "arn:aws:iam::000000000000:root" || len(allow.Action) != 8 {
		t.Fatalf("allow %+v", allow)
	}
	deny := st["NoOtherAccount"]
	if deny.Effect != "Deny" || deny.Principal["AWS"] != "*" || !reflect.DeepEqual(deny.Action, []string{"SNS:Publish", "SNS:Subscribe"}) ||
		deny.Condition["StringNotEquals"]["aws:PrincipalAccount"] != "000000000000" {
		t.Fatalf("deny %+v", deny)
	}
}

func TestTopicPolicyWithPrincipals(t *testing.T) {
	servers := []string{"arn:aws:iam::000000000000:role/chat-server-*"}
	publishers := []string{"arn:aws:iam::000000000000:role/chat-worker"}
	rec, err := initWithTopicPolicy(t, &TopicPolicy{Servers: servers, Publishers: publishers})
	if err != nil {
		t.Fatal(err)
	}
	st := statementsOf(t, rec)
	sub, pub := st["OnlyServersSubscribe"], st["OnlyServersAndPublishersPublish"]
	if len(st) != 4 || sub.Effect != "Deny" || !reflect.DeepEqual(sub.Action, []string{"SNS:Subscribe"}) ||
		!reflect.DeepEqual(sub.Condition["ArnNotLike"]["aws:PrincipalArn"], []any{servers[0]}) {
		t.Fatalf("subscribe %+v", sub)
	}
	if pub.Effect != "Deny" || !reflect.DeepEqual(pub.Action, []string{"SNS:Publish"}) ||
		!reflect.DeepEqual(pub.Condition["ArnNotLike"]["aws:PrincipalArn"], []any{servers[0], publishers[0]}) {
		t.Fatalf("publish %+v", pub)
	}
}

func TestNoTopicPolicyByDefault(t *testing.T) {
	rec, err := initWithTopicPolicy(t, nil)
	if err != nil || len(rec.sets) != 0 {
		t.Fatalf("err %v, SetTopicAttributes %+v", err, rec.sets)
	}
}

func TestTopicPolicyErrors(t *testing.T) {
	for name, c := range map[string]struct {
		p    *TopicPolicy
		want string
	}{
		"publishers alone":     {&TopicPolicy{Publishers: []string{"arn:aws:iam::1:role/w"}}, "Publishers without Servers"},
		"principal not an ARN": {&TopicPolicy{Servers: []string{"chat-server"}}, `"chat-server" is not an ARN`},
	} {
		t.Run(name, func(t *testing.T) {
			rec, err := initWithTopicPolicy(t, c.p)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), c.want) || len(rec.calls) != 0 {
				t.Fatalf("err %v, calls %v", err, rec.calls)
			}
		})
	}
	f := &fakeAWS{fail: map[string]error{"SetTopicAttributes": apiError("AuthorizationError")}}
	b := NewAdapterBuilder(f, f, &Options{TopicPolicy: &TopicPolicy{}, Logger: testLogger(t)})
	err := b.Init(context.Background())
	var op *OpError
	if !errors.As(err, &op) || op.Op != "sns:SetTopicAttributes" || slices.Index(f.calls, "CreateQueue") >= 0 {
		t.Fatalf("err %v, calls %v", err, f.calls)
	}
}

// On the emulator (which does not enforce it), the policy is set and reads back as sent.
func TestTopicPolicyIsSetOnTheTopic(t *testing.T) {
	opts := testOptions(t)
	opts.TopicPolicy = &TopicPolicy{Servers: []string{"arn:aws:iam::000000000000:role/chat-server"}}
	n := startNode(t, opts)
	snsClient, _ := awsClients(t)
	arn := n.resources().topicArn
	out, err := snsClient.GetTopicAttributes(context.Background(), &sns.GetTopicAttributesInput{TopicArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := opts.TopicPolicy.document(arn)
	var got, wantDoc any
	if err := json.Unmarshal([]byte(out.Attributes["Policy"]), &got); err != nil {
		t.Fatalf("policy %q: %v", out.Attributes["Policy"], err)
	}
	_ = json.Unmarshal([]byte(want), &wantDoc)
	if !reflect.DeepEqual(got, wantDoc) {
		t.Fatalf("policy %s,\nwant %s", out.Attributes["Policy"], want)
	}
}
