package client

import (
	"strings"
)

// TagExpression is a parsed subscription: "*" (every message) or tags
// joined by "||", e.g. "TagA || TagB".
type TagExpression struct {
	all  bool
	tags map[string]bool
	src  string
}

// ParseTagExpression parses "*", "" (= "*") or "a || b || c".
func ParseTagExpression(s string) (TagExpression, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "*" {
		return TagExpression{all: true, src: "*"}, nil
	}
	te := TagExpression{tags: make(map[string]bool), src: s}
	for _, part := range strings.Split(s, "||") {
		t := strings.TrimSpace(part)
		if t == "" {
			return TagExpression{}, invalidf("tag expression %q has an empty tag", s)
		}
		if t == "*" {
			return TagExpression{all: true, src: "*"}, nil
		}
		te.tags[t] = true
	}
	return te, nil
}

// Match reports whether a message with tag passes the filter. The broker
// filters too; the client re-checks, as RocketMQ does after its hash filter.
func (te TagExpression) Match(tag string) bool { return te.all || te.tags[tag] }

// String is the expression as sent to the broker.
func (te TagExpression) String() string { return te.src }
