package nodepeer

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestBinAndDateJSON(t *testing.T) {
	when := time.Date(2023, 11, 14, 22, 13, 20, 123456789, time.UTC)
	got, err := json.Marshal(map[string]any{"b": Bin{0xde, 0xad}, "d": Date(when)})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"b":{"$bin":"dead"},"d":{"$date":"2023-11-14T22:13:20.123Z"}}`
	if string(got) != want {
		t.Fatalf("marshal: got %s, want %s", got, want)
	}
	var back struct {
		B Bin  `json:"b"`
		D Date `json:"d"`
	}
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if string(back.B) != "\xde\xad" || !time.Time(back.D).Equal(when.Truncate(time.Millisecond)) {
		t.Fatalf("unmarshal: got %x %v", []byte(back.B), time.Time(back.D))
	}
	if err := json.Unmarshal([]byte(`{"$bin":"zz"}`), &back.B); err == nil {
		t.Fatal("bad hex accepted")
	}
	if err := json.Unmarshal([]byte(`{"$date":"x","y":1}`), &back.D); err == nil {
		t.Fatal("bad $date accepted")
	}
}

func TestToWireFromWire(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	in := map[string]any{
		"bin":   []byte{1, 2, 3},
		"when":  when,
		"list":  []any{[]byte{9}, "s", 1.5},
		"strs":  []string{"a", "b"},
		"typed": map[string][]byte{"k": {7}},
		"plain": map[string]any{"n": 1.0, "ok": true, "nil": nil},
	}
	raw, err := json.Marshal(ToWire(in))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"bin":   []byte{1, 2, 3},
		"when":  when,
		"list":  []any{[]byte{9}, "s", 1.5},
		"strs":  []any{"a", "b"},
		"typed": map[string]any{"k": []byte{7}},
		"plain": map[string]any{"n": 1.0, "ok": true, "nil": nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %#v\nwant %#v\njson %s", got, want, raw)
	}
	// A map with more keys than the tag is an ordinary map.
	got, _ = Decode(json.RawMessage(`{"$bin":"01","x":1}`))
	if _, ok := got.(map[string]any); !ok {
		t.Fatalf("two-key object decoded as %T", got)
	}
}

func TestPeerEnv(t *testing.T) {
	env := peerEnv(Config{
		Topic:             "t",
		HeartbeatInterval: 250 * time.Millisecond,
		Namespaces:        []string{"/a", "/b"},
		Env:               []string{"DEBUG=x"},
	})
	want := []string{
		"PEER_TOPIC=t", "PEER_HEARTBEAT_INTERVAL_MS=250", "PEER_NAMESPACES=/a,/b",
		"DEBUG=x",
	}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("got %q, want %q", env, want)
	}
}
