package compat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	v4Born  = netip.MustParseAddrPort("10.0.0.7:51234")
	v4Store = netip.MustParseAddrPort("127.0.0.1:10911")
	v6Born  = netip.MustParseAddrPort("[2001:db8::7]:51234")
	v6Store = netip.MustParseAddrPort("[::1]:10911")
)

func sampleMessages() []*MessageExt {
	return []*MessageExt{
		{Topic: "T1", QueueID: 3, Flag: 9, QueueOffset: 42, PhysicalOffset: 1 << 40, SysFlag: SysFlagMultiTags,
			BornTimestamp: 1700000000123, BornHost: v4Born, StoreTimestamp: 1700000000456, StoreHost: v4Store,
			ReconsumeTimes: 2, PreparedTransactionOffset: 77, Body: []byte("hello"),
			Properties: map[string]string{PropTags: "a", PropKeys: "k1 k2", PropUniqKey: "7F0000010001", PropWaitStoreMsgOK: "true"}},
		{Topic: "six", BornHost: v6Born, StoreHost: v6Store, Body: []byte("body0")},
		{Topic: strings.Repeat("t", 200), BornHost: v4Born, StoreHost: v6Store, Properties: map[string]string{"a": ""}},
		{Topic: "empty", BornHost: v4Born, StoreHost: v4Store},
	}
}

func TestMessageExtRoundTrip(t *testing.T) {
	var all []byte
	msgs := sampleMessages()
	for _, m := range msgs {
		b := AppendMessageExt(nil, m)
		if len(b) != MessageExtSize(m) {
			t.Fatalf("MessageExtSize %d, encoded %d", MessageExtSize(m), len(b))
		}
		got, n, err := DecodeMessageExt(b)
		if err != nil || n != len(b) {
			t.Fatalf("DecodeMessageExt: n %d of %d, %v", n, len(b), err)
		}
		want := *m
		want.SysFlag = m.SysFlag &^ (SysFlagBornHostV6 | SysFlagStoreHostV6)
		if isV6(m.BornHost) {
			want.SysFlag |= SysFlagBornHostV6
		}
		if isV6(m.StoreHost) {
			want.SysFlag |= SysFlagStoreHostV6
		}
		if d := cmp.Diff(&want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
			t.Errorf("topic %.10s (-want +got):\n%s", m.Topic, d)
		}
		all = append(all, b...)
	}
	// Back to back, as in a pull body.
	for i := 0; len(all) > 0; i++ {
		got, n, err := DecodeMessageExt(all)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got.Topic != msgs[i].Topic {
			t.Fatalf("message %d topic %q", i, got.Topic)
		}
		all = all[n:]
	}
}

func TestMessageExtZeroHosts(t *testing.T) {
	b := AppendMessageExt(nil, &MessageExt{Topic: "T"})
	got, _, err := DecodeMessageExt(b)
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort("0.0.0.0:0")
	if got.BornHost != want || got.StoreHost != want || got.SysFlag != 0 {
		t.Fatalf("zero hosts decoded as %v %v sysFlag %#x", got.BornHost, got.StoreHost, got.SysFlag)
	}
	// An IPv4-mapped IPv6 address is IPv4 on the wire.
	mapped := netip.AddrPortFrom(netip.MustParseAddr("::ffff:10.1.2.3"), 99)
	b = AppendMessageExt(nil, &MessageExt{Topic: "T", StoreHost: mapped})
	if len(b) != 91+1 {
		t.Fatalf("mapped host size %d", len(b))
	}
}

// TestMessageExtLayout checks one hand-computed message against the §3.7
// table: 91 fixed bytes (IPv4 hosts, V1) + body + topic + properties.
func TestMessageExtLayout(t *testing.T) {
	m := &MessageExt{Topic: "T1", QueueID: 3, Flag: 9, QueueOffset: 42, PhysicalOffset: 4096, SysFlag: 0,
		BornTimestamp: 1000, BornHost: v4Born, StoreTimestamp: 2000, StoreHost: v4Store, ReconsumeTimes: 2,
		PreparedTransactionOffset: 77, Body: []byte("hello"), Properties: map[string]string{"TAGS": "a"}}
	b := AppendMessageExt(nil, m)
	u32 := func(off int) uint32 { return binary.BigEndian.Uint32(b[off:]) }
	u64 := func(off int) uint64 { return binary.BigEndian.Uint64(b[off:]) }
	const total = 91 + 5 + 2 + 7 // "TAGS\x01a\x02" is 7 bytes
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"len", uint64(len(b)), total},
		{"TOTALSIZE@0", uint64(u32(0)), total},
		{"MAGICCODE@4", uint64(u32(4)), uint64(MagicV1)},
		{"BODYCRC@8", uint64(u32(8)), 0x3610a686}, // crc32("hello")
		{"QUEUEID@12", uint64(u32(12)), 3},
		{"FLAG@16", uint64(u32(16)), 9},
		{"QUEUEOFFSET@20", u64(20), 42},
		{"PHYSICALOFFSET@28", u64(28), 4096},
		{"SYSFLAG@36", uint64(u32(36)), 0},
		{"BORNTIMESTAMP@40", u64(40), 1000},
		{"BORNHOST ip@48", uint64(u32(48)), 0x0A000007},
		{"BORNHOST port@52", uint64(u32(52)), 51234},
		{"STORETIMESTAMP@56", u64(56), 2000},
		{"STOREHOST ip@64", uint64(u32(64)), 0x7F000001},
		{"STOREHOST port@68", uint64(u32(68)), 10911},
		{"RECONSUMETIMES@72", uint64(u32(72)), 2},
		{"PREPAREDTXOFFSET@76", u64(76), 77},
		{"BODY len@84", uint64(u32(84)), 5},
		{"TOPIC len byte@93", uint64(b[93]), 2},
		{"PROPERTIES len@96", uint64(binary.BigEndian.Uint16(b[96:])), 7},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if string(b[88:93]) != "hello" || string(b[94:96]) != "T1" || string(b[98:]) != "TAGS\x01a\x02" {
		t.Errorf("body/topic/properties bytes wrong: %q", b[88:])
	}
}

func TestMessageExtIPv6AndV2(t *testing.T) {
	m := &MessageExt{Topic: "T", BornHost: v6Born, StoreHost: v6Store, Body: []byte("body0")}
	b := AppendMessageExt(nil, m)
	if len(b) != 91+24+5+1 {
		t.Fatalf("size %d, want %d", len(b), 91+24+5+1)
	}
	if sys := binary.BigEndian.Uint32(b[36:]); sys != SysFlagBornHostV6|SysFlagStoreHostV6 {
		t.Fatalf("sysFlag %#x", sys)
	}
	// BORNHOST is 16+4 bytes at 48, STORETIMESTAMP at 68, STOREHOST at 76.
	if !bytes.Equal(b[48:64], v6Born.Addr().AsSlice()) || binary.BigEndian.Uint32(b[64:]) != 51234 {
		t.Fatalf("born host bytes %x", b[48:68])
	}
	if !bytes.Equal(b[76:92], v6Store.Addr().AsSlice()) || binary.BigEndian.Uint32(b[92:]) != 10911 {
		t.Fatalf("store host bytes %x", b[76:96])
	}
	// RocketMQ's crc32 clears the top bit: crc32("body0") is 0xd16fa58a.
	if crc := binary.BigEndian.Uint32(b[8:]); crc != 0x516fa58a {
		t.Fatalf("BODYCRC %#x, want 0x516fa58a", crc)
	}
	// A stale IPv6 bit is cleared for IPv4 hosts.
	b = AppendMessageExt(nil, &MessageExt{Topic: "T", SysFlag: SysFlagBornHostV6 | SysFlagCompressed, BornHost: v4Born})
	if sys := binary.BigEndian.Uint32(b[36:]); sys != SysFlagCompressed {
		t.Fatalf("sysFlag %#x, want only compressed", sys)
	}

	long := &MessageExt{Topic: strings.Repeat("x", 128)}
	b = AppendMessageExt(nil, long)
	if binary.BigEndian.Uint32(b[4:]) != MagicV2 || binary.BigEndian.Uint16(b[88:]) != 128 {
		t.Fatalf("long topic not V2: magic %#x", binary.BigEndian.Uint32(b[4:]))
	}
	if b := AppendMessageExt(nil, &MessageExt{Topic: strings.Repeat("x", 127)}); binary.BigEndian.Uint32(b[4:]) != MagicV1 {
		t.Fatal("127-byte topic not V1")
	}
}

func TestDecodeMessageExtErrors(t *testing.T) {
	good := AppendMessageExt(nil, sampleMessages()[0])
	for n := 0; n < len(good); n++ {
		if _, _, err := DecodeMessageExt(good[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d: got %v", n, err)
		}
	}
	mut := func(off int, v uint32) []byte {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[off:], v)
		return b
	}
	cases := map[string][]byte{
		"blank magic":       mut(4, MagicBlank),
		"bad magic":         mut(4, 0x12345678),
		"bad crc":           mut(8, 1),
		"size too small":    mut(0, uint32(len(good)-1)),
		"size too big":      mut(0, uint32(len(good)+1)),
		"negative body":     mut(84, 0x80000000),
		"body past end":     mut(84, 1000),
		"port out of range": mut(52, 70000),
	}
	for name, b := range cases {
		if _, _, err := DecodeMessageExt(append(b, make([]byte, 8)...)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestCheckMessageExt(t *testing.T) {
	if err := CheckMessageExt(sampleMessages()[0]); err != nil {
		t.Fatal(err)
	}
	bad := []*MessageExt{
		{Topic: strings.Repeat("x", MaxTopicLen+1)},
		{Topic: "T", Properties: map[string]string{"k": strings.Repeat("v", MaxPropertiesLen)}},
		{Topic: "T", Properties: map[string]string{"": "v"}},
		{Topic: "T", Properties: map[string]string{"a\x01b": "v"}},
		{Topic: "T", Properties: map[string]string{"k": "v\x02"}},
	}
	for i, m := range bad {
		if err := CheckMessageExt(m); err == nil {
			t.Errorf("case %d passed", i)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("AppendMessageExt encoded properties past the limit")
		}
	}()
	AppendMessageExt(nil, bad[1])
}

func TestBatch(t *testing.T) {
	entries := []BatchEntry{
		{Flag: 1, Body: []byte("one"), Properties: map[string]string{PropUniqKey: "U1", PropTags: "t"}},
		{Flag: 0, Body: nil, Properties: nil},
		{Flag: -1, Body: bytes.Repeat([]byte("z"), 1000), Properties: map[string]string{"x": "y"}},
	}
	var b []byte
	for _, e := range entries {
		b = AppendBatchEntry(b, e)
	}
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(entries, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// Layout: totalSize, magic 0, crc 0, flag, bodyLen, body, propsLen, props.
	first := AppendBatchEntry(nil, BatchEntry{Flag: 5, Body: []byte("ab"), Properties: map[string]string{"k": "v"}})
	want := []byte{0, 0, 0, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2, 'a', 'b', 0, 4, 'k', 1, 'v', 2}
	if !bytes.Equal(first, want) {
		t.Fatalf("entry bytes\n got %v\nwant %v", first, want)
	}
	if got, err := DecodeBatch(nil); err != nil || got != nil {
		t.Fatalf("empty batch: %v %v", got, err)
	}
	boundary := map[int]bool{}
	for off, i := 0, 0; i < len(entries); i++ {
		off += len(AppendBatchEntry(nil, entries[i]))
		boundary[off] = true
	}
	for n := 1; n < len(b); n++ {
		if got, err := DecodeBatch(b[:n]); !boundary[n] && !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d: %d entries, %v", n, len(got), err)
		}
	}
	badSize := append([]byte(nil), first...)
	badSize[3] = 27
	if _, err := DecodeBatch(badSize); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad totalSize: got %v", err)
	}
}

func TestProperties(t *testing.T) {
	p := map[string]string{"TAGS": "a", "KEYS": "k1 k2", "UNIQ_KEY": "X", "EMPTY": ""}
	s := EncodeProperties(p)
	if want := "EMPTY\x01\x02KEYS\x01k1 k2\x02TAGS\x01a\x02UNIQ_KEY\x01X\x02"; s != want {
		t.Fatalf("EncodeProperties = %q, want %q", s, want)
	}
	if d := cmp.Diff(p, DecodeProperties(s)); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	cases := map[string]map[string]string{
		"":                     nil,
		"a\x011":               {"a": "1"},           // no trailing separator
		"a\x011\x02\x02b\x012": {"a": "1", "b": "2"}, // empty pair skipped
		"noval\x02a\x01x\x01y": {"a": "x\x01y"},      // no \x01 skipped; value split at the first \x01 (Java)
		"\x01v\x02":            nil,                  // empty key skipped
		"\x02\x02\x02":         nil,
	}
	for in, want := range cases {
		if d := cmp.Diff(want, DecodeProperties(in)); d != "" {
			t.Errorf("DecodeProperties(%q) (-want +got):\n%s", in, d)
		}
	}
	if s := EncodeProperties(map[string]string{"": "x", "a\x02": "y", "ok": "1", "bad": "v\x02"}); s != "ok\x011\x02" {
		t.Fatalf("undecodable entries kept: %q", s)
	}
	if EncodeProperties(nil) != "" {
		t.Fatal("nil properties not empty")
	}
}

func TestOffsetMsgID(t *testing.T) {
	id := OffsetMsgID(v4Store, 1234)
	if want := "7F00000100002A9F00000000000004D2"; id != want {
		t.Fatalf("OffsetMsgID = %s, want %s", id, want)
	}
	host, off, err := ParseOffsetMsgID(id)
	if err != nil || host != v4Store || off != 1234 {
		t.Fatalf("ParseOffsetMsgID = %v %d %v", host, off, err)
	}
	id6 := OffsetMsgID(v6Store, 1<<50)
	if len(id6) != 56 {
		t.Fatalf("IPv6 id %q", id6)
	}
	host, off, err = ParseOffsetMsgID(strings.ToLower(id6))
	if err != nil || host != v6Store || off != 1<<50 {
		t.Fatalf("ParseOffsetMsgID v6 = %v %d %v", host, off, err)
	}
	for _, bad := range []string{"", "7F000001", "ZZ00000100002A9F00000000000004D2", "7F000001FFFFFFFF00000000000004D2"} {
		if _, _, err := ParseOffsetMsgID(bad); err == nil {
			t.Errorf("ParseOffsetMsgID(%q) accepted", bad)
		}
	}
}
