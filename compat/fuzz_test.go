package compat

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rmq-dev/rmq/wire"
)

func FuzzReadCommand(f *testing.F) {
	for _, ser := range []byte{SerializeJSON, SerializeBinary} {
		for _, c := range sampleCommands() {
			c.Serialize = ser
			b, _ := AppendCommand(nil, c)
			f.Add(b)
		}
	}
	f.Add([]byte{0, 0, 0, 6, 0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ReadCommand(bytes.NewReader(b), 1<<16)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes (unless binary cannot carry it) and
		// decodes to the same command.
		out, err := AppendCommand(nil, c)
		if err != nil {
			if c.Serialize == SerializeBinary {
				t.Fatalf("re-encode: %v", err)
			}
			return
		}
		back, err := ReadCommand(bytes.NewReader(out), 1<<17)
		if err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
		if c.Serialize == SerializeJSON {
			c.Language, back.Language = "", "" // JSON keeps any name, invalid UTF-8 is replaced
			c.Remark, back.Remark = "", ""
			c.Ext, back.Ext = nil, nil
		}
		if d := cmp.Diff(c, back); d != "" {
			t.Fatalf("(-first +second):\n%s", d)
		}
	})
}

func FuzzDecodeMessageExt(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(AppendMessageExt(nil, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := DecodeMessageExt(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("used %d of %d", n, len(b))
		}
		if err := CheckMessageExt(m); err != nil {
			return
		}
		again, _, err := DecodeMessageExt(AppendMessageExt(nil, m))
		if err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
		if d := cmp.Diff(m, again, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
			t.Fatalf("(-first +second):\n%s", d)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	var b []byte
	for _, e := range []BatchEntry{{Flag: 1, Body: []byte("x"), Properties: map[string]string{"UNIQ_KEY": "u"}}, {}} {
		b = AppendBatchEntry(b, e)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := DecodeBatch(b)
		if err != nil {
			return
		}
		var out []byte
		for _, e := range es {
			if CheckProperties(e.Properties) != nil {
				return
			}
			out = AppendBatchEntry(out, e)
		}
		again, err := DecodeBatch(out)
		if err != nil {
			t.Fatalf("decode of re-encoded: %v", err)
		}
		if d := cmp.Diff(es, again); d != "" {
			t.Fatalf("(-first +second):\n%s", d)
		}
	})
}

func FuzzDecodeProperties(f *testing.F) {
	f.Add("TAGS\x01a\x02KEYS\x01k\x02")
	f.Add("a\x011")
	f.Add("\x02\x01\x02x\x01y\x01z")
	f.Fuzz(func(t *testing.T, s string) {
		p := DecodeProperties(s)
		if err := CheckProperties(p); err != nil && len(EncodeProperties(p)) <= MaxPropertiesLen {
			t.Fatalf("decoded properties fail the check: %v", err)
		}
		if d := cmp.Diff(p, DecodeProperties(EncodeProperties(p))); d != "" {
			t.Fatalf("(-decoded +round-tripped):\n%s", d)
		}
	})
}

func FuzzSniff(f *testing.F) {
	f.Add(wire.AppendFrame(nil, wire.Frame{Code: 1, ID: 1}))
	for _, ser := range []byte{SerializeJSON, SerializeBinary} {
		b, _ := AppendCommand(nil, &Command{Code: ReqHeartBeat, Serialize: ser})
		f.Add(b)
	}
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := Sniff(b)
		if len(b) < SniffLen && p != ProtoUnknown {
			t.Fatalf("%d bytes classified as %v", len(b), p)
		}
		if len(b) >= SniffLen && Sniff(b[:SniffLen]) != p {
			t.Fatal("Sniff looked past SniffLen bytes")
		}
		// A remoting frame built from the input always sniffs as remoting.
		if len(b) >= 2 {
			code := int32(int16(uint16(b[0])<<8 | uint16(b[1])))
			if code == 0 {
				code = 1
			}
			for _, ser := range []byte{SerializeJSON, SerializeBinary} {
				fr, err := AppendCommand(nil, &Command{Code: code, Remark: string(b[2:]), Serialize: ser})
				if err == nil && Sniff(fr) != ProtoRemoting {
					t.Fatalf("remoting frame %x sniffed as %v", fr[:SniffLen], Sniff(fr))
				}
			}
		}
	})
}

// slowJSONHeader decodes h with encoding/json only, as decodeJSONHeader
// did before its fast path.
func slowJSONHeader(h []byte) (*Command, error) {
	var jh jsonHeader
	if err := json.Unmarshal(h, &jh); err != nil {
		return nil, err
	}
	c := &Command{Code: jh.Code, Language: jh.Language, Version: jh.Version, Opaque: jh.Opaque, Flag: jh.Flag, Remark: jh.Remark}
	if len(jh.ExtFields) > 0 {
		c.Ext = jh.ExtFields
	}
	return c, nil
}

// FuzzJSONHeader: whatever the fast header scanner accepts, encoding/json
// accepts too and decodes to the same Command.
func FuzzJSONHeader(f *testing.F) {
	for _, s := range []string{
		`{"code":105,"extFields":{"topic":"T"},"flag":0,"language":"GO","opaque":7,"version":317}`,
		`{"code":10,"language":"GO","version":317,"opaque":3,"flag":0,"remark":"","extFields":{"properties":"TAGS\u0001a\u0002UNIQ_KEY\u0001ABC\u0002","topic":"t\"q"},"serializeTypeCurrentRPC":"JSON"}`,
		`{ "code" : -1 , "remark" : null , "extFields" : null }`,
		`{"code":1,"extFields":{"a":"\u00e9\ud83d\ude00"}}`,
		`{"code":01}`, `{"Code":1}`, `{"code":1,"extFields":{},"extFields":{"a":"b"}}`, `{}`, `{"code":2147483648}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, h []byte) {
		fast, ok := fastJSONHeader(h)
		if !ok {
			return
		}
		slow, err := slowJSONHeader(h)
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", h, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast path %+v, encoding/json %+v", h, fast, slow)
		}
	})
}
