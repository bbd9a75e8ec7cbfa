package compat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sampleCommands are round-trip cases and fuzz seeds.
func sampleCommands() []*Command {
	return []*Command{
		{Code: ReqGetRouteInfoByTopic, Language: "GO", Version: 317, Opaque: 7, Ext: map[string]string{"topic": "T"}},
		{Code: ReqSendMessage, Language: "JAVA", Version: 401, Opaque: -5, Flag: 0,
			Ext:  map[string]string{"producerGroup": "pg", "topic": "T", "properties": "TAGS\x01a\x02UNIQ_KEY\x01X\x02", "queueId": "3"},
			Body: []byte("hello")},
		{Code: RespPullNotFound, Language: "JAVA", Version: 317, Opaque: 99, Flag: FlagResponse, Remark: "no \"new\" message\n\t\x01 ünïcode"},
		{Code: ReqUpdateConsumerOffset, Language: "RUST", Opaque: 1, Flag: FlagOneway, Body: bytes.Repeat([]byte{0xAB}, 300)},
		{Code: RespSuccess, Language: "OTHER", Flag: FlagResponse, Ext: map[string]string{"": "", "k": ""}},
	}
}

func roundTrip(t *testing.T, c *Command) *Command {
	t.Helper()
	frame, err := AppendCommand(nil, c)
	if err != nil {
		t.Fatalf("AppendCommand: %v", err)
	}
	got, err := ReadCommand(bytes.NewReader(frame), 0)
	if err != nil {
		t.Fatalf("ReadCommand: %v", err)
	}
	got2, n, err := DecodeCommand(frame, 0)
	if err != nil || n != len(frame) {
		t.Fatalf("DecodeCommand: n %d of %d, %v", n, len(frame), err)
	}
	if d := cmp.Diff(got, got2); d != "" {
		t.Fatalf("ReadCommand and DecodeCommand differ (-read +decode):\n%s", d)
	}
	return got
}

func TestCommandRoundTrip(t *testing.T) {
	for _, ser := range []byte{SerializeJSON, SerializeBinary} {
		for i, c := range sampleCommands() {
			c.Serialize = ser
			got := roundTrip(t, c)
			want := *c
			if len(want.Ext) == 0 {
				want.Ext = nil
			}
			if d := cmp.Diff(&want, got); d != "" {
				t.Errorf("serialize %d case %d (-want +got):\n%s", ser, i, d)
			}
		}
	}
}

func TestGoldenJSONFrame(t *testing.T) {
	header := `{"code":105,"extFields":{"topic":"T"},"flag":0,"language":"GO","opaque":7,"version":317}`
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+2))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(header)))
	frame = append(frame, header...)
	frame = append(frame, "{}"...)
	got, err := ReadCommand(bytes.NewReader(frame), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := &Command{Code: 105, Language: "GO", Version: 317, Opaque: 7, Ext: map[string]string{"topic": "T"},
		Body: []byte("{}"), Serialize: SerializeJSON}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}

	// What we write for the same command: sorted keys, the Java field.
	out, err := AppendCommand(nil, &Command{Code: 105, Language: "GO", Version: 317, Opaque: 7, Ext: map[string]string{"topic": "T"}})
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := `{"code":105,"extFields":{"topic":"T"},"flag":0,"language":"GO","opaque":7,"serializeTypeCurrentRPC":"JSON","version":317}`
	if got := string(out[8:]); got != wantHeader {
		t.Fatalf("header\n got %s\nwant %s", got, wantHeader)
	}
	if n := binary.BigEndian.Uint32(out); int(n) != len(out)-4 {
		t.Fatalf("totalLen %d, frame %d", n, len(out))
	}
	if w := binary.BigEndian.Uint32(out[4:]); w != uint32(len(wantHeader)) {
		t.Fatalf("header word %#x, want %#x", w, len(wantHeader))
	}
}

func TestJSONHeaderRemarkOmittedAndEscaped(t *testing.T) {
	out, err := AppendCommand(nil, &Command{Code: 1, Remark: "a\"b\\c\u2028<\x00"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"remark":"a\"b\\c\u2028<\u0000"`) {
		t.Fatalf("remark not escaped: %q", out[8:])
	}
	out, _ = AppendCommand(nil, &Command{Code: 1})
	if strings.Contains(string(out), "remark") || strings.Contains(string(out), "extFields") {
		t.Fatalf("empty remark/extFields not omitted: %s", out[8:])
	}
}

func TestHandBuiltBinaryHeader(t *testing.T) {
	var h []byte
	h = binary.BigEndian.AppendUint16(h, 310)        // code
	h = append(h, 9)                                 // language GO
	h = binary.BigEndian.AppendUint16(h, 317)        // version
	h = binary.BigEndian.AppendUint32(h, 0x01020304) // opaque
	h = binary.BigEndian.AppendUint32(h, 2)          // flag oneway
	h = binary.BigEndian.AppendUint32(h, 2)          // remark length
	h = append(h, "hi"...)
	var ext []byte
	ext = binary.BigEndian.AppendUint16(ext, 1)
	ext = append(ext, 'b')
	ext = binary.BigEndian.AppendUint32(ext, 5)
	ext = append(ext, "Topic"...)
	h = binary.BigEndian.AppendUint32(h, uint32(len(ext)))
	h = append(h, ext...)
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(h)+3))
	frame = binary.BigEndian.AppendUint32(frame, 1<<24|uint32(len(h)))
	frame = append(frame, h...)
	frame = append(frame, "abc"...)

	got, err := ReadCommand(bytes.NewReader(frame), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := &Command{Code: 310, Language: "GO", Version: 317, Opaque: 0x01020304, Flag: FlagOneway, Remark: "hi",
		Ext: map[string]string{"b": "Topic"}, Body: []byte("abc"), Serialize: SerializeBinary}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// And we encode it to the same bytes.
	out, err := AppendCommand(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, frame) {
		t.Fatalf("re-encoded\n got %x\nwant %x", out, frame)
	}
}

func TestBinaryLanguageMapping(t *testing.T) {
	for b, name := range languageNames {
		if languageByte(name) != byte(b) || languageName(byte(b)) != name {
			t.Errorf("language %d/%s does not map both ways", b, name)
		}
	}
	if languageName(200) != "OTHER" || languageByte("COBOL") != 7 {
		t.Error("unknown language not mapped to OTHER")
	}
}

func TestBinaryCodeOutOfRange(t *testing.T) {
	_, err := AppendCommand(nil, &Command{Code: ReqPopMessage, Serialize: SerializeBinary})
	if err == nil || !strings.Contains(err.Error(), "int16") {
		t.Fatalf("got %v, want an int16 error", err)
	}
	if _, err := AppendCommand(nil, &Command{Serialize: 7}); err == nil {
		t.Fatal("unknown serialize type encoded")
	}
}

func frameOf(st byte, header, body []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+len(body)))
	f = binary.BigEndian.AppendUint32(f, uint32(st)<<24|uint32(len(header)))
	f = append(f, header...)
	return append(f, body...)
}

func TestBadFrames(t *testing.T) {
	good, _ := AppendCommand(nil, &Command{Code: 10, Serialize: SerializeBinary, Remark: "r", Ext: map[string]string{"a": "b"}})
	bin := good[8:]
	truncHeader := func(n int) []byte { return frameOf(SerializeBinary, bin[:n], nil) }
	negRemark := append([]byte(nil), bin...)
	binary.BigEndian.PutUint32(negRemark[13:], 0xFFFFFFFF)
	withRemarkLen := func(n uint32) []byte {
		h := append([]byte(nil), bin...)
		binary.BigEndian.PutUint32(h[13:], n)
		return frameOf(SerializeBinary, h, nil)
	}
	badExt := append([]byte(nil), bin...)
	binary.BigEndian.PutUint32(badExt[18:], 100) // ext length beyond the header

	cases := []struct {
		name  string
		frame []byte
		max   int
		want  error
	}{
		{"length below 4", []byte{0, 0, 0, 3, 0, 0, 0}, 0, ErrMalformed},
		{"oversized", []byte{0x7F, 0xFF, 0xFF, 0xFF}, 0, ErrFrameTooLarge},
		{"over a small max", good, 8, ErrFrameTooLarge},
		{"header beyond frame", []byte{0, 0, 0, 6, 0, 0, 0, 9, '{', '}'}, 0, ErrMalformed},
		{"unknown serialize type", frameOf(2, []byte("{}"), nil), 0, ErrMalformed},
		{"bad JSON", frameOf(SerializeJSON, []byte(`{"code":`), nil), 0, ErrMalformed},
		{"JSON not an object", frameOf(SerializeJSON, []byte(`[1]`), nil), 0, ErrMalformed},
		{"JSON ext not strings", frameOf(SerializeJSON, []byte(`{"extFields":{"a":1}}`), nil), 0, ErrMalformed},
		{"binary fixed part short", truncHeader(20), 0, ErrMalformed},
		{"binary ext missing", truncHeader(22), 0, ErrMalformed},
		{"binary remark too long", withRemarkLen(100), 0, ErrMalformed},
		{"binary ext length missing", withRemarkLen(uint32(len(bin) - 17 - 2)), 0, ErrMalformed},
		{"binary ext truncated", truncHeader(len(bin) - 1), 0, ErrMalformed},
		{"binary negative remark", frameOf(SerializeBinary, negRemark, nil), 0, ErrMalformed},
		{"binary ext length wrong", frameOf(SerializeBinary, badExt, nil), 0, ErrMalformed},
		{"stream ends in the frame", good[:len(good)-1], 0, io.ErrUnexpectedEOF},
		{"stream ends in the prefix", good[:2], 0, io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCommand(bytes.NewReader(tc.frame), tc.max)
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := ReadCommand(bytes.NewReader(nil), 0); err != io.EOF {
		t.Fatalf("empty stream: got %v, want io.EOF", err)
	}
}

func TestReadCommandDoesNotTrustThePrefix(t *testing.T) {
	// A 16 MiB claim with 10 bytes behind it must fail without reading
	// past the stream; the frame limit bounds the allocation.
	f := []byte{0, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2, '{', '}'}
	if _, err := ReadCommand(bytes.NewReader(f), 1<<10); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
}

func TestExtAccessors(t *testing.T) {
	c := &Command{}
	c.SetExt("queueId", "3")
	c.SetExt("offset", "-9000000000")
	c.SetExt("bad", "abc")
	c.SetExt("big", "9999999999")
	c.SetExt("empty", "")
	c.SetExt("yes", "TRUE")

	if v, err := c.ExtString("queueId"); v != "3" || err != nil {
		t.Errorf("ExtString = %q, %v", v, err)
	}
	if _, err := c.ExtString("topic"); err == nil || err.Error() != `header field "topic": missing` {
		t.Errorf("missing: got %v", err)
	}
	if v, err := c.ExtInt32("queueId"); v != 3 || err != nil {
		t.Errorf("ExtInt32 = %d, %v", v, err)
	}
	if v, err := c.ExtInt64("offset"); v != -9000000000 || err != nil {
		t.Errorf("ExtInt64 = %d, %v", v, err)
	}
	_, err := c.ExtInt32("bad")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "bad" || err.Error() != `header field "bad": "abc" is not an integer` {
		t.Errorf("non-numeric: got %v", err)
	}
	if _, err := c.ExtInt32("big"); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("int32 overflow: got %v", err)
	}
	if _, err := c.ExtInt64("nope"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("ExtInt64 missing: got %v", err)
	}
	if v, err := c.ExtOptInt64("empty", 42); v != 42 || err != nil {
		t.Errorf("ExtOptInt64 empty = %d, %v", v, err)
	}
	if v, err := c.ExtOptInt64("absent", -1); v != -1 || err != nil {
		t.Errorf("ExtOptInt64 absent = %d, %v", v, err)
	}
	if _, err := c.ExtOptInt64("bad", 0); err == nil {
		t.Error("ExtOptInt64 accepted a malformed value")
	}
	if v, err := c.ExtOptInt32("queueId", 0); v != 3 || err != nil {
		t.Errorf("ExtOptInt32 = %d, %v", v, err)
	}
	if !c.ExtBool("yes") || c.ExtBool("queueId") || c.ExtBool("absent") {
		t.Error("ExtBool wrong")
	}
	var nilExt Command
	if nilExt.ExtBool("x") {
		t.Error("ExtBool on nil Ext")
	}
}

func TestNewRequestResponse(t *testing.T) {
	req := NewRequest(ReqPullMessage, map[string]string{"topic": "T"}, nil)
	if req.Language != "JAVA" || req.Serialize != SerializeJSON || req.IsResponse() || req.IsOneway() {
		t.Fatalf("NewRequest = %+v", req)
	}
	req.Opaque, req.Version, req.Serialize = 41, 401, SerializeBinary
	resp := NewResponse(req, RespPullNotFound, "none")
	if resp.Opaque != 41 || resp.Version != 401 || resp.Serialize != SerializeBinary || !resp.IsResponse() ||
		resp.Code != RespPullNotFound || resp.Remark != "none" {
		t.Fatalf("NewResponse = %+v", resp)
	}
}

func TestCodeNames(t *testing.T) {
	cases := map[string]string{
		RequestName(ReqSendMessage):              "SEND_MESSAGE",
		RequestName(ReqGetRouteInfoByTopic):      "GET_ROUTEINFO_BY_TOPIC",
		RequestName(12345):                       "code 12345",
		ResponseName(RespSuccess):                "SUCCESS",
		ResponseName(RespConsumerNotOnline):      "CONSUMER_NOT_ONLINE",
		ResponseName(-3):                         "code -3",
		RequestName(ReqNotifyConsumerIDsChanged): "NOTIFY_CONSUMER_IDS_CHANGED",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestJSONHeaderFastPath: the headers clients send take the fast scanner
// (escaped property separators included), not encoding/json.
func TestJSONHeaderFastPath(t *testing.T) {
	req := NewRequest(ReqSendMessage, map[string]string{
		"topic": "orders", "queueId": "3", "properties": "TAGS\x01paid\x02UNIQ_KEY\x01C0A8\x02KEYS\x01订单\x02",
	}, []byte("body"))
	frame, err := AppendCommand(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	hl := int(frame[5])<<16 | int(frame[6])<<8 | int(frame[7])
	h := frame[8 : 8+hl]
	c, ok := fastJSONHeader(h)
	if !ok {
		t.Fatalf("fast path refused our own header %s", h)
	}
	if c.Code != ReqSendMessage || c.Ext["properties"] != req.Ext["properties"] || c.Ext["queueId"] != "3" {
		t.Fatalf("fast path decoded %+v", c)
	}
	goHeader := `{"code":10,"language":"GO","version":317,"opaque":12,"flag":0,"remark":"","extFields":{"bname":"broker-a","producerGroup":"pg","properties":"KEYS\u0001k1\u0002TAGS\u0001a\u0002UNIQ_KEY\u0001C00002021E470000000002707f180001\u0002","queueId":"1","topic":"t"}}`
	if c, ok := fastJSONHeader([]byte(goHeader)); !ok || c.Ext["bname"] != "broker-a" || c.Opaque != 12 {
		t.Fatalf("fast path on rocketmq-client-go's header: %+v %v", c, ok)
	}
}
