package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Message signatures: what lets a receiver tell a message of a sender that holds a key of the
// cluster from one that anybody allowed to publish to the topic could have written.
//
// The "sig" attribute is "v1:<unix ms>:<hex mac>", where mac is HMAC-SHA256 with the key over
//
//	"socketio-sqsadapter/sig/v1" 0x00
//	then, each as its length in bytes (unsigned varint, encoding/binary) followed by its bytes:
//	the topic name, the signing time (decimal unix ms, as in the attribute), the message type
//	(decimal, the body), nsp, uid, requesterUid ("" when absent), msgId, data (raw bytes, empty
//	when absent).
//
// Every field is length-prefixed, so no two messages share an input; the topic name keeps a
// message signed for one cluster from being replayed on another that uses the same key; the
// time lets receivers refuse old signatures, and so remember msgIds for a bounded time only.

// SigVersion starts every signature this package writes.
const SigVersion = "v1"

const sigDomain = "socketio-sqsadapter/sig/v1\x00"

// Signature errors, wrapped by what VerifySig returns.
var (
	ErrUnsigned     = errors.New("not signed")
	ErrBadSignature = errors.New("wrong signature")
)

// Sign sets m.Sig: a signature with key, at time now, of m as published on topic (the topic's
// name). m.ID must be set: receivers remember it to refuse a replay.
func (m *Message) Sign(key []byte, topic string, now time.Time) {
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	m.Sig = SigVersion + ":" + ms + ":" + hex.EncodeToString(m.mac(key, topic, ms))
}

// VerifySig checks m.Sig against keys (any of them may have signed) for topic, and returns when
// it was signed. It fails with ErrUnsigned when m carries no signature, and with
// ErrBadSignature when the signature is not of this format, m has no msgId, or no key made it.
// It does not judge the time: that is the receiver's policy.
func (m *Message) VerifySig(keys [][]byte, topic string) (time.Time, error) {
	if m.Sig == "" {
		return time.Time{}, ErrUnsigned
	}
	ms, mac, err := parseSig(m.Sig)
	if err != nil {
		return time.Time{}, err
	}
	if m.ID == "" {
		return time.Time{}, fmt.Errorf("%w: a signed message without msgId", ErrBadSignature)
	}
	for _, k := range keys {
		if hmac.Equal(mac, m.mac(k, topic, ms)) {
			n, _ := strconv.ParseInt(ms, 10, 64) // checked by parseSig
			return time.UnixMilli(n), nil
		}
	}
	return time.Time{}, ErrBadSignature
}

// SigTime returns the signing time a signature claims, unchecked; ok is false when sig is not
// of the format Sign writes.
func SigTime(sig string) (t time.Time, ok bool) {
	ms, _, err := parseSig(sig)
	if err != nil {
		return time.Time{}, false
	}
	n, _ := strconv.ParseInt(ms, 10, 64)
	return time.UnixMilli(n), true
}

// parseSig splits "v1:<ms>:<hex>" and checks each part.
func parseSig(sig string) (ms string, mac []byte, err error) {
	version, rest, ok := strings.Cut(sig, ":")
	if !ok || version != SigVersion {
		return "", nil, fmt.Errorf("%w: unknown signature version", ErrBadSignature)
	}
	ms, macHex, ok := strings.Cut(rest, ":")
	if !ok || len(ms) == 0 || len(ms) > 15 || len(macHex) != 2*sha256.Size {
		return "", nil, fmt.Errorf("%w: malformed signature", ErrBadSignature)
	}
	if n, err := strconv.ParseInt(ms, 10, 64); err != nil || n < 0 || strconv.FormatInt(n, 10) != ms {
		return "", nil, fmt.Errorf("%w: malformed signature time", ErrBadSignature)
	}
	if mac, err = hex.DecodeString(macHex); err != nil {
		return "", nil, fmt.Errorf("%w: malformed signature", ErrBadSignature)
	}
	return ms, mac, nil
}

// mac is the HMAC of m's signed fields; see the format above.
func (m *Message) mac(key []byte, topic, ms string) []byte {
	h := hmac.New(sha256.New, key)
	var lenBuf [binary.MaxVarintLen64]byte
	field := func(b []byte) {
		h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(b)))])
		h.Write(b)
	}
	h.Write([]byte(sigDomain))
	for _, s := range []string{topic, ms, m.Body(), m.Nsp, m.UID, m.RequesterUID, m.ID} {
		field([]byte(s))
	}
	field(m.Data)
	return h.Sum(nil)
}
