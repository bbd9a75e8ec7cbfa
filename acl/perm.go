package acl

import (
	"fmt"
	"strings"
)

// Perm is a set of permissions on a topic or a group, as RocketMQ's
// plain ACL writes them: "PUB", "SUB", "PUB|SUB" or "DENY". DENY wins
// over anything else in the same set.
type Perm uint8

// Permission bits.
const (
	Deny Perm = 1 << iota // explicitly refused
	Pub                   // send to a topic
	Sub                   // consume a topic, or be (or act for) a consumer group
)

// ParsePerm parses "PUB", "SUB", "PUB|SUB" (either order), "DENY" and
// "ANY" (PUB|SUB), case-insensitively, with spaces around the parts
// allowed. Anything else is an error: RocketMQ reads an unknown word as
// DENY; rmq refuses the file instead, so a typo cannot pass unnoticed.
func ParsePerm(s string) (Perm, error) {
	var p Perm
	if strings.TrimSpace(s) == "" {
		return 0, fmt.Errorf("acl: empty permission")
	}
	for part := range strings.SplitSeq(s, "|") {
		switch strings.ToUpper(strings.TrimSpace(part)) {
		case "PUB":
			p |= Pub
		case "SUB":
			p |= Sub
		case "ANY":
			p |= Pub | Sub
		case "DENY":
			p |= Deny
		default:
			return 0, fmt.Errorf("acl: permission %q: %q is not PUB, SUB or DENY", s, strings.TrimSpace(part))
		}
	}
	if p&Deny != 0 && p != Deny {
		return 0, fmt.Errorf("acl: permission %q: DENY cannot be combined with PUB or SUB", s)
	}
	return p, nil
}

// Allows reports whether p grants every bit of need (a DENY set grants
// nothing).
func (p Perm) Allows(need Perm) bool {
	return p&Deny == 0 && need != 0 && p&need == need
}

// String writes p as the config file does ("PUB|SUB", "DENY", "" for none).
func (p Perm) String() string {
	switch {
	case p&Deny != 0:
		return "DENY"
	case p&(Pub|Sub) == Pub|Sub:
		return "PUB|SUB"
	case p&Pub != 0:
		return "PUB"
	case p&Sub != 0:
		return "SUB"
	}
	return ""
}

// parseResourcePerm parses one topicPerms/groupPerms entry "name=PERM".
func parseResourcePerm(s string) (string, Perm, error) {
	name, perm, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return "", 0, fmt.Errorf("acl: %q is not name=PERM", s)
	}
	p, err := ParsePerm(perm)
	if err != nil {
		return "", 0, fmt.Errorf("acl: %q: %w", s, err)
	}
	return name, p, nil
}
