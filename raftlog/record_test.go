package raftlog

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, l := range []*raft.Log{
		{Index: 1, Term: 1},
		{Index: 7, Term: 3, Type: raft.LogConfiguration, Data: []byte("cfg"), Extensions: []byte("ext"), AppendedAt: time.Unix(5, 6)},
		mkLog(1<<40, 1<<33, 4096),
	} {
		b := appendRecord([]byte("prefix"), l)[6:]
		if len(b) != recordSize(l) {
			t.Fatalf("encoded %d bytes, recordSize %d", len(b), recordSize(l))
		}
		rec, n, reason := decodeRecord(append(b, "trailing"...))
		if reason != "" || n != len(b) {
			t.Fatalf("decode got (%d, %q), want (%d, ok)", n, reason, len(b))
		}
		var got raft.Log
		rec.toLog(&got)
		if got.Index != l.Index || got.Term != l.Term || got.Type != l.Type || !bytes.Equal(got.Data, l.Data) ||
			!bytes.Equal(got.Extensions, l.Extensions) || !got.AppendedAt.Equal(l.AppendedAt) {
			t.Fatalf("round trip got %+v, want %+v", got, l)
		}
	}
}

// FuzzDecodeRecord checks that the decoder never panics, never reads past
// its input and returns views inside it (it allocates nothing).
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, mkLog(1, 1, 0)))
	f.Add(appendRecord(nil, mkLog(42, 7, 300)))
	f.Add(appendRecord(nil, &raft.Log{Index: 9, Term: 2, Type: raft.LogNoop, Extensions: []byte("e"), Data: []byte("d")}))
	f.Add(appendRecord(appendRecord(nil, mkLog(1, 1, 10)), mkLog(2, 1, 10)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec record
		var n int
		var reason decodeReason
		allocs := testing.AllocsPerRun(1, func() { rec, n, reason = decodeRecord(b) })
		if allocs != 0 {
			t.Fatalf("decodeRecord allocated %v times", allocs)
		}
		if reason != "" {
			return
		}
		if n < recHeader || n > len(b) || len(rec.ext)+len(rec.data)+recHeader != n {
			t.Fatalf("decoded n=%d ext=%d data=%d from %d bytes", n, len(rec.ext), len(rec.data), len(b))
		}
		// A valid record re-encodes to the same bytes.
		l := &raft.Log{Index: rec.index, Term: rec.term, Type: rec.typ, Extensions: rec.ext, Data: rec.data}
		re := appendRecord(nil, l)
		if rec.appendedAt == 0 && !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encoding differs")
		}
	})
}
