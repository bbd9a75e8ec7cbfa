package fsm

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// dedupTable is the window's index: key -> sequence number of its ring
// entry. A Go map of a million 20-byte keys cost ~56 bytes an entry and
// several cache misses per insert and delete (measured: 115 bytes per
// window entry with the ring); this open-addressing table (linear
// probing) holds 8 bytes a slot, 16 to 21 an entry. A slot is
//
//	bits 63..32: tag = the key's hash, low 32 bits, with bit 31 set
//	             (its low bits are the slot the key hashes to, the home)
//	bits 31..0:  sequence number of the entry (its key is in the ring)
//
// and 0 when empty. A lookup compares tags, then the ring entry's key.
// Eviction from the ring does not touch the table (that would cost a
// cache miss per message): a slot whose entry left the ring is stale, a
// lookup passes over it and an insert on its path takes it. A rehash,
// when live and stale slots fill three quarters of the table, drops the
// stale ones; live ones are at most half (else the table doubles) and at
// least an eighth (else it halves). Sequence numbers wrap at 2^32, far
// more inserts than any slot stays stale. The layout depends on a random
// hash seed; Apply's results never do.
type dedupTable struct {
	slots  []uint64 // len is a power of two, or 0
	used   int      // slots not empty (live or stale)
	s0, s1 uint64   // hash seed
}

const (
	tagBit        = 1 << 31
	minTableSlots = 64
)

func (t *dedupTable) hash(k *dedupKey) uint32 {
	if t.s0 == 0 {
		t.s0, t.s1 = rand.Uint64()|1, rand.Uint64()
	}
	a := binary.LittleEndian.Uint64(k.id[:8]) ^ t.s0
	b := binary.LittleEndian.Uint64(k.id[8:]) ^ t.s1 ^ uint64(k.topicID)<<17
	hi, lo := bits.Mul64(a, b)
	hi, lo = bits.Mul64(hi^lo^t.s1, 0x9E3779B97F4A7C15)
	return uint32(hi^lo) | tagBit
}

// live reports whether seq names an entry in the ring.
func (d *dedupState) live(seq uint32) bool { return seq-d.headSeq < uint32(d.n) }

// lookup returns the sequence number of k's entry (hit), or the slot an
// insert of k should take.
func (d *dedupState) lookup(k *dedupKey, tag uint32) (seq uint32, hit bool, free int) {
	t := &d.index
	if len(t.slots) == 0 {
		return 0, false, -1
	}
	m := len(t.slots) - 1
	free = -1
	for i := int(tag) & m; ; i = (i + 1) & m {
		s := t.slots[i]
		if s == 0 {
			if free < 0 {
				free = i
			}
			return 0, false, free
		}
		if !d.live(uint32(s)) {
			if free < 0 {
				free = i
			}
			continue
		}
		if uint32(s>>32) == tag && d.ring[(d.head+int(uint32(s)-d.headSeq))&(len(d.ring)-1)].key == *k {
			return uint32(s), true, 0
		}
	}
}

// index adds (tag, seq) for a key not in the window, at free (from
// lookup) unless the table is resized first. n counts seq already.
func (d *dedupState) insert(tag, seq uint32, free int) {
	t := &d.index
	switch c := len(t.slots); {
	case 2*d.n > c:
		d.rehash(max(minTableSlots, 2*c))
		free = -1
	case 4*(t.used+1) > 3*c:
		if 8*d.n < c && c > minTableSlots {
			c /= 2 // give memory back after a burst
		}
		d.rehash(c)
		free = -1
	}
	if free < 0 {
		free = t.find(tag)
	}
	if t.slots[free] == 0 {
		t.used++
	}
	t.slots[free] = uint64(tag)<<32 | uint64(seq)
}

// find returns the first empty slot from tag's home.
func (t *dedupTable) find(tag uint32) int {
	m := len(t.slots) - 1
	i := int(tag) & m
	for t.slots[i] != 0 {
		i = (i + 1) & m
	}
	return i
}

// rehash copies the live slots into a table of n slots.
func (d *dedupState) rehash(n int) {
	t := &d.index
	old := t.slots
	t.slots, t.used = make([]uint64, n), 0
	for _, s := range old {
		if s != 0 && d.live(uint32(s)) {
			t.slots[t.find(uint32(s>>32))] = s
			t.used++
		}
	}
}
