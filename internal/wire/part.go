package wire

import (
	"fmt"
)

// Parts. A cluster message over MaxMessageSize can travel as several PART messages (body "103")
// that Go receivers put back together; upstream's ClusterAdapter ignores message types it does
// not know, so a Node server drops them (only what no Node server has to read is split: see the
// adapter). Each part is a cluster message of its own, with the attributes of the whole (nsp,
// uid, requesterUid), its own msgId (PartID) and, in a signed cluster, its own signature; its
// data is PartData. The whole message's msgId and signature travel inside every part, so that
// the reassembled message is exactly the one the sender signed and numbered.

// Part is the message type of one part of a split cluster message. 101 and 102 are kept for
// session hand-off.
const Part Type = 103

// MaxParts bounds the parts of one message; MaxSplitSize bounds the data of a split message (a
// receiver holds it in memory while its parts arrive).
const (
	MaxParts     = 512
	MaxSplitSize = 64 << 20
)

// PartData is the data attribute of a PART message.
type PartData struct {
	Type  Type   `json:"type"`          // the whole message's type
	ID    string `json:"id"`            // the whole message's msgId: ties the parts together
	Sig   string `json:"sig,omitempty"` // the whole message's signature
	Index int    `json:"index"`         // 0 .. Count-1
	Count int    `json:"count"`
	Size  int    `json:"size"` // bytes of the whole message's data
	Chunk []byte `json:"chunk"`
}

// partMargin is kept free in every part for what the estimate below leaves out.
const partMargin = 2048

// maxSigLen is the length of a signature as Sign writes it ("v1:" 13-digit ms ":" 64 hex), with
// room for a longer clock.
const maxSigLen = 96

// PartChunkSize returns how many bytes of data each part of m carries, so that every part,
// signed, stays under MaxMessageSize however SNS counts a Binary attribute: AWS counts its
// bytes, the emulator fauxqs counts its base64 text (4 characters for 3 bytes), so the data
// attribute is budgeted at the base64 size.
func PartChunkSize(m *Message) int {
	skeleton := &Message{Type: Part, Nsp: m.Nsp, UID: m.UID, RequesterUID: m.RequesterUID,
		ID: PartID(m.ID, MaxParts), Sig: string(make([]byte, maxSigLen))}
	header, _ := Encode(&PartData{Type: m.Type, ID: m.ID, Sig: m.Sig, Index: MaxParts, Count: MaxParts, Size: MaxSplitSize,
		Chunk: make([]byte, 1<<16)}) // a bin header of the longest form
	dataName := len(AttrData) + len("Binary")
	budget := MaxMessageSize - partMargin - skeleton.Size() - dataName
	return budget*3/4 - (len(header) - 1<<16)
}

// PartID is the msgId of part index of the message whose msgId is id: unique per part, and not
// a sequenced id (ParseSequencedID refuses it), so that the orderer never sees it.
func PartID(id string, index int) string { return fmt.Sprintf("%s#%d", id, index) }

// Split returns m as parts whose data is at most chunk bytes each, unsigned (each is signed as
// a message of its own). It returns an error when m would need more than MaxParts parts or its
// data is over MaxSplitSize.
func (m *Message) Split(chunk int) ([]*Message, error) {
	if len(m.Data) > MaxSplitSize || chunk <= 0 {
		return nil, &MessageTooLargeError{Type: m.Type.String(), Nsp: m.Nsp, Size: m.Size(), Limit: MaxSplitSize,
			Requester: m.RequesterUID}
	}
	count := (len(m.Data) + chunk - 1) / chunk
	if count > MaxParts {
		return nil, &MessageTooLargeError{Type: m.Type.String(), Nsp: m.Nsp, Size: m.Size(), Limit: MaxParts * chunk,
			Requester: m.RequesterUID}
	}
	parts := make([]*Message, count)
	for i := range parts {
		end := min((i+1)*chunk, len(m.Data))
		data, err := Encode(&PartData{Type: m.Type, ID: m.ID, Sig: m.Sig, Index: i, Count: count, Size: len(m.Data),
			Chunk: m.Data[i*chunk : end]})
		if err != nil {
			return nil, err // strings, ints and bytes: cannot fail
		}
		parts[i] = &Message{Type: Part, Nsp: m.Nsp, UID: m.UID, RequesterUID: m.RequesterUID, ID: PartID(m.ID, i), Data: data}
	}
	return parts, nil
}

// ParsePart decodes and checks the data of a received PART message: what one part can tell
// alone. The parts of one message must also agree with each other (see the adapter's
// reassembly).
func ParsePart(m *Message) (*PartData, error) {
	var p PartData
	if err := Decode(m.Data, &p); err != nil {
		return nil, fmt.Errorf("%w: part: %v", ErrMalformed, err)
	}
	switch {
	case !p.Type.Valid() || p.Type == Part || !p.Type.HasData():
		return nil, fmt.Errorf("%w: part of a %s", ErrMalformed, p.Type)
	case p.Type.IsResponse() != (m.RequesterUID != ""):
		return nil, fmt.Errorf("%w: part of a %s with requesterUid %q", ErrMalformed, p.Type, Truncate(m.RequesterUID))
	case p.ID == "":
		return nil, fmt.Errorf("%w: part without the msgId of its message", ErrMalformed)
	case p.Count < 2 || p.Count > MaxParts || p.Index < 0 || p.Index >= p.Count:
		return nil, fmt.Errorf("%w: part %d of %d", ErrMalformed, p.Index, p.Count)
	case p.Size <= 0 || p.Size > MaxSplitSize || len(p.Chunk) == 0 || len(p.Chunk) > p.Size:
		return nil, fmt.Errorf("%w: part of %d bytes of a message of %d", ErrMalformed, len(p.Chunk), p.Size)
	}
	return &p, nil
}
