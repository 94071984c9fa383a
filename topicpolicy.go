package sqsadapter

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// TopicPolicy is the access policy Init sets on the topic when Options.TopicPolicy is set. SNS
// gives a new topic a policy that lets every principal of its account publish and subscribe,
// as far as their IAM policies allow: in an account where roles have sns:Publish on "*", any of
// them can speak on the topic, and any that may subscribe can read every fetchSockets answer.
// This policy denies publishing and subscribing to every principal of other accounts and, with
// Servers, to every principal not listed, whatever their IAM policies say (an explicit deny
// wins). Administration (reading and changing the policy, deleting the topic) stays with the
// account.
type TopicPolicy struct {
	// Servers are the IAM principals of the cluster's servers: role or user ARNs
	// ("arn:aws:iam::123456789012:role/chat-server"; "*" wildcards as in ArnLike). Only they may
	// subscribe to the topic, and they may publish. Empty: any principal of the topic's account.
	// The principal this server runs as must be listed, or its Init is denied sns:Subscribe.
	Servers []string
	// Publishers are principals that may publish but not subscribe: the emitters' roles. Only
	// with Servers.
	Publishers []string
}

// validate checks a policy's principals.
func (p *TopicPolicy) validate() error {
	if len(p.Publishers) > 0 && len(p.Servers) == 0 {
		return fmt.Errorf("%w: TopicPolicy.Publishers without Servers would deny the servers sns:Publish: "+
			"list the servers' principals too", ErrInvalidOptions)
	}
	for _, a := range slices.Concat(p.Servers, p.Publishers) {
		if !strings.HasPrefix(a, "arn:") {
			return fmt.Errorf("%w: TopicPolicy principal %q is not an ARN (arn:aws:iam::<account>:role/<name>)", ErrInvalidOptions, a)
		}
	}
	return nil
}

// document is the policy for the topic topicArn ("arn:<partition>:sns:<region>:<account>:<name>").
func (p *TopicPolicy) document(topicArn string) (string, error) {
	parts := strings.SplitN(topicArn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[4] == "" {
		return "", fmt.Errorf("topic ARN %q has no account", topicArn)
	}
	partition, account := parts[1], parts[4]
	type statement struct {
		Sid       string                    `json:"Sid"`
		Effect    string                    `json:"Effect"`
		Principal map[string]string         `json:"Principal"`
		Action    []string                  `json:"Action"`
		Resource  string                    `json:"Resource"`
		Condition map[string]map[string]any `json:"Condition,omitempty"`
	}
	everyone := map[string]string{"AWS": "*"}
	deny := func(sid string, actions []string, condition map[string]map[string]any) statement {
		return statement{Sid: sid, Effect: "Deny", Principal: everyone, Action: actions, Resource: topicArn, Condition: condition}
	}
	statements := []statement{
		{
			Sid: "AccountAdministersAndUses", Effect: "Allow",
			Principal: map[string]string{"AWS": "arn:" + partition + ":iam::" + account + ":root"},
			Action: []string{"SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
				"SNS:DeleteTopic", "SNS:ListSubscriptionsByTopic", "SNS:Subscribe", "SNS:Publish"},
			Resource: topicArn,
		},
		deny("NoOtherAccount", []string{"SNS:Publish", "SNS:Subscribe"},
			map[string]map[string]any{"StringNotEquals": {"aws:PrincipalAccount": account}}),
	}
	if len(p.Servers) > 0 {
		statements = append(statements,
			deny("OnlyServersSubscribe", []string{"SNS:Subscribe"},
				map[string]map[string]any{"ArnNotLike": {"aws:PrincipalArn": p.Servers}}),
			deny("OnlyServersAndPublishersPublish", []string{"SNS:Publish"},
				map[string]map[string]any{"ArnNotLike": {"aws:PrincipalArn": slices.Concat(p.Servers, p.Publishers)}}))
	}
	b, err := json.Marshal(struct {
		Version   string      `json:"Version"`
		ID        string      `json:"Id"`
		Statement []statement `json:"Statement"`
	}{"2012-10-17", "socketio-sqsadapter", statements})
	return string(b), err
}

// setTopicPolicy sets Options.TopicPolicy on the topic, if set; provisioning calls it after
// CreateTopic, on every server (they all set the same document).
func (t *transport) setTopicPolicy(ctx context.Context, topicArn string) error {
	p := t.opts.TopicPolicy
	if p == nil {
		return nil
	}
	doc, err := p.document(topicArn)
	if err != nil {
		return opErr("sns:SetTopicAttributes", topicArn, err)
	}
	_, err = t.sns.SetTopicAttributes(ctx, &sns.SetTopicAttributesInput{
		TopicArn: &topicArn, AttributeName: ptr("Policy"), AttributeValue: &doc,
	})
	return opErr("sns:SetTopicAttributes", topicArn, err)
}
