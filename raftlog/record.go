package raftlog

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/hashicorp/raft"
)

// Record layout (little endian), see doc.go:
//
//	u32 length | u32 crc32c | u64 index | u64 term | u8 type | i64 appendedAt | u32 extLen | ext | data
//
// length counts the bytes after the crc field; the crc covers exactly them.
const (
	recPrefix = 8                    // length + crc
	recFixed  = 8 + 8 + 1 + 8 + 4    // index..extLen
	recHeader = recPrefix + recFixed // bytes before ext
	// MaxRecordSize bounds one encoded record (header + Extensions + Data).
	MaxRecordSize = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is a decoded view into an encoded buffer; ext and data alias it.
type record struct {
	index, term uint64
	typ         raft.LogType
	appendedAt  int64
	ext, data   []byte
}

func recordSize(l *raft.Log) int { return recHeader + len(l.Extensions) + len(l.Data) }

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// appendRecord appends the encoding of l to dst.
func appendRecord(dst []byte, l *raft.Log) []byte {
	start := len(dst)
	n := recordSize(l)
	dst = append(dst, make([]byte, recHeader)...)
	b := dst[start:]
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(n-recPrefix))
	le.PutUint64(b[8:], l.Index)
	le.PutUint64(b[16:], l.Term)
	b[24] = byte(l.Type)
	le.PutUint64(b[25:], uint64(unixNano(l.AppendedAt)))
	le.PutUint32(b[33:], uint32(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	dst = append(dst, l.Data...)
	le.PutUint32(dst[start+4:], crc32.Checksum(dst[start+recPrefix:], castagnoli))
	return dst
}

// decodeReason explains why decodeRecord rejected its input; "" means ok.
type decodeReason string

const (
	reasonShort  decodeReason = "truncated record"
	reasonLength decodeReason = "bad record length"
	reasonCRC    decodeReason = "crc mismatch"
	reasonExtLen decodeReason = "bad extension length"
)

// decodeRecord decodes the record at the start of b. It never allocates:
// ext and data alias b. n is the encoded size on success.
func decodeRecord(b []byte) (r record, n int, reason decodeReason) {
	if len(b) < recPrefix {
		return r, 0, reasonShort
	}
	le := binary.LittleEndian
	body := uint64(le.Uint32(b[0:]))
	if body < recFixed || body > MaxRecordSize-recPrefix {
		return r, 0, reasonLength
	}
	if uint64(len(b)) < recPrefix+body {
		return r, 0, reasonShort
	}
	n = recPrefix + int(body)
	if crc32.Checksum(b[recPrefix:n], castagnoli) != le.Uint32(b[4:]) {
		return r, 0, reasonCRC
	}
	extLen := uint64(le.Uint32(b[33:]))
	if extLen > body-recFixed {
		return r, 0, reasonExtLen
	}
	r.index = le.Uint64(b[8:])
	r.term = le.Uint64(b[16:])
	r.typ = raft.LogType(b[24])
	r.appendedAt = int64(le.Uint64(b[25:]))
	r.ext = b[recHeader : recHeader+int(extLen)]
	r.data = b[recHeader+int(extLen) : n]
	return r, n, ""
}

// toLog copies r into out; the copies do not alias the decode buffer.
func (r *record) toLog(out *raft.Log) {
	out.Index = r.index
	out.Term = r.term
	out.Type = r.typ
	out.AppendedAt = fromUnixNano(r.appendedAt)
	out.Extensions = nil
	if len(r.ext) > 0 {
		out.Extensions = append([]byte(nil), r.ext...)
	}
	out.Data = nil
	if len(r.data) > 0 {
		out.Data = append([]byte(nil), r.data...)
	}
}
