package awsproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

type service int

const (
	serviceUnknown service = iota
	serviceSNS
	serviceSQS
)

type protocol int

const (
	protocolOther protocol = iota
	protocolJSON           // AWS JSON 1.0: X-Amz-Target, JSON bodies (SQS since 2023)
	protocolQuery          // AWS query: form-encoded Action=..., XML responses (SNS; SQS before 2023)
)

// unknownAction names requests that carry no AWS action (GET /health, ...).
const unknownAction = "Unknown"

// call is what the proxy knows about a request.
type call struct {
	service  service
	protocol protocol
	action   string
}

// sqsActions tells an SQS query-protocol request from an SNS one when the form has no Version.
var sqsActions = map[string]bool{
	"CreateQueue": true, "DeleteQueue": true, "GetQueueUrl": true, "ListQueues": true,
	"GetQueueAttributes": true, "SetQueueAttributes": true, "PurgeQueue": true,
	"SendMessage": true, "SendMessageBatch": true, "ReceiveMessage": true,
	"DeleteMessage": true, "DeleteMessageBatch": true, "ChangeMessageVisibility": true,
	"ChangeMessageVisibilityBatch": true, "TagQueue": true, "UntagQueue": true,
	"ListQueueTags": true, "ListDeadLetterSourceQueues": true,
}

// classify finds the service, protocol and action of a request: SQS JSON by its X-Amz-Target
// header (AmazonSQS.<Action>), the query protocol (SNS, and SQS's older one) by the form fields
// Action and Version of the body (or of the URL for GET).
func classify(r *http.Request, body []byte) call {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		prefix, action, ok := strings.Cut(target, ".")
		if ok && prefix == "AmazonSQS" && action != "" {
			return call{service: serviceSQS, protocol: protocolJSON, action: action}
		}
		return call{protocol: protocolJSON, action: unknownAction}
	}
	var action, version string
	if r.Method == http.MethodPost {
		action, version = formField(body, "Action"), formField(body, "Version")
	}
	if action == "" {
		q := r.URL.Query()
		action, version = q.Get("Action"), q.Get("Version")
	}
	if action == "" {
		return call{action: unknownAction}
	}
	c := call{protocol: protocolQuery, action: action}
	switch {
	case version == "2012-11-05":
		c.service = serviceSQS
	case version == "2010-03-31":
		c.service = serviceSNS
	case sqsActions[action] || (r.URL.Path != "/" && r.URL.Path != ""): // SQS query requests go to the queue URL
		c.service = serviceSQS
	default:
		c.service = serviceSNS
	}
	return c
}

// formField returns the value of the first field named key in a form-encoded body, without
// decoding the others (an SNS Publish carries up to 256 KiB of message).
func formField(body []byte, key string) string {
	for len(body) > 0 {
		var pair []byte
		pair, body, _ = bytes.Cut(body, []byte("&"))
		k, v, _ := bytes.Cut(pair, []byte("="))
		if string(k) != key {
			continue
		}
		s, err := url.QueryUnescape(string(v))
		if err != nil {
			return ""
		}
		return s
	}
	return ""
}

type faultKind int

const (
	faultThrottle faultKind = iota
	faultServer
	faultUpstream // the proxy could not reach the emulator
)

// writeFault answers a request with an error in its own protocol, as the service would:
//
//   - SNS (query protocol): XML ErrorResponse, HTTP 400 Throttling (Type Sender) or HTTP 500
//     InternalError (Type Receiver);
//   - SQS JSON: HTTP 400 {"__type":"com.amazonaws.sqs#RequestThrottled"} with
//     x-amzn-query-error: RequestThrottled;Sender, or HTTP 500
//     {"__type":"com.amazon.coral.service#InternalFailure"} with InternalFailure;Receiver (the
//     SDKs take the error code and the fault from that header);
//   - SQS query protocol: XML ErrorResponse with RequestThrottled / InternalFailure.
//
// faultUpstream is a server fault with HTTP 502. (SQS's Smithy model gives RequestThrottled
// HTTP 403, and old SQS documentation speaks of 503 for throttling; not checked against real
// AWS. The SDKs go by the code, not the status, so the proxy uses 400 as SNS does.)
func writeFault(w http.ResponseWriter, c call, kind faultKind, requestID, detail string) {
	status, senderOrReceiver := http.StatusInternalServerError, "Receiver"
	message := "We encountered an internal error. Please try again."
	switch kind {
	case faultThrottle:
		status, senderOrReceiver, message = http.StatusBadRequest, "Sender", "Rate exceeded"
	case faultUpstream:
		status, message = http.StatusBadGateway, "awsproxy: upstream: "+detail
	}
	code := map[service]map[faultKind]string{
		serviceSNS: {faultThrottle: "Throttling", faultServer: "InternalError", faultUpstream: "InternalError"},
		serviceSQS: {faultThrottle: "RequestThrottled", faultServer: "InternalFailure", faultUpstream: "InternalFailure"},
	}[c.service][kind]

	h := w.Header()
	h.Set("X-Amzn-Requestid", requestID)
	switch {
	case c.service == serviceSQS && c.protocol == protocolJSON:
		typ := "com.amazonaws.sqs#" + code
		if kind != faultThrottle {
			typ = "com.amazon.coral.service#" + code
		}
		body, _ := json.Marshal(struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}{typ, message})
		h.Set("Content-Type", "application/x-amz-json-1.0")
		h.Set("X-Amzn-Query-Error", code+";"+senderOrReceiver)
		writeBody(w, status, body)
	case c.service == serviceSNS || c.service == serviceSQS:
		ns := "http://sns.amazonaws.com/doc/2010-03-31/"
		if c.service == serviceSQS {
			ns = "http://queue.amazonaws.com/doc/2012-11-05/"
		}
		body := fmt.Sprintf("<ErrorResponse xmlns=%q>\n  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>\n"+
			"    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n",
			ns, senderOrReceiver, code, html.EscapeString(message), requestID)
		h.Set("Content-Type", "text/xml")
		writeBody(w, status, []byte(body))
	default:
		if kind == faultThrottle {
			status = http.StatusTooManyRequests
		}
		h.Set("Content-Type", "text/plain; charset=utf-8")
		writeBody(w, status, []byte(message+"\n"))
	}
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// editJSONMessages applies edit to the messages of an SQS JSON ReceiveMessage response
// ({"Messages":[...], ...}). Each message keeps its bytes exactly (MD5OfBody and
// MD5OfMessageAttributes stay valid); the other members keep theirs; an empty result drops the
// Messages member, as SQS does for an empty receive. ok is false if the body is not such an
// object, and then out is nil.
func editJSONMessages(body []byte, edit func([][]byte) [][]byte) (out []byte, ok bool) {
	var members []struct {
		key   string
		value json.RawMessage
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	found := -1
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := t.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, false
		}
		if key == "Messages" {
			found = len(members)
		}
		members = append(members, struct {
			key   string
			value json.RawMessage
		}{key, value})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, false
	}
	if found < 0 {
		return nil, false
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(members[found].value, &raw); err != nil {
		return nil, false
	}
	msgs := make([][]byte, len(raw))
	for i, m := range raw {
		msgs[i] = m
	}
	msgs = edit(msgs)

	var b bytes.Buffer
	b.Grow(len(body))
	b.WriteByte('{')
	first := true
	for i, m := range members {
		value := m.value
		if i == found {
			if len(msgs) == 0 {
				continue
			}
			value = append(append([]byte{'['}, bytes.Join(msgs, []byte{','})...), ']')
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(value)
	}
	b.WriteByte('}')
	return b.Bytes(), true
}

// editXMLMessages is editJSONMessages for the SQS query protocol: the <Message> elements of
// <ReceiveMessageResult>, each kept byte for byte.
func editXMLMessages(body []byte, edit func([][]byte) [][]byte) (out []byte, ok bool) {
	const open, end = "<Message>", "</Message>"
	resultStart := bytes.Index(body, []byte("<ReceiveMessageResult>"))
	resultEnd := bytes.Index(body, []byte("</ReceiveMessageResult>"))
	if resultStart < 0 || resultEnd < resultStart {
		return nil, false
	}
	// Messages are the <Message> elements between first and last; what surrounds them is kept.
	var msgs [][]byte
	first, last := -1, -1
	for pos := resultStart; ; {
		i := bytes.Index(body[pos:resultEnd], []byte(open))
		if i < 0 {
			break
		}
		j := bytes.Index(body[pos+i:resultEnd], []byte(end))
		if j < 0 {
			return nil, false
		}
		if first < 0 {
			first = pos + i
		}
		last = pos + i + j + len(end)
		msgs = append(msgs, body[pos+i:last])
		pos = last
	}
	if first < 0 {
		return nil, false
	}
	msgs = edit(msgs)
	var b bytes.Buffer
	b.Write(body[:first])
	for _, m := range msgs {
		b.Write(m)
	}
	b.Write(body[last:])
	return b.Bytes(), true
}

// queueURLActions are the SQS actions whose responses carry queue URLs.
var queueURLActions = map[string]bool{
	"CreateQueue": true, "GetQueueUrl": true, "ListQueues": true, "ListDeadLetterSourceQueues": true,
}

// portRewriter rewrites the upstream's port in URLs to the proxy's: fauxqs builds a queue's URL
// once, from the Host header of the CreateQueue request (http://sqs.<region>.localhost:<port>/...),
// so a queue created directly on the emulator has the emulator's port in its URL, and a client
// that sends requests to the queue URL (the Node SDK's useQueueUrlAsEndpoint) would bypass the
// proxy.
type portRewriter struct {
	re          *regexp.Regexp
	replacement []byte
}

func newPortRewriter(upstreamPort, proxyPort string) *portRewriter {
	return &portRewriter{
		re:          regexp.MustCompile(`(https?://[A-Za-z0-9.\-]+):` + regexp.QuoteMeta(upstreamPort) + `([/"<\s])`),
		replacement: []byte("${1}:" + proxyPort + "${2}"),
	}
}

// rewrite returns body with the URLs rewritten, and how many were.
func (pr *portRewriter) rewrite(body []byte) ([]byte, int) {
	n := len(pr.re.FindAllIndex(body, -1))
	if n == 0 {
		return body, 0
	}
	return pr.re.ReplaceAll(body, pr.replacement), n
}
