package wire

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/zishang520/socket.io/v3/pkg/types"
)

func TestValueTurnsBuffersIntoBytesAtAnyDepth(t *testing.T) {
	in := []any{
		"ev",
		[]byte{1},
		types.NewBuffer([]byte{2}),
		bytes.NewBuffer([]byte{3}),
		map[string]any{"a": []any{types.NewStringBuffer([]byte{4}), map[string]any{"b": types.NewBuffer([]byte{5})}}},
		7,
	}
	want := []any{
		"ev",
		[]byte{1},
		[]byte{2},
		[]byte{3},
		map[string]any{"a": []any{[]byte{4}, map[string]any{"b": []byte{5}}}},
		7,
	}
	got := Values(in)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Values = %#v\nwant %#v", got, want)
	}
	if _, ok := in[2].(*types.Buffer); !ok {
		t.Fatal("the input was modified")
	}
	if _, ok := in[4].(map[string]any)["a"].([]any)[1].(map[string]any)["b"].(*types.Buffer); !ok {
		t.Fatal("a nested input map was modified")
	}

	// A Buffer alone would encode as an empty map; its Value encodes as bin.
	b, err := Encode(Value(types.NewBuffer([]byte{9})))
	if err != nil || !bytes.Equal(b, []byte{0xc4, 0x01, 0x09}) {
		t.Fatalf("Encode(Value(buffer)) = %x, %v", b, err)
	}
}
