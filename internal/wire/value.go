package wire

// PacketEvent is the Socket.IO packet type of an event (socket.io-parser's EVENT). Node puts it
// on broadcast packets even when the arguments hold binary: the receiving server's encoder finds
// the binary parts itself.
const PacketEvent = 2

// Value returns v ready for Encode: the Socket.IO library's buffers (*types.Buffer and
// *types.StringBuffer, which msgpack would encode as empty maps) and *bytes.Buffer become their
// bytes, at any depth of []any and map[string]any; v itself is not modified. []byte stays
// []byte and encodes as msgpack bin, which Node decodes into a Buffer.
func Value(v any) any {
	switch x := v.(type) {
	case []byte:
		return x
	case interface{ Bytes() []byte }:
		return x.Bytes()
	case []any:
		return Values(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = Value(e)
		}
		return m
	}
	return v
}

// Values applies Value to every element of s, in a new slice.
func Values(s []any) []any {
	out := make([]any, len(s))
	for i, e := range s {
		out[i] = Value(e)
	}
	return out
}
