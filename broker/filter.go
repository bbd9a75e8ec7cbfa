package broker

import (
	"slices"
	"strings"

	"github.com/rmq-dev/rmq/fsm"
)

// TagFilter selects messages by tag, RocketMQ style: the consume queue
// stores each message's tag hash, so non-matching messages are skipped
// without reading them; matching hashes are then checked against the tag
// strings (hash collisions).
type TagFilter struct {
	tags   map[string]bool
	hashes map[uint32]bool
}

// ParseTagFilter parses "a || b"; empty or "*" returns nil (everything).
func ParseTagFilter(expr string) *TagFilter {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return nil
	}
	f := &TagFilter{tags: map[string]bool{}, hashes: map[uint32]bool{}}
	for _, t := range strings.Split(expr, "||") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if t == "*" {
			return nil
		}
		f.tags[t] = true
		f.hashes[fsm.TagHash(t)] = true
	}
	if len(f.tags) == 0 {
		return nil
	}
	return f
}

func (f *TagFilter) matchHash(h uint32) bool { return f == nil || f.hashes[h] }
func (f *TagFilter) match(tags string) bool  { return f == nil || f.tags[tags] }

// tagHashes returns the filter's tag hashes, sorted (nil: everything).
func (f *TagFilter) tagHashes() []uint32 {
	if f == nil {
		return nil
	}
	out := make([]uint32, 0, len(f.hashes))
	for h := range f.hashes {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}
