package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// vector is one message captured from the real upstream adapter.
type vector struct {
	Type       int    `json:"type"`
	TypeName   string `json:"typeName"`
	Body       string `json:"body"`
	Scenario   string `json:"scenario"`
	Attributes map[string]struct {
		DataType    string
		StringValue string
	} `json:"attributes"`
	DataHex string `json:"dataHex"`
	Decoded any    `json:"decoded"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/aws-sqs-adapter-0.1.1.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 71 {
		t.Fatalf("want 71 vectors, got %d", len(vs))
	}
	return vs
}

// sqsAttributes rebuilds the attributes SQS hands the receiver for a vector.
func (v vector) sqsAttributes(t testing.TB) map[string]sqstypes.MessageAttributeValue {
	attrs := map[string]sqstypes.MessageAttributeValue{}
	for name, a := range v.Attributes {
		av := sqstypes.MessageAttributeValue{DataType: ptr(a.DataType)}
		if a.DataType == "String" {
			av.StringValue = ptr(a.StringValue)
		}
		attrs[name] = av
	}
	if v.DataHex != "" {
		b, err := hex.DecodeString(v.DataHex)
		if err != nil {
			t.Fatal(err)
		}
		attrs[AttrData] = sqstypes.MessageAttributeValue{DataType: ptr("Binary"), BinaryValue: b}
	}
	return attrs
}

func TestFromSQSAcceptsEveryVector(t *testing.T) {
	seen := map[Type]bool{}
	for _, v := range loadVectors(t) {
		m, err := FromSQS(ptr(v.Body), v.sqsAttributes(t))
		if err != nil {
			t.Fatalf("%s/%s: %v", v.Scenario, v.TypeName, err)
		}
		if int(m.Type) != v.Type || m.Type.String() != v.TypeName {
			t.Fatalf("%s: type %v, want %d %s", v.Scenario, m.Type, v.Type, v.TypeName)
		}
		if m.Type.IsResponse() != (m.RequesterUID != "") {
			t.Fatalf("%s/%s: requesterUid %q", v.Scenario, v.TypeName, m.RequesterUID)
		}
		if got := m.Body(); got != v.Body {
			t.Fatalf("body %q, want %q", got, v.Body)
		}
		if m.Type.HasData() {
			d := NewData(m.Type)
			if err := Decode(m.Data, d); err != nil {
				t.Fatalf("%s/%s: %v", v.Scenario, v.TypeName, err)
			}
		}
		seen[m.Type] = true
	}
	for typ := InitialHeartbeat; typ <= AdapterClose; typ++ {
		if !seen[typ] {
			t.Errorf("no vector of type %s", typ)
		}
	}
}

func TestFromSQSRejectsMalformed(t *testing.T) {
	str := func(s string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: ptr("String"), StringValue: ptr(s)}
	}
	bin := sqstypes.MessageAttributeValue{DataType: ptr("Binary"), BinaryValue: []byte{0x80}}
	base := func() map[string]sqstypes.MessageAttributeValue {
		return map[string]sqstypes.MessageAttributeValue{AttrNsp: str("/"), AttrUID: str("abc")}
	}
	cases := []struct {
		name  string
		body  *string
		attrs func() map[string]sqstypes.MessageAttributeValue
		want  string
	}{
		{"no body", nil, base, "no body"},
		{"body not a number", ptr("hello"), base, "not a message type"},
		{"unknown type", ptr("14"), base, "not a message type"},
		{"type zero", ptr("0"), base, "not a message type"},
		{"nsp missing", ptr("2"), func() map[string]sqstypes.MessageAttributeValue {
			a := base()
			delete(a, AttrNsp)
			return a
		}, `"nsp" is missing`},
		{"uid missing", ptr("2"), func() map[string]sqstypes.MessageAttributeValue {
			a := base()
			delete(a, AttrUID)
			return a
		}, `"uid" is missing`},
		{"nsp not a String", ptr("2"), func() map[string]sqstypes.MessageAttributeValue {
			a := base()
			a[AttrNsp] = bin
			return a
		}, `"nsp" is not a non-empty String`},
		{"requesterUid on a request", ptr("3"), func() map[string]sqstypes.MessageAttributeValue {
			a := base()
			a[AttrRequesterUID] = str("x")
			a[AttrData] = bin
			return a
		}, "carries a requesterUid"},
		{"response without requesterUid", ptr("11"), func() map[string]sqstypes.MessageAttributeValue {
			a := base()
			a[AttrData] = bin
			return a
		}, `"requesterUid" is missing`},
		{"data not Binary", ptr("3"), func() map[string]sqstypes.MessageAttributeValue {
			a := base()
			a[AttrData] = str("x")
			return a
		}, `"data" is not a non-empty Binary`},
		{"data missing", ptr("3"), base, "has no data attribute"},
		{"data on a heartbeat", ptr("2"), func() map[string]sqstypes.MessageAttributeValue {
			a := base()
			a[AttrData] = bin
			return a
		}, "carries a data attribute"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromSQS(c.body, c.attrs())
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrMalformed containing %q", err, c.want)
			}
		})
	}
}

func TestDecodeRefusesHostileMsgpack(t *testing.T) {
	cases := map[string][]byte{
		"empty":                     {},
		"truncated str":             {0xa5, 'a'},
		"array32 claims 4 billion":  {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01},
		"map32 claims 4 billion":    {0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01},
		"bin32 claims 4 GiB":        {0xc6, 0xff, 0xff, 0xff, 0xff},
		"never-used code":           {0xc1},
		"trailing bytes":            {0x80, 0x00},
		"nested too deep":           bytes.Repeat([]byte{0x91}, maxDepth+2),
		"ext32 claims 4 GiB":        {0xc9, 0xff, 0xff, 0xff, 0xff, 0xff},
		"map16 with one key only":   {0xde, 0x00, 0x01, 0xa1, 'k'},
		"wrong shape for a payload": {0x81, 0xa4, 'o', 'p', 't', 's', 0x05},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if err := Decode(b, &BroadcastData{}); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestDecodeTypes(t *testing.T) {
	// The fetch-sockets vector carries every kind of value a Node socket.data can hold.
	for _, v := range loadVectors(t) {
		if v.Scenario != "fetch-sockets" || v.Type != int(FetchSocketsResponse) {
			continue
		}
		b, _ := hex.DecodeString(v.DataHex)
		var d FetchSocketsResponseData
		if err := Decode(b, &d); err != nil {
			t.Fatal(err)
		}
		data := d.Sockets[0].Data.(map[string]any)
		checks := map[string]any{
			"n": int64(42), "neg": int64(-5), "f": 1.5, "whole": int64(2), "big": int64(1099511627776),
			"ok": true, "user": "bob",
		}
		for k, want := range checks {
			if data[k] != want {
				t.Errorf("data[%q] = %#v (%T), want %#v (%T)", k, data[k], data[k], want, want)
			}
		}
		if !bytes.Equal(data["bin"].([]byte), []byte{0xde, 0xad, 0xbe, 0xef}) {
			t.Errorf("bin = %#v", data["bin"])
		}
		// In UTC whatever the local zone: a Go client then receives the ISO string a Node
		// client would ("2023-11-14T22:13:20.123Z"), not one with the server's offset.
		if got := data["date"].(time.Time); !got.Equal(time.Date(2023, 11, 14, 22, 13, 20, 123e6, time.UTC)) ||
			got.Location() != time.UTC {
			t.Errorf("date = %v (%v), want UTC", got, got.Location())
		}
		h := d.Sockets[0].Handshake
		if h.Issued != 1795362951773 || h.Address != "127.0.0.1" || h.Query["foo"] != "bar" || h.Auth["n"] != int64(2) {
			t.Errorf("handshake = %+v", h)
		}
		return
	}
	t.Fatal("no fetch-sockets response vector")
}

func TestSizeMatchesAttributes(t *testing.T) {
	m := &Message{Type: BroadcastAck, Nsp: "/", UID: "u1", RequesterUID: "r1", Data: []byte{1, 2, 3}}
	want := len("12") + len("nsp") + 6 + 1 + len("uid") + 6 + 2 + len("requesterUid") + 6 + 2 + len("data") + 6 + 3
	if m.Size() != want {
		t.Fatalf("size %d, want %d", m.Size(), want)
	}
	if len(m.SNSAttributes()) != 4 {
		t.Fatalf("attributes %v", m.SNSAttributes())
	}
}

// TestReencodeMatchesNode decodes every vector into its typed payload, encodes it again and
// checks that the result decodes to the same structure as what Node sent: the same keys (none
// added, none dropped), the same values, the same value kinds.
func TestReencodeMatchesNode(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.DataHex == "" {
			continue
		}
		orig, _ := hex.DecodeString(v.DataHex)
		d := NewData(Type(v.Type))
		if err := Decode(orig, d); err != nil {
			t.Fatal(err)
		}
		again, err := Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		var want, got any
		if err := Decode(orig, &want); err != nil {
			t.Fatal(err)
		}
		if err := Decode(again, &got); err != nil {
			t.Fatal(err)
		}
		want, got = normalize(want), normalize(got)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s/%s:\n node %#v\n   go %#v", v.Scenario, v.TypeName, want, got)
		}
	}
}

func TestPointerRoundTripAndSize(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 1000)
	m := &Message{Type: Broadcast, Nsp: "/", UID: "0123456789abcdef", Data: data, ID: "01234567/*/1"}
	p := PointerTo("bucket", "socketio-sqsadapter/01234567/x", data)
	off := m.Offloaded(p)
	if !bytes.Equal(off.Data, StandIn(Broadcast, "/")) || !bytes.Equal(m.Data, data) {
		t.Fatal("Offloaded must put the stand-in in place of the data, in the copy only")
	}
	// Size counts exactly what SNSAttributes sends.
	n := len(off.Body())
	for name, v := range off.SNSAttributes() {
		n += len(name) + len(*v.DataType) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	if n != off.Size() {
		t.Fatalf("Size %d, attributes add up to %d", off.Size(), n)
	}
	attrs := map[string]sqstypes.MessageAttributeValue{}
	for name, v := range off.SNSAttributes() {
		attrs[name] = sqstypes.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	got, err := FromSQS(aws.String(off.Body()), attrs)
	if err != nil {
		t.Fatal(err)
	}
	// The stand-in is for Node servers: a Go receiver drops it and reads the object.
	if *got.Pointer != *p || got.Data != nil {
		t.Fatalf("pointer %+v data %d bytes, want %+v and no data", got.Pointer, len(got.Data), p)
	}
	if err := got.Pointer.Verify(data); err != nil {
		t.Fatal(err)
	}
	if err := got.Pointer.Verify(append([]byte{1}, data[1:]...)); err == nil {
		t.Fatal("Verify accepted other bytes")
	}
	// A pointer without a stand-in (responses) is accepted; a pointer on a type without data
	// is malformed.
	delete(attrs, AttrData)
	if got, err := FromSQS(aws.String(off.Body()), attrs); err != nil || got.Data != nil {
		t.Fatalf("pointer without data: %v", err)
	}
	if _, err := FromSQS(aws.String("2"), attrs); !errors.Is(err, ErrMalformed) {
		t.Fatalf("pointer on a heartbeat: %v", err)
	}
	for _, bad := range []string{`x`, `["other",{}]`, `["` + PointerClass + `",{"s3BucketName":"b","s3Key":"k","size":0,"sha256":""}]`} {
		if _, err := ParsePointer(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParsePointer(%q): %v", bad, err)
		}
	}
}

// A hostile s3 attribute never panics; what ParsePointer accepts encodes back to a pointer it
// accepts again.
func FuzzParsePointer(f *testing.F) {
	f.Add(PointerTo("b", "socketio-sqsadapter/n/x", []byte("data")).Encode())
	f.Add(`["` + PointerClass + `",{"s3BucketName":"b","s3Key":"k","size":-1,"sha256":"00"}]`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePointer(s)
		if err != nil {
			return
		}
		q, err := ParsePointer(p.Encode())
		if err != nil || *q != *p {
			t.Fatalf("%q parsed to %+v, which re-parses to %+v, %v", s, p, q, err)
		}
	})
}

// The stand-ins are what upstream's onMessage acts on harmlessly: no requestId (no answer), the
// room nobody is in, an event nobody listens to. FETCH_SOCKETS has none and is not offloaded.
func TestStandIns(t *testing.T) {
	nobody := Options{Rooms: []string{StandInName}, Except: []string{}}
	var b BroadcastData
	if err := Decode(StandIn(Broadcast, "/chat"), &b); err != nil {
		t.Fatal(err)
	}
	if b.RequestID != "" || !reflect.DeepEqual(b.Opts, nobody) || b.Packet.Type != 2 || b.Packet.Nsp != "/chat" ||
		!reflect.DeepEqual(b.Packet.Data, []any{StandInName}) {
		t.Errorf("BROADCAST stand-in %+v", b)
	}
	var e ServerSideEmitData
	if err := Decode(StandIn(ServerSideEmit, "/"), &e); err != nil || e.RequestID != "" || !reflect.DeepEqual(e.Packet, []any{StandInName}) {
		t.Errorf("SERVER_SIDE_EMIT stand-in %+v: %v", e, err)
	}
	for _, typ := range []Type{SocketsJoin, SocketsLeave} {
		var j SocketsJoinLeaveData
		if err := Decode(StandIn(typ, "/"), &j); err != nil || !reflect.DeepEqual(j.Opts, nobody) || len(j.Rooms) != 0 {
			t.Errorf("%s stand-in %+v: %v", typ, j, err)
		}
	}
	var d DisconnectSocketsData
	if err := Decode(StandIn(DisconnectSockets, "/"), &d); err != nil || !reflect.DeepEqual(d.Opts, nobody) || d.Close {
		t.Errorf("DISCONNECT_SOCKETS stand-in %+v: %v", d, err)
	}
	for typ := InitialHeartbeat; typ <= AdapterClose; typ++ {
		want := typ.HasData() && typ != FetchSockets
		if typ.Offloadable() != want {
			t.Errorf("%s: Offloadable %v, want %v", typ, typ.Offloadable(), want)
		}
		if hasStandIn := StandIn(typ, "/") != nil; hasStandIn != (want && !typ.IsResponse()) {
			t.Errorf("%s: stand-in %v", typ, hasStandIn)
		}
	}
}
