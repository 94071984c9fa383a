package sqsadapter

import (
	"net/url"
	"slices"
	"strings"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

// What of a socket's handshake leaves this server. A fetchSockets answer is published on the
// topic: every Node server of the cluster (they subscribe unfiltered), every other subscriber of
// the topic, and every copy SNS and SQS keep hold it. By default the credentials a browser or a
// client sends with its handshake stay here; see Options.SendHandshakeSecrets.

// secretHeaders are the request headers that never leave the server by default (lower case, as
// on the wire).
var secretHeaders = []string{"cookie", "authorization", "proxy-authorization", "set-cookie"}

// handshakeFilter removes what must not leave the server from a handshake about to be
// published. The zero value sends everything, as upstream does.
type handshakeFilter struct {
	headers  map[string]bool // lower-case names withheld
	query    map[string]bool // query parameters withheld, from query and url
	authKeys map[string]bool // the auth keys sent; nil with all
	all      bool            // upstream's behaviour: the whole handshake
}

func newHandshakeFilter(o *Options) *handshakeFilter {
	if o.SendHandshakeSecrets {
		return &handshakeFilter{all: true}
	}
	f := &handshakeFilter{headers: map[string]bool{}, query: map[string]bool{}, authKeys: map[string]bool{}}
	for _, h := range slices.Concat(secretHeaders, o.RedactHeaders) {
		f.headers[strings.ToLower(h)] = true
	}
	for _, q := range o.RedactQuery {
		f.query[q] = true
	}
	for _, k := range o.HandshakeAuthKeys {
		f.authKeys[k] = true
	}
	return f
}

// apply removes the withheld fields from h, which toWireHandshake built: its maps are its own,
// except auth, which is replaced rather than changed.
func (f *handshakeFilter) apply(h *wire.Handshake) {
	if f == nil || f.all {
		return
	}
	for k := range h.Headers {
		if f.headers[k] {
			delete(h.Headers, k)
		}
	}
	auth := map[string]any{}
	for k, v := range h.Auth {
		if f.authKeys[k] {
			auth[k] = v
		}
	}
	h.Auth = auth
	if len(f.query) == 0 {
		return
	}
	for k := range h.Query {
		if f.query[k] {
			delete(h.Query, k)
		}
	}
	h.URL = f.redactURL(h.URL)
}

// redactURL removes the withheld query parameters from a request URL ("/socket.io/?EIO=4&...").
// A URL that does not parse is dropped whole: it may hold them.
func (f *handshakeFilter) redactURL(raw string) string {
	path, rawQuery, ok := strings.Cut(raw, "?")
	if !ok {
		return raw
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return ""
	}
	found := false
	for k := range q {
		if f.query[k] {
			q.Del(k)
			found = true
		}
	}
	if !found {
		return raw
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}
