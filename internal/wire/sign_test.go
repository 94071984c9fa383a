package wire

import (
	"errors"
	"strings"
	"testing"
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func signedTestMessage() *Message {
	data := make([]byte, 200) // a length prefix of two bytes
	for i := range data {
		data[i] = byte(i)
	}
	return &Message{Type: BroadcastAck, Nsp: "/chat", UID: "0a1b2c3d4e5f6a7b", RequesterUID: "ffffffff00000001", Data: data, ID: "msg-1"}
}

var (
	testKey   = []byte("0123456789abcdef0123456789abcdef")
	testOther = []byte("fedcba9876543210fedcba9876543210")
)

// The format is pinned by a signature computed outside Go (Python's hmac, from the description
// in sign.go), so that another implementation can be checked against it.
func TestSignKnownAnswer(t *testing.T) {
	m := signedTestMessage()
	m.Sign(testKey, "socket-io", time.UnixMilli(1700000000000))
	if want := "v1:1700000000000:944c5ee323a289ac28ffebfbb967fd15185416b4ca187963f29c854cc55addd0"; m.Sig != want {
		t.Fatalf("sig %s,\nwant %s", m.Sig, want)
	}
}

func TestVerifySig(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	m := signedTestMessage()
	m.Sign(testKey, "socket-io", at)
	if got, err := m.VerifySig([][]byte{testOther, testKey}, "socket-io"); err != nil || !got.Equal(at) {
		t.Fatalf("verify with the key second: %v, %v", got, err)
	}
	if got, ok := SigTime(m.Sig); !ok || !got.Equal(at) {
		t.Fatalf("SigTime %v %v", got, ok)
	}
	cases := map[string]func(m *Message) (keys [][]byte, topic string){
		"other key":   func(*Message) ([][]byte, string) { return [][]byte{testOther}, "socket-io" },
		"no key":      func(*Message) ([][]byte, string) { return nil, "socket-io" },
		"other topic": func(*Message) ([][]byte, string) { return [][]byte{testKey}, "socket-io-staging" },
		"type": func(m *Message) ([][]byte, string) {
			m.Type = BroadcastClientCount
			return [][]byte{testKey}, "socket-io"
		},
		"nsp":          func(m *Message) ([][]byte, string) { m.Nsp = "/"; return [][]byte{testKey}, "socket-io" },
		"uid":          func(m *Message) ([][]byte, string) { m.UID = "emitter"; return [][]byte{testKey}, "socket-io" },
		"requesterUid": func(m *Message) ([][]byte, string) { m.RequesterUID = ""; return [][]byte{testKey}, "socket-io" },
		"msgId":        func(m *Message) ([][]byte, string) { m.ID = "msg-2"; return [][]byte{testKey}, "socket-io" },
		"no msgId":     func(m *Message) ([][]byte, string) { m.ID = ""; return [][]byte{testKey}, "socket-io" },
		"data":         func(m *Message) ([][]byte, string) { m.Data = m.Data[:199]; return [][]byte{testKey}, "socket-io" },
		"time": func(m *Message) ([][]byte, string) {
			m.Sig = strings.Replace(m.Sig, "123:", "124:", 1)
			return [][]byte{testKey}, "socket-io"
		},
		"version": func(m *Message) ([][]byte, string) { m.Sig = "v2" + m.Sig[2:]; return [][]byte{testKey}, "socket-io" },
		"short mac": func(m *Message) ([][]byte, string) {
			m.Sig = m.Sig[:len(m.Sig)-2]
			return [][]byte{testKey}, "socket-io"
		},
		"not hex": func(m *Message) ([][]byte, string) {
			m.Sig = m.Sig[:len(m.Sig)-2] + "zz"
			return [][]byte{testKey}, "socket-io"
		},
		"time with a sign": func(m *Message) ([][]byte, string) {
			m.Sig = strings.Replace(m.Sig, ":1", ":+1", 1)
			return [][]byte{testKey}, "socket-io"
		},
		"no time": func(m *Message) ([][]byte, string) {
			m.Sig = "v1::" + m.Sig[len(m.Sig)-64:]
			return [][]byte{testKey}, "socket-io"
		},
		"garbage": func(m *Message) ([][]byte, string) { m.Sig = "hello"; return [][]byte{testKey}, "socket-io" },
		"a byte moved between fields": func(m *Message) ([][]byte, string) {
			m.Nsp, m.UID = "/chat0", "a1b2c3d4e5f6a7b"
			return [][]byte{testKey}, "socket-io"
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			m := signedTestMessage()
			m.Sign(testKey, "socket-io", at)
			keys, topic := change(m)
			if _, err := m.VerifySig(keys, topic); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("err %v, want ErrBadSignature", err)
			}
		})
	}
	m.Sig = ""
	if _, err := m.VerifySig([][]byte{testKey}, "socket-io"); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned: %v", err)
	}
}

// The signature is one attribute more, counted in the size SNS checks and read back from SQS.
func TestSigAttributeTravels(t *testing.T) {
	m := signedTestMessage()
	unsigned := m.Size()
	m.Sign(testKey, "socket-io", time.Now())
	if m.Size() != unsigned+len("sig")+len("String")+len(m.Sig) {
		t.Fatalf("size %d, unsigned %d, sig %d bytes", m.Size(), unsigned, len(m.Sig))
	}
	attrs := m.SNSAttributes()
	if len(attrs) != 6 || *attrs[AttrSig].StringValue != m.Sig {
		t.Fatalf("attributes %v", attrs)
	}
	in := map[string]sqstypes.MessageAttributeValue{}
	for k, v := range attrs {
		in[k] = sqstypes.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	body := m.Body()
	got, err := FromSQS(&body, in)
	if err != nil || got.Sig != m.Sig {
		t.Fatalf("FromSQS: %+v, %v", got, err)
	}
	if _, err := got.VerifySig([][]byte{testKey}, "socket-io"); err != nil {
		t.Fatal(err)
	}
	in[AttrSig] = sqstypes.MessageAttributeValue{DataType: ptr("Binary"), BinaryValue: []byte("x")}
	if _, err := FromSQS(&body, in); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a Binary sig: %v", err)
	}
}
