package acl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// AddrSet is a compiled white list of source addresses. Entries are
// CIDR prefixes ("10.0.0.0/8", "fd00::/8"), single addresses, "*" (any)
// and RocketMQ's IPv4 patterns, where each of the four parts is a number,
// "*", a range "a-b" or a set "{a,b,c}", and a trailing "*" stands for
// the missing parts: "192.168.0.*", "192.168.*", "10.1.1-10.*",
// "192.168.1.{5,7,9}". One string may hold several entries separated by
// commas (outside braces).
type AddrSet struct {
	any      bool
	prefixes []netip.Prefix
	patterns [][4]octetRange
	text     string
}

// octetRange is one part of an IPv4 pattern: a set of allowed values.
type octetRange struct {
	lo, hi uint8
	set    []uint8 // if non-nil, the allowed values instead of lo..hi
}

func (r octetRange) match(b uint8) bool {
	if r.set != nil {
		for _, v := range r.set {
			if v == b {
				return true
			}
		}
		return false
	}
	return r.lo <= b && b <= r.hi
}

// ParseAddrSet compiles white-list entries (each may hold a comma list).
// An empty list compiles to an empty set, which Empty reports.
func ParseAddrSet(entries ...string) (*AddrSet, error) {
	s := &AddrSet{text: strings.Join(entries, ",")}
	for _, e := range entries {
		for _, one := range splitOutsideBraces(e) {
			if err := s.add(strings.TrimSpace(one)); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func (s *AddrSet) add(e string) error {
	switch {
	case e == "":
		return nil
	case e == "*" || e == "*.*.*.*":
		s.any = true
		return nil
	case strings.Contains(e, "/"):
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return fmt.Errorf("acl: white list entry %q: %w", e, err)
		}
		s.prefixes = append(s.prefixes, p.Masked())
		return nil
	}
	if a, err := netip.ParseAddr(e); err == nil {
		a = a.Unmap()
		s.prefixes = append(s.prefixes, netip.PrefixFrom(a, a.BitLen()))
		return nil
	}
	pat, err := parseIPv4Pattern(e)
	if err != nil {
		return fmt.Errorf("acl: white list entry %q: %w", e, err)
	}
	s.patterns = append(s.patterns, pat)
	return nil
}

func parseIPv4Pattern(e string) ([4]octetRange, error) {
	var pat [4]octetRange
	parts := strings.Split(e, ".")
	if len(parts) > 4 {
		return pat, fmt.Errorf("more than four parts")
	}
	if len(parts) < 4 && parts[len(parts)-1] != "*" {
		return pat, fmt.Errorf("not an address, a CIDR prefix or an IPv4 pattern such as 192.168.0.*")
	}
	for i := range 4 {
		part := "*"
		if i < len(parts) {
			part = parts[i]
		}
		r, err := parseOctet(part)
		if err != nil {
			return pat, fmt.Errorf("part %d %q: %w", i+1, part, err)
		}
		pat[i] = r
	}
	return pat, nil
}

func parseOctet(p string) (octetRange, error) {
	switch {
	case p == "*":
		return octetRange{lo: 0, hi: 255}, nil
	case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
		var r octetRange
		for v := range strings.SplitSeq(p[1:len(p)-1], ",") {
			b, err := octet(strings.TrimSpace(v))
			if err != nil {
				return r, err
			}
			r.set = append(r.set, b)
		}
		return r, nil
	case strings.Contains(p, "-"):
		a, b, _ := strings.Cut(p, "-")
		lo, err := octet(a)
		if err != nil {
			return octetRange{}, err
		}
		hi, err := octet(b)
		if err != nil {
			return octetRange{}, err
		}
		if lo > hi {
			return octetRange{}, fmt.Errorf("range %d-%d is empty", lo, hi)
		}
		return octetRange{lo: lo, hi: hi}, nil
	}
	b, err := octet(p)
	return octetRange{lo: b, hi: b}, err
}

func octet(s string) (uint8, error) {
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number 0-255", s)
	}
	return uint8(n), nil
}

// splitOutsideBraces splits s at commas that are not inside {...}.
func splitOutsideBraces(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// Empty reports whether the set has no entries (a white list that is not
// configured, which restricts nothing).
func (s *AddrSet) Empty() bool {
	return s == nil || (!s.any && len(s.prefixes) == 0 && len(s.patterns) == 0)
}

// Contains reports whether a is in the set.
func (s *AddrSet) Contains(a netip.Addr) bool {
	if s == nil {
		return false
	}
	if s.any {
		return true
	}
	a = a.Unmap()
	for _, p := range s.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	if !a.Is4() {
		return false
	}
	b := a.As4()
	for _, pat := range s.patterns {
		if pat[0].match(b[0]) && pat[1].match(b[1]) && pat[2].match(b[2]) && pat[3].match(b[3]) {
			return true
		}
	}
	return false
}

// String is the set as written in the file.
func (s *AddrSet) String() string { return s.text }

// ParseRemote parses a connection's remote address ("host:port", or a
// bare address) for white-list checks.
func ParseRemote(remote string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(remote)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("acl: remote address %q: %w", remote, err)
	}
	return a.Unmap(), nil
}
