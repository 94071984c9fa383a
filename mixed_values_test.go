package sqsadapter

// The values the mixed-cluster tests (mixed_test.go) send across languages, what each side
// receives, and how received values are compared.

import (
	"reflect"
	"regexp"
	"time"
)

// plain maps a value received by either side onto JSON-like values that compare across
// languages: every number float64, every binary []byte, every time.Time UTC.
func plain(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case []byte:
		return x
	case interface{ Bytes() []byte }:
		return x.Bytes()
	case time.Time:
		return x.UTC()
	case []any:
		return plainSlice(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	}
	return v
}

func plainSlice(s []any) []any {
	out := make([]any, len(s))
	for i, e := range s {
		out[i] = plain(e)
	}
	return out
}

// jsDate is a JavaScript Date's millisecond instant; a Socket.IO client receives a Date
// argument as its ISO string, whichever server sent it.
var jsDate = time.Date(2023, 11, 14, 22, 13, 20, 123_000_000, time.UTC)

// payload is what the broadcasts carry: numbers, a string, binary, a date, and a nested
// object with a list, null and binary inside.
func payload() []any {
	return []any{1, "2", []byte{3, 4}, jsDate,
		map[string]any{"a": map[string]any{"list": []any{1, true, nil, "x"}, "bin": []byte{5}}}, 1.5}
}

// wantPayload is payload as every client receives it.
var wantPayload = []any{1.0, "2", []byte{3, 4}, "2023-11-14T22:13:20.123Z",
	map[string]any{"a": map[string]any{"list": []any{1.0, true, nil, "x"}, "bin": []byte{5}}}, 1.5}

// sameElements reports whether got and want hold equal values, in any order.
func sameElements(got, want []any) bool {
	if len(got) != len(want) {
		return false
	}
	used := make([]bool, len(got))
next:
	for _, w := range want {
		for i, g := range got {
			if !used[i] && reflect.DeepEqual(g, w) {
				used[i] = true
				continue next
			}
		}
		return false
	}
	return true
}

// wantServerPayload is payload as a server-side listener receives it: dates stay dates.
var wantServerPayload = []any{1.0, "2", []byte{3, 4}, jsDate,
	map[string]any{"a": map[string]any{"list": []any{1.0, true, nil, "x"}, "bin": []byte{5}}}, 1.5}

// socketData is what the fetchSockets tests store in socket.data.
func socketData() map[string]any {
	return map[string]any{"n": 1, "f": 1.5, "s": "str", "bin": []byte{0xde, 0xad}, "when": jsDate,
		"nested": map[string]any{"list": []any{1, "x", nil}, "ok": true}}
}

// handshakeWindow brackets a connection's handshake time.
type handshakeWindow struct{ from, to time.Time }

func (w handshakeWindow) holds(ts time.Time, slack time.Duration) bool {
	return !ts.Before(w.from.Add(-slack)) && !ts.After(w.to.Add(slack))
}

// jsDateString is Date.prototype.toString: "Tue Nov 14 2023 22:13:20 GMT+0000 (Coordinated
// Universal Time)".
var jsDateString = regexp.MustCompile(`^[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{4} \d{2}:\d{2}:\d{2} GMT[+-]\d{4} \(.+\)$`)
