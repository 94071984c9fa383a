package wire

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// sizeAsBase64 is m's size as the emulator fauxqs counts it: a Binary attribute at the length
// of its base64 text.
func sizeAsBase64(m *Message) int {
	return m.Size() - len(m.Data) + base64.StdEncoding.EncodedLen(len(m.Data))
}

// Every part, signed, stays under the SNS limit however a Binary attribute is counted, even
// with the longest attributes, and the parts carry the data whole, in order.
func TestPartsStayUnderTheLimit(t *testing.T) {
	m := &Message{Type: FetchSocketsResponse, Nsp: "/" + strings.Repeat("n", 200), UID: "0123456789abcdef",
		RequesterUID: "fedcba9876543210", ID: SequencedID("01234567", "fedcba98", 1<<63), Data: bytes.Repeat([]byte{0xab, 1, 2}, 700_000)}
	m.Sign([]byte("key-0123456789abcdef0123456789ab"), "topic", time.Now())
	parts, err := m.Split(PartChunkSize(m))
	if err != nil {
		t.Fatal(err)
	}
	var joined []byte
	for i, p := range parts {
		p.Sign([]byte("key-0123456789abcdef0123456789ab"), "topic", time.UnixMilli(9_999_999_999_999))
		if p.Size() > MaxMessageSize || sizeAsBase64(p) > MaxMessageSize {
			t.Fatalf("part %d: %d bytes, %d counted as base64", i, p.Size(), sizeAsBase64(p))
		}
		d, err := ParsePart(p)
		if err != nil || d.Index != i || d.Count != len(parts) || d.ID != m.ID || d.Sig != m.Sig || d.Type != m.Type {
			t.Fatalf("part %d: %+v, %v", i, d, err)
		}
		if _, _, _, ok := ParseSequencedID(p.ID); ok {
			t.Fatalf("part id %q parses as a sequenced id", p.ID)
		}
		joined = append(joined, d.Chunk...)
	}
	if !bytes.Equal(joined, m.Data) {
		t.Fatal("parts do not carry the data")
	}
	t.Logf("%d bytes in %d parts of %d bytes", len(m.Data), len(parts), PartChunkSize(m))
}

// What one part can tell alone is checked; a message needing more than MaxParts is refused.
func TestParsePartRefusesNonsense(t *testing.T) {
	good := PartData{Type: Broadcast, ID: "a/*/1", Index: 0, Count: 2, Size: 4, Chunk: []byte{1, 2}}
	for name, tweak := range map[string]func(*PartData, *Message){
		"part of a part":           func(p *PartData, _ *Message) { p.Type = Part },
		"part of a heartbeat":      func(p *PartData, _ *Message) { p.Type = Heartbeat },
		"response to nobody":       func(p *PartData, _ *Message) { p.Type = FetchSocketsResponse },
		"requester on a broadcast": func(_ *PartData, m *Message) { m.RequesterUID = "x" },
		"no id":                    func(p *PartData, _ *Message) { p.ID = "" },
		"one part":                 func(p *PartData, _ *Message) { p.Count = 1 },
		"absurd count":             func(p *PartData, _ *Message) { p.Count = 1 << 40 },
		"index past count":         func(p *PartData, _ *Message) { p.Index = 2 },
		"negative index":           func(p *PartData, _ *Message) { p.Index = -1 },
		"chunk over size":          func(p *PartData, _ *Message) { p.Size = 1 },
		"absurd size":              func(p *PartData, _ *Message) { p.Size = MaxSplitSize + 1 },
		"empty chunk":              func(p *PartData, _ *Message) { p.Chunk = nil },
	} {
		p, m := good, &Message{Type: Part, Nsp: "/", UID: "u"}
		tweak(&p, m)
		m.Data, _ = Encode(&p)
		if _, err := ParsePart(m); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	m := &Message{Type: Broadcast, Nsp: "/", UID: "u", ID: "a/*/1", Data: make([]byte, MaxParts*10+1)}
	if _, err := m.Split(10); err == nil {
		t.Fatal("split into more than MaxParts")
	}
}
