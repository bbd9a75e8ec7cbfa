package broker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/internal/sql92"
)

// TagFilter selects messages by tag, RocketMQ style: the consume queue
// stores each message's tag hash, so non-matching messages are skipped
// without reading them; matching hashes are then checked against the tag
// strings (hash collisions). A filter made by ParseSQLFilter selects by
// a SQL92 expression over the message's properties (and TAGS) instead:
// every unit is read, and the expression decides (internal/sql92).
type TagFilter struct {
	tags   map[string]bool
	hashes map[uint32]bool
	sql    *sql92.Expr
}

// ParseSQLFilter parses a RocketMQ SQL92 expression; a bad one is an
// ErrInvalidArgument naming the position and the reason.
func ParseSQLFilter(expr string) (*TagFilter, error) {
	e, err := sql92.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: SQL92 filter %q: %w", ErrInvalidArgument, expr, err)
	}
	return &TagFilter{sql: e}, nil
}

// matchMessage reports whether m passes the filter (tags or SQL92).
func (f *TagFilter) matchMessage(m *fsm.Message) bool {
	if f == nil {
		return true
	}
	if f.sql != nil {
		return f.sql.Match(func(name string) (string, bool) {
			if name == "TAGS" {
				return m.Tags, m.Tags != ""
			}
			v, ok := m.Properties[name]
			return v, ok
		})
	}
	return f.tags[m.Tags]
}

// readsBodies reports whether the filter needs each record read (SQL92).
func (f *TagFilter) readsBodies() bool { return f != nil && f.sql != nil }

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

func (f *TagFilter) matchHash(h uint32) bool { return f == nil || f.sql != nil || f.hashes[h] }

// tagHashes returns the filter's tag hashes, sorted (nil: everything).
func (f *TagFilter) tagHashes() []uint32 {
	if f == nil || f.sql != nil {
		return nil
	}
	out := make([]uint32, 0, len(f.hashes))
	for h := range f.hashes {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}
