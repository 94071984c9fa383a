package awsproxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		target string
		body   string
		want   call
	}{
		{"sqs json", "POST", "/", "AmazonSQS.ReceiveMessage", `{"QueueUrl":"x"}`,
			call{serviceSQS, protocolJSON, "ReceiveMessage"}},
		{"other json", "POST", "/", "DynamoDB_20120810.GetItem", `{}`,
			call{serviceUnknown, protocolJSON, unknownAction}},
		{"sns query", "POST", "/", "", "Action=Publish&Message=3&TopicArn=arn%3Aaws%3Asns&Version=2010-03-31",
			call{serviceSNS, protocolQuery, "Publish"}},
		{"sns query, action last", "POST", "/", "", "Version=2010-03-31&Message=Action%3DReceiveMessage&Action=PublishBatch",
			call{serviceSNS, protocolQuery, "PublishBatch"}},
		{"sqs query", "POST", "/000000000000/q", "", "Action=ReceiveMessage&MaxNumberOfMessages=10&Version=2012-11-05",
			call{serviceSQS, protocolQuery, "ReceiveMessage"}},
		{"sqs query without version", "POST", "/", "", "Action=DeleteMessageBatch",
			call{serviceSQS, protocolQuery, "DeleteMessageBatch"}},
		{"query GET", "GET", "/000000000000/q?Action=ReceiveMessage", "", "",
			call{serviceSQS, protocolQuery, "ReceiveMessage"}},
		{"health", "GET", "/health", "", "", call{serviceUnknown, protocolOther, unknownAction}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.target != "" {
				r.Header.Set("X-Amz-Target", tt.target)
			}
			if got := classify(r, []byte(tt.body)); got != tt.want {
				t.Errorf("classify = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEditJSONMessagesKeepsBytes(t *testing.T) {
	// Escapes that a re-encoding would change (\u003c, \/) must survive: the SDKs check MD5s of
	// the decoded values, but nothing of a kept message should change at all.
	m0 := `{"MessageId":"a","ReceiptHandle":"r0","MD5OfBody":"x","Body":"\u003cb\u003e \/ \"q\""}`
	m1 := `{"MessageId":"b","ReceiptHandle":"r1","Body":"1","MessageAttributes":{"data":{"DataType":"Binary","BinaryValue":"AQI="}}}`
	m2 := `{"MessageId":"c","ReceiptHandle":"r2","Body":"2"}`
	body := `{"Other":{"k":[1,2]}, "Messages" : [` + m0 + `, ` + m1 + `,` + m2 + `],"Z":"\u00e9"}`

	out, ok := editJSONMessages([]byte(body), func(msgs [][]byte) [][]byte {
		return [][]byte{msgs[2], msgs[0]}
	})
	if !ok {
		t.Fatal("not recognised")
	}
	want := `{"Other":{"k":[1,2]},"Messages":[` + m2 + `,` + m0 + `],"Z":"\u00e9"}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}

	out, ok = editJSONMessages([]byte(body), func([][]byte) [][]byte { return nil })
	if !ok || string(out) != `{"Other":{"k":[1,2]},"Z":"\u00e9"}` {
		t.Errorf("all held back: %s, %v (want the Messages member gone, as in an empty receive)", out, ok)
	}

	for _, notReceive := range []string{`{}`, `{"Messages":{}}`, `[1]`, `{"Messages":[`, ``} {
		if out, ok := editJSONMessages([]byte(notReceive), func(m [][]byte) [][]byte { return m }); ok {
			t.Errorf("%q: recognised as a receive: %s", notReceive, out)
		}
	}
}

func TestEditXMLMessages(t *testing.T) {
	m := []string{
		"<Message><MessageId>a</MessageId><Body>&lt;Message&gt;0</Body></Message>",
		"<Message><MessageId>b</MessageId><Body>1</Body><MessageAttribute><Name>nsp</Name></MessageAttribute></Message>",
		"<Message><MessageId>c</MessageId><Body>2</Body></Message>",
	}
	head := `<ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ReceiveMessageResult>` + "\n  "
	tail := "\n</ReceiveMessageResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></ReceiveMessageResponse>"
	body := head + strings.Join(m, "\n  ") + tail
	out, ok := editXMLMessages([]byte(body), func(msgs [][]byte) [][]byte {
		if len(msgs) != 3 {
			t.Fatalf("%d messages", len(msgs))
		}
		return [][]byte{msgs[1], msgs[2]}
	})
	if want := head + m[1] + m[2] + tail; !ok || string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if _, ok := editXMLMessages([]byte(`<ReceiveMessageResponse><ReceiveMessageResult/></ReceiveMessageResponse>`),
		func(m [][]byte) [][]byte { return m }); ok {
		t.Error("an empty receive was recognised")
	}
}

func TestPortRewriter(t *testing.T) {
	pr := newPortRewriter("4566", "39999")
	in := `{"QueueUrls":["http://sqs.us-east-1.localhost:4566/000000000000/a","http://127.0.0.1:4566/000000000000/b",` +
		`"http://127.0.0.1:45660/000000000000/c","http://127.0.0.1:39999/000000000000/d"]}<QueueUrl>http://localhost:4566/1/e</QueueUrl>`
	want := `{"QueueUrls":["http://sqs.us-east-1.localhost:39999/000000000000/a","http://127.0.0.1:39999/000000000000/b",` +
		`"http://127.0.0.1:45660/000000000000/c","http://127.0.0.1:39999/000000000000/d"]}<QueueUrl>http://localhost:39999/1/e</QueueUrl>`
	out, n := pr.rewrite([]byte(in))
	if string(out) != want || n != 3 {
		t.Errorf("rewrote %d:\n got %s\nwant %s", n, out, want)
	}
}

func TestWriteFault(t *testing.T) {
	tests := []struct {
		call       call
		kind       faultKind
		status     int
		queryError string
		contains   []string
	}{
		{call{serviceSNS, protocolQuery, "Publish"}, faultThrottle, 400, "",
			[]string{`<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">`, "<Type>Sender</Type>", "<Code>Throttling</Code>", "<RequestId>id</RequestId>"}},
		{call{serviceSNS, protocolQuery, "Publish"}, faultServer, 500, "",
			[]string{"<Type>Receiver</Type>", "<Code>InternalError</Code>"}},
		{call{serviceSQS, protocolJSON, "ReceiveMessage"}, faultThrottle, 400, "RequestThrottled;Sender",
			[]string{`"__type":"com.amazonaws.sqs#RequestThrottled"`, `"message":"Rate exceeded"`}},
		{call{serviceSQS, protocolJSON, "ReceiveMessage"}, faultServer, 500, "InternalFailure;Receiver",
			[]string{`"__type":"com.amazon.coral.service#InternalFailure"`}},
		{call{serviceSQS, protocolJSON, "ReceiveMessage"}, faultUpstream, 502, "InternalFailure;Receiver",
			[]string{`awsproxy: upstream: boom`}},
		{call{serviceSQS, protocolQuery, "ReceiveMessage"}, faultThrottle, 400, "",
			[]string{`xmlns="http://queue.amazonaws.com/doc/2012-11-05/"`, "<Code>RequestThrottled</Code>"}},
		{call{serviceUnknown, protocolOther, unknownAction}, faultThrottle, 429, "", []string{"Rate exceeded"}},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		writeFault(w, tt.call, tt.kind, "id", "boom")
		body := w.Body.String()
		if w.Code != tt.status || w.Header().Get("X-Amzn-Query-Error") != tt.queryError ||
			w.Header().Get("X-Amzn-Requestid") != "id" {
			t.Errorf("%+v %v: status %d, headers %v", tt.call, tt.kind, w.Code, w.Header())
		}
		for _, s := range tt.contains {
			if !strings.Contains(body, s) {
				t.Errorf("%+v %v: body lacks %s:\n%s", tt.call, tt.kind, s, body)
			}
		}
		if tt.call.protocol == protocolJSON && !json.Valid([]byte(body)) {
			t.Errorf("invalid JSON: %s", body)
		}
	}
}

func TestSettings(t *testing.T) {
	s := newSettings(Profile{Latency: -1, HoldBack: 2, Throttle: -0.5, ServerError: 0.25})
	if s.Latency != 0 || s.HoldBack != 1 || s.Throttle != 0 || s.ServerError != 0.25 {
		t.Errorf("not clamped: %+v", s.Profile)
	}
	if !slices.Equal(s.FaultActions, DefaultFaultActions()) || !s.faults["ReceiveMessage"] || s.faults["CreateQueue"] {
		t.Errorf("fault actions %v", s.FaultActions)
	}
	if p := AWSLike(); p.Latency != 15*time.Millisecond || p.Jitter != 10*time.Millisecond || p.Throttle != 0 {
		t.Errorf("AWSLike = %+v", p)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:4566", "http://example.com", "https://127.0.0.1:1", "127.0.0.1:4566", "http://[::2]:1"} {
		if px, err := Start(u, Profile{}); err == nil {
			px.Close()
			t.Errorf("Start(%q) accepted", u)
		}
	}
}

// TestOfflineFaults needs no emulator: a request answered by a fault is never forwarded, so
// the upstream here only fails the test if reached.
func TestOfflineFaults(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("forwarded: %s %s", r.Method, r.URL)
	}))
	defer upstream.Close()
	px, err := Start(upstream.URL, Profile{Throttle: 1, Latency: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	req, _ := http.NewRequest("POST", px.URL(), bytes.NewBufferString(`{}`))
	req.Header.Set("X-Amz-Target", "AmazonSQS.ReceiveMessage")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-Query-Error") != "RequestThrottled;Sender" {
		t.Errorf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	if d := time.Since(start); d < 5*time.Millisecond {
		t.Errorf("answered in %v, before the latency", d)
	}
	http.DefaultClient.CloseIdleConnections()
	if c := px.Counts(); c.Throttled != 1 || c.Requests["ReceiveMessage"] != 1 || c.Forwarded != 0 {
		t.Errorf("counts %+v", c)
	}
}
