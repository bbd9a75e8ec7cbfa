package fsm

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// dedupTable is the window's index: key -> sequence number of its ring
// entry. A Go map of a million 20-byte keys costs ~56 bytes an entry and
// several cache misses per insert and delete; this open-addressing table
// (linear probing, at most half full, deletion by backward shift, no
// tombstones) holds 8 bytes a slot, 16 an entry, and needs no key
// comparison to move or delete a slot. A slot is
//
//	bits 63..32: tag = the key's hash, low 32 bits, with bit 31 set
//	             (its low bits are the slot the key hashes to, the home)
//	bits 31..0:  sequence number of the entry (its key is in the ring)
//
// and 0 when empty. A lookup compares tags, then the ring entry's key.
// Its layout depends on a random hash seed; Apply's results never do.
type dedupTable struct {
	slots  []uint64 // len is a power of two, or 0
	count  int
	s0, s1 uint64 // hash seed
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

func (t *dedupTable) mask() int { return len(t.slots) - 1 }

// find returns the sequence number of k's entry; entry maps one to the
// ring entry's key.
func (t *dedupTable) find(k *dedupKey, tag uint32, key func(seq uint32) *dedupKey) (uint32, bool) {
	if t.count == 0 {
		return 0, false
	}
	for i := int(tag) & t.mask(); ; i = (i + 1) & t.mask() {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if uint32(s>>32) == tag && *key(uint32(s)) == *k {
			return uint32(s), true
		}
	}
}

// insert adds (tag, seq); the key must not be in the table.
func (t *dedupTable) insert(tag, seq uint32) {
	if 2*(t.count+1) > len(t.slots) {
		t.resize(max(minTableSlots, 2*len(t.slots)))
	}
	t.place(uint64(tag)<<32 | uint64(seq))
	t.count++
}

func (t *dedupTable) place(s uint64) {
	i := int(s>>32) & t.mask()
	for t.slots[i] != 0 {
		i = (i + 1) & t.mask()
	}
	t.slots[i] = s
}

// remove deletes (tag, seq), which must be in the table, shifting back
// the slots after it that would no longer be found.
func (t *dedupTable) remove(tag, seq uint32) {
	want := uint64(tag)<<32 | uint64(seq)
	m := t.mask()
	i := int(tag) & m
	for t.slots[i] != want {
		i = (i + 1) & m
	}
	for j := i; ; {
		j = (j + 1) & m
		s := t.slots[j]
		if s == 0 {
			break
		}
		// s stays if its home is cyclically within (i, j].
		if h := int(s>>32) & m; i <= j && i < h && h <= j || i > j && (i < h || h <= j) {
			continue
		}
		t.slots[i] = s
		i = j
	}
	t.slots[i] = 0
	t.count--
	if len(t.slots) > minTableSlots && 8*t.count < len(t.slots) {
		t.resize(len(t.slots) / 2) // give memory back after a burst
	}
}

func (t *dedupTable) resize(n int) {
	old := t.slots
	t.slots = make([]uint64, n)
	for _, s := range old {
		if s != 0 {
			t.place(s)
		}
	}
}
