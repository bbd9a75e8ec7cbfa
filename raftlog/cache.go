package raftlog

import "github.com/hashicorp/raft"

// entryOverhead is what a cached entry costs beyond its Data and
// Extensions: the raft.Log struct and its slice headers, rounded up.
const entryOverhead = 128

// entryCache holds the most recently stored entries for GetLog, at most
// len(slots) of them and at most maxBytes of Data + Extensions +
// entryOverhead each. Entries arrive in index order, so the cached
// indexes are one contiguous run [lo, hi] and the oldest goes first when
// either bound is reached. An entry that does not follow hi (after a
// reset) starts a new run. The zero value caches nothing. Not safe for
// concurrent use: the Store guards it with mu.
type entryCache struct {
	slots    []*raft.Log // ring, by index % len(slots)
	lo, hi   uint64      // the cached run, valid when n > 0
	n        int
	bytes    int64
	maxBytes int64
}

func newEntryCache(entries int, maxBytes int64) entryCache {
	if entries <= 0 || maxBytes <= 0 {
		return entryCache{}
	}
	return entryCache{slots: make([]*raft.Log, entries), maxBytes: maxBytes}
}

func entryCost(l *raft.Log) int64 { return int64(len(l.Data)+len(l.Extensions)) + entryOverhead }

// add caches l, evicting the oldest entries to stay within both bounds.
// An entry larger than the whole budget is not cached.
func (c *entryCache) add(l *raft.Log) {
	if len(c.slots) == 0 {
		return
	}
	if c.n > 0 && l.Index != c.hi+1 {
		c.clear()
	}
	cost := entryCost(l)
	if cost > c.maxBytes {
		c.clear()
		return
	}
	for c.n > 0 && (c.n == len(c.slots) || c.bytes+cost > c.maxBytes) {
		c.dropOldest()
	}
	if c.n == 0 {
		c.lo = l.Index
	}
	c.slots[l.Index%uint64(len(c.slots))] = l
	c.hi = l.Index
	c.n++
	c.bytes += cost
}

// get returns the cached entry at index, or nil.
func (c *entryCache) get(index uint64) *raft.Log {
	if c.n == 0 || index < c.lo || index > c.hi {
		return nil
	}
	return c.slots[index%uint64(len(c.slots))]
}

// dropFrom forgets the entries at index and above (a suffix truncation).
func (c *entryCache) dropFrom(index uint64) {
	for c.n > 0 && c.hi >= index {
		i := c.hi % uint64(len(c.slots))
		c.bytes -= entryCost(c.slots[i])
		c.slots[i] = nil
		c.hi--
		c.n--
	}
}

func (c *entryCache) dropOldest() {
	i := c.lo % uint64(len(c.slots))
	c.bytes -= entryCost(c.slots[i])
	c.slots[i] = nil
	c.lo++
	c.n--
}

// clear forgets every entry.
func (c *entryCache) clear() {
	for c.n > 0 {
		c.dropOldest()
	}
	c.bytes = 0
}
