package compat

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A JSON header is one flat object: a few numbers, a few strings and the
// extFields map of strings. encoding/json spends most of a send's decode
// time on reflection there, so decodeJSONHeader first tries this scanner,
// which accepts exactly that shape (the keys of jsonHeader, string or
// null values in extFields, valid UTF-8, no surrogate escapes) and gives
// up on anything else, which then goes to encoding/json. FuzzJSONHeader
// checks that whatever it accepts decodes as encoding/json decodes it.

type headerScanner struct {
	b []byte
	i int
}

func (s *headerScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat consumes c after optional white space.
func (s *headerScanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a JSON string (the opening quote included).
func (s *headerScanner) str() (string, bool) {
	if !s.eat('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !utf8.Valid(raw) {
				return "", false
			}
			return string(raw), true
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return "", false
		default:
			s.i++
		}
	}
	return "", false
}

// escaped finishes a string that has escapes, from its start.
func (s *headerScanner) escaped(start int) (string, bool) {
	out := make([]byte, 0, s.i-start+16)
	out = append(out, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return "", false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if s.i+4 > len(s.b) {
				return "", false
			}
			v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 16)
			if err != nil || utf16.IsSurrogate(rune(v)) {
				return "", false // surrogate pairs: left to encoding/json
			}
			s.i += 4
			out = utf8.AppendRune(out, rune(v))
		default:
			return "", false
		}
	}
	return "", false
}

// int32v reads a JSON integer that fits an int32.
func (s *headerScanner) int32v() (int32, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || s.b[digits] == '0' && s.i-digits > 1 {
		return 0, false // no digits, or a leading zero
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 32)
	return int32(v), err == nil
}

// null consumes a null literal if one is next.
func (s *headerScanner) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// ext reads the extFields object (or null).
func (s *headerScanner) ext() (map[string]string, bool) {
	if s.null() {
		return nil, true
	}
	if !s.eat('{') {
		return nil, false
	}
	m := map[string]string{}
	if s.eat('}') {
		return m, true
	}
	for {
		k, ok := s.str()
		if !ok || !s.eat(':') {
			return nil, false
		}
		if s.null() {
			return nil, false // encoding/json's treatment of null map values is left to it
		}
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		m[k] = v
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return m, true
		}
		return nil, false
	}
}

// fastJSONHeader decodes h if it has the plain shape; ok false means "ask
// encoding/json", not that h is malformed.
func fastJSONHeader(h []byte) (c *Command, ok bool) {
	s := &headerScanner{b: h}
	if !s.eat('{') {
		return nil, false
	}
	c = &Command{}
	if s.eat('}') {
		s.ws()
		return c, s.i == len(s.b)
	}
	for {
		key, ok := s.str()
		if !ok || !s.eat(':') {
			return nil, false
		}
		switch key {
		case "code":
			c.Code, ok = s.int32v()
		case "version":
			c.Version, ok = s.int32v()
		case "opaque":
			c.Opaque, ok = s.int32v()
		case "flag":
			c.Flag, ok = s.int32v()
		case "language":
			c.Language, ok = s.str()
		case "remark":
			if !s.null() {
				c.Remark, ok = s.str()
			}
		case "extFields":
			if c.Ext != nil {
				return nil, false // a second extFields merges in encoding/json
			}
			var m map[string]string
			if m, ok = s.ext(); ok {
				c.Ext = m
			}
		case "serializeTypeCurrentRPC":
			if !s.null() {
				_, ok = s.str()
			}
		default:
			return nil, false
		}
		if !ok {
			return nil, false
		}
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			break
		}
		return nil, false
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, false
	}
	if len(c.Ext) == 0 {
		c.Ext = nil
	}
	return c, true
}
