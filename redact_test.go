package sqsadapter

// What of a socket's handshake a fetchSockets answer puts on the topic.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	client "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/socketio-go/aws-sqs-adapter/internal/wire"
)

func secretHandshake() *socket.Handshake {
	return &socket.Handshake{
		Headers: types.IncomingHttpHeaders{
			"Cookie":              []string{"session=s3cr3t-cookie"},
			"Authorization":       []string{"Bearer s3cr3t-bearer"},
			"Proxy-Authorization": []string{"Basic s3cr3t-proxy"},
			"Set-Cookie":          []string{"a=s3cr3t-set"},
			"X-Api-Key":           []string{"s3cr3t-key"},
			"User-Agent":          []string{"test"},
		},
		Url:   "/socket.io/?EIO=4&token=s3cr3t-query&room=lobby&transport=websocket",
		Query: types.ParsedUrlQuery{"EIO": []string{"4"}, "token": []string{"s3cr3t-query"}, "room": []string{"lobby"}, "transport": []string{"websocket"}},
		Auth:  map[string]any{"token": "s3cr3t-token", "name": "alice"},
	}
}

func TestHandshakeFilter(t *testing.T) {
	cases := []struct {
		name        string
		opts        Options
		headers     []string
		query       []string
		auth        map[string]any
		urlHasToken bool
	}{
		{"default", Options{}, []string{"x-api-key", "user-agent"}, []string{"EIO", "token", "room", "transport"}, map[string]any{}, true},
		{"narrowed", Options{HandshakeAuthKeys: []string{"name"}, RedactHeaders: []string{"X-API-KEY"}, RedactQuery: []string{"token"}},
			[]string{"user-agent"}, []string{"EIO", "room", "transport"}, map[string]any{"name": "alice"}, false},
		{"SendHandshakeSecrets", Options{SendHandshakeSecrets: true},
			[]string{"cookie", "authorization", "proxy-authorization", "set-cookie", "x-api-key", "user-agent"},
			[]string{"EIO", "token", "room", "transport"}, map[string]any{"token": "s3cr3t-token", "name": "alice"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := secretHandshake()
			w := toWireHandshake(h)
			newHandshakeFilter(&c.opts).apply(&w)
			if got := keys(w.Headers); !sameStrings(got, c.headers) {
				t.Errorf("headers %v, want %v", got, c.headers)
			}
			if got := keys(w.Query); !sameStrings(got, c.query) {
				t.Errorf("query %v, want %v", got, c.query)
			}
			if !reflect.DeepEqual(w.Auth, c.auth) {
				t.Errorf("auth %#v, want %#v", w.Auth, c.auth)
			}
			if strings.Contains(w.URL, "s3cr3t") != c.urlHasToken || !strings.HasPrefix(w.URL, "/socket.io/?") || !strings.Contains(w.URL, "room=lobby") {
				t.Errorf("url %q", w.URL)
			}
			// The socket's own handshake is untouched: only the published copy is filtered.
			if !reflect.DeepEqual(h, secretHandshake()) {
				t.Errorf("the socket's handshake changed: %#v", h)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	f := newHandshakeFilter(&Options{RedactQuery: []string{"token"}})
	for in, want := range map[string]string{
		"/socket.io/?token=x":               "/socket.io/",
		"/socket.io/?EIO=4&token=x&token=y": "/socket.io/?EIO=4",
		"/socket.io/?EIO=4":                 "/socket.io/?EIO=4", // untouched, order kept
		"/socket.io/?b=2&a=1":               "/socket.io/?b=2&a=1",
		"/socket.io/":                       "/socket.io/",
		"/socket.io/?token=%zz":             "", // does not parse: dropped whole
	} {
		if got := f.redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSendHandshakeSecretsExcludesNarrowing(t *testing.T) {
	f := &fakeAWS{}
	b := NewAdapterBuilder(f, f, &Options{SendHandshakeSecrets: true, HandshakeAuthKeys: []string{"name"}, Logger: testLogger(t)})
	if err := b.Init(context.Background()); !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "SendHandshakeSecrets") {
		t.Fatalf("err %v", err)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sameStrings(a, b []string) bool {
	return sameElements(stringsToAny(a), stringsToAny(b))
}

// holds reports whether any message published so far holds s in its data.
func (r *snsTap) holds(s string) bool {
	for _, in := range r.published() {
		if bytes.Contains(in.MessageAttributes[wire.AttrData].BinaryValue, []byte(s)) {
			return true
		}
	}
	return false
}

// withHeaders makes a test client send extra request headers and query parameters.
func withHeaders(h http.Header, q url.Values) func(*client.Options) {
	return func(o *client.Options) {
		o.SetExtraHeaders(h)
		if q != nil {
			o.SetQuery(q)
		}
	}
}

// A real Go client connects to one server with a cookie, an Authorization header and an auth
// token; another server fetches its socket. By default none of them reaches the other server,
// nor anything the first one published; with SendHandshakeSecrets all of them do.
func TestFetchSocketsKeepsHandshakeSecretsOnTheirServer(t *testing.T) {
	cases := []struct {
		name    string
		tweak   func(*Options)
		secrets bool
	}{
		{"default", func(*Options) {}, false},
		{"narrowed", func(o *Options) {
			o.HandshakeAuthKeys, o.RedactHeaders, o.RedactQuery = []string{"name"}, []string{"X-Api-Key"}, []string{"token"}
		}, false},
		{"SendHandshakeSecrets", func(o *Options) { o.SendHandshakeSecrets = true }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := testOptions(t)
			c.tweak(opts)
			snsClient, sqsClient := awsClients(t)
			rec := &snsTap{SNSAPI: snsClient}
			o0, o1 := *opts, *opts
			asker := startNode(t, &o0)
			holder := startNodeWith(t, NewAdapterBuilder(rec, sqsClient, &o1))
			waitServerCount(t, []*node{asker, holder}, "/", 2)

			headers := http.Header{
				"Cookie":        {"session=s3cr3t-cookie"},
				"Authorization": {"Bearer s3cr3t-bearer"},
				"X-Api-Key":     {"s3cr3t-key"},
				"X-Client":      {"visible"},
			}
			var query url.Values
			if c.name == "narrowed" {
				query = url.Values{"token": {"s3cr3t-query"}, "room": {"lobby"}}
			}
			_, s := connect(t, holder, "/", map[string]any{"token": "s3cr3t-token", "name": "alice"}, withHeaders(headers, query))
			if got := s.Handshake().Headers["Cookie"]; !reflect.DeepEqual(got, []string{"session=s3cr3t-cookie"}) {
				t.Fatalf("the server's own socket has Cookie %#v: the client did not send it", got)
			}

			got := fetchSockets(t, asker.io.In(socket.Room(s.Id())))
			if len(got) != 1 || got[0].Id() != s.Id() {
				t.Fatalf("fetched %d sockets", len(got))
			}
			h := got[0].Handshake()
			if v := h.Headers["X-Client"]; !reflect.DeepEqual(v, []string{"visible"}) {
				t.Errorf("X-Client %#v: an ordinary header must cross", v)
			}
			for _, name := range []string{"Cookie", "Authorization"} {
				if _, ok := h.Headers[name]; ok != c.secrets {
					t.Errorf("%s header present: %v, want %v", name, ok, c.secrets)
				}
			}
			if _, ok := h.Auth["token"]; ok != c.secrets {
				t.Errorf("auth %#v: token present %v, want %v", h.Auth, ok, c.secrets)
			}
			for _, secret := range []string{"s3cr3t-cookie", "s3cr3t-bearer", "s3cr3t-token"} {
				if rec.holds(secret) != c.secrets {
					t.Errorf("%q on the topic: %v, want %v", secret, !c.secrets, c.secrets)
				}
			}
			switch c.name {
			case "default":
				if len(h.Auth) != 0 || !rec.holds("s3cr3t-key") {
					t.Errorf("auth %#v, want {}; X-Api-Key is not withheld by default", h.Auth)
				}
			case "narrowed":
				if !reflect.DeepEqual(h.Auth, map[string]any{"name": "alice"}) || rec.holds("s3cr3t-key") || rec.holds("s3cr3t-query") {
					t.Errorf("auth %#v, X-Api-Key or the query token published", h.Auth)
				}
				if _, ok := h.Query["token"]; ok || strings.Contains(h.Url, "token") || !reflect.DeepEqual(h.Query["room"], []string{"lobby"}) {
					t.Errorf("query %v url %q", h.Query, h.Url)
				}
			}
		})
	}
}
