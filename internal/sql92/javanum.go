package sql92

import (
	"math"
	"strconv"
)

// Conversions of a property's string, as RocketMQ's evaluator makes them
// with the Java library. They do not allocate.

// parseJavaInt is Java's Integer.valueOf (bits 32) or Long.valueOf
// (bits 64): an optional sign then decimal digits, no spaces, in range.
// Java also accepts non-ASCII Unicode digits; this accepts ASCII only.
func parseJavaInt(s string, bits int) (int64, bool) {
	if s == "" {
		return 0, false
	}
	neg := false
	i := 0
	if s[0] == '-' || s[0] == '+' {
		if len(s) == 1 {
			return 0, false
		}
		neg = s[0] == '-'
		i = 1
	}
	limit := uint64(1)<<(bits-1) - 1 // magnitude of the largest value
	if neg {
		limit++
	}
	var acc uint64
	for ; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) || acc > limit/10 {
			return 0, false
		}
		acc = acc*10 + uint64(c-'0')
		if acc > limit {
			return 0, false
		}
	}
	if neg {
		return -int64(acc), true // wraps to -(2^63) for acc = 2^63
	}
	return int64(acc), true
}

// parseJavaDouble is Java's Double.valueOf: the string trimmed of
// characters <= ' ', an optional sign, then "NaN", "Infinity", a decimal
// (digits with an optional point and exponent) or a hexadecimal
// ("0x1.8p3", exponent required) number, with an optional f, F, d or D
// suffix. Out-of-range values become ±Inf or 0, as in Java.
func parseJavaDouble(s string) (float64, bool) {
	for len(s) > 0 && s[0] <= ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] <= ' ' {
		s = s[:len(s)-1]
	}
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var f float64
	switch {
	case s == "NaN":
		return math.NaN(), true
	case s == "Infinity":
		f = math.Inf(1)
	default:
		core, ok := javaFloatCore(s)
		if !ok {
			return 0, false
		}
		// The syntax is checked; an error can only be ErrRange, where
		// f is already Java's ±Inf or 0.
		f, _ = strconv.ParseFloat(core, 64)
	}
	if neg {
		f = -f
	}
	return f, true
}

// javaFloatCore checks the syntax of an unsigned Java floating-point
// string and returns it without its type suffix, in a form
// strconv.ParseFloat reads the same way.
func javaFloatCore(s string) (string, bool) {
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'f', 'F', 'd', 'D':
			s = s[:n-1]
		}
	}
	hex := len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')
	i := 0
	digit := isDigit
	if hex {
		i = 2
		digit = isHexDigit
	}
	digits := 0
	for i < len(s) && digit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && digit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return "", false
	}
	if hex {
		if i == len(s) || (s[i] != 'p' && s[i] != 'P') {
			return "", false
		}
	} else if i == len(s) {
		return s, true
	} else if s[i] != 'e' && s[i] != 'E' {
		return "", false
	}
	i++
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	exp := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == exp || i != len(s) {
		return "", false
	}
	return s, true
}

func isHexDigit(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// javaBooleanValueOf is Java's Boolean.valueOf(String): true for "true"
// in any case, false for everything else.
func javaBooleanValueOf(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := range 4 {
		if s[i]|0x20 != "true"[i] {
			return false
		}
	}
	return true
}
