package sql92

import (
	"cmp"
	"math"
	"strings"
)

// kind is the type of a value, as the Java classes RocketMQ's evaluator
// sees: null, Boolean, Integer, Long, Double, String.
type kind uint8

const (
	kNull kind = iota
	kBool
	kInt32 // a literal that fits an int (Java Integer)
	kInt64 // a literal beyond int (Java Long)
	kDouble
	kString
)

// value is an operand of a comparison: a literal, a property's string,
// or a condition used as an operand (kBool, or kNull for unknown). It is
// kept to four words, as Match passes values around by copy.
type value struct {
	k kind
	i int64 // kInt32, kInt64; kBool: 0 or 1; kDouble: the float64 bits
	s string
}

func doubleVal(f float64) value { return value{k: kDouble, i: int64(math.Float64bits(f))} }

func (v value) bool() bool { return v.i != 0 }

func (v value) double() float64 { return math.Float64frombits(uint64(v.i)) }

var (
	vNull  = value{}
	vTrue  = value{k: kBool, i: 1}
	vFalse = value{k: kBool}
)

// tri is a truth value of three-valued logic. Conditions evaluate to a
// tri; only an operand of a comparison is a value.
type tri uint8

const (
	unknown tri = iota
	isFalse
	isTrue
)

func triOf(b bool) tri {
	if b {
		return isTrue
	}
	return isFalse
}

func noProps(string) (string, bool) { return "", false }

// Match evaluates the expression over a message's properties and reports
// whether it is TRUE; FALSE and unknown both give false. props returns a
// property's value and whether the message has it (nil means no
// properties). Match never fails: a missing property or a value that does
// not convert makes its comparison unknown (see the package comment).
// Match itself does not allocate; it is safe for concurrent use.
func (e *Expr) Match(props func(name string) (string, bool)) bool {
	if props == nil {
		props = noProps
	}
	return cond(e.root, props) == isTrue
}

// cond evaluates a condition: a node for which isBoolean holds, or a cast.
func cond(n *node, props func(string) (string, bool)) tri {
	switch n.op {
	case opLit:
		if n.val.k == kBool {
			return triOf(n.val.bool())
		}
		return unknown // NULL
	case opCast:
		// RocketMQ's boolean cast: only a Boolean is itself, and a
		// property is always a string, so a present one is FALSE.
		if _, ok := props(n.kids[0].name); ok {
			return isFalse
		}
		return unknown
	case opNot:
		return not3(cond(n.kids[0], props))
	case opAnd:
		r := isTrue
		for _, k := range n.kids {
			switch cond(k, props) {
			case isFalse:
				return isFalse
			case unknown:
				r = unknown
			}
		}
		return r
	case opOr:
		r := isFalse
		for _, k := range n.kids {
			switch cond(k, props) {
			case isTrue:
				return isTrue
			case unknown:
				r = unknown
			}
		}
		return r
	case opEq:
		return equal(operand(n.kids[0], props), operand(n.kids[1], props))
	case opNe:
		return not3(equal(operand(n.kids[0], props), operand(n.kids[1], props)))
	case opGt, opGe, opLt, opLe:
		return relate(n.op, operand(n.kids[0], props), operand(n.kids[1], props))
	case opBetween, opNotBetween:
		v := operand(n.kids[0], props)
		lo, hi := operand(n.kids[1], props), operand(n.kids[2], props)
		if n.op == opBetween {
			return and3(relate(opGe, v, lo), relate(opLe, v, hi))
		}
		return or3(relate(opLt, v, lo), relate(opGt, v, hi))
	case opIn, opNotIn:
		s, ok := props(n.kids[0].name)
		if !ok {
			return unknown
		}
		return triOf(n.inList(s) != (n.op == opNotIn))
	case opContains, opNotContains, opStartsWith, opNotStartsWith, opEndsWith, opNotEndsWith:
		return n.evalText(operand(n.kids[0], props))
	case opIsNull:
		return triOf(operand(n.kids[0], props).k == kNull)
	case opIsNotNull:
		return triOf(operand(n.kids[0], props).k != kNull)
	}
	return unknown
}

// operand evaluates an operand of a comparison.
func operand(n *node, props func(string) (string, bool)) value {
	switch n.op {
	case opLit:
		return n.val
	case opProp:
		if s, ok := props(n.name); ok {
			return value{k: kString, s: s}
		}
		return vNull
	case opNeg:
		return negate(operand(n.kids[0], props))
	}
	switch cond(n, props) {
	case isTrue:
		return vTrue
	case isFalse:
		return vFalse
	}
	return vNull
}

func (n *node) inList(s string) bool {
	if n.set != nil {
		_, ok := n.set[s]
		return ok
	}
	for _, x := range n.list {
		if x == s {
			return true
		}
	}
	return false
}

// evalText is RocketMQ's CONTAINS family: two-valued, FALSE (for the NOT
// forms too) when the search string is empty or the operand is not a
// string, a missing property included.
func (n *node) evalText(v value) tri {
	if n.str == "" || v.k != kString {
		return isFalse
	}
	var r bool
	switch n.op {
	case opContains, opNotContains:
		r = strings.Contains(v.s, n.str)
	case opStartsWith, opNotStartsWith:
		r = strings.HasPrefix(v.s, n.str)
	default:
		r = strings.HasSuffix(v.s, n.str)
	}
	negated := n.op == opNotContains || n.op == opNotStartsWith || n.op == opNotEndsWith
	return triOf(r != negated)
}

func not3(t tri) tri {
	switch t {
	case isTrue:
		return isFalse
	case isFalse:
		return isTrue
	}
	return unknown
}

func and3(a, b tri) tri {
	if a == isFalse || b == isFalse {
		return isFalse
	}
	if a == unknown || b == unknown {
		return unknown
	}
	return isTrue
}

func or3(a, b tri) tri {
	if a == isTrue || b == isTrue {
		return isTrue
	}
	if a == unknown || b == unknown {
		return unknown
	}
	return isFalse
}

// negate is RocketMQ's unary minus: numbers only (with Java's wrap-around),
// anything else (a property's string included) is null.
func negate(v value) value {
	switch v.k {
	case kInt32:
		return value{k: kInt32, i: int64(-int32(v.i))}
	case kInt64:
		return value{k: kInt64, i: -v.i}
	case kDouble:
		return doubleVal(-v.double())
	}
	return vNull
}

// equal is RocketMQ's '=' (ComparisonExpression.doCreateEqual), whose
// null handling is not symmetric: null = null is TRUE, null = x unknown,
// x = null FALSE. Otherwise the values are compared after conversion
// (compare); a failed conversion is unknown.
func equal(l, r value) tri {
	switch {
	case l.k == kNull && r.k == kNull:
		return isTrue
	case l.k == kNull:
		return unknown
	case r.k == kNull:
		return isFalse
	case l.k == kString && r.k == kString:
		return triOf(l.s == r.s)
	}
	c, ok := compare(l, r)
	if !ok {
		return unknown
	}
	return triOf(c == 0)
}

// relate is RocketMQ's '>', '>=', '<', '<=': unknown if a side is null;
// two strings (two properties) both convert to double; otherwise compare.
func relate(o op, l, r value) tri {
	if l.k == kNull || r.k == kNull {
		return unknown
	}
	var c int
	if l.k == kString && r.k == kString {
		lf, ok1 := parseJavaDouble(l.s)
		rf, ok2 := parseJavaDouble(r.s)
		if !ok1 || !ok2 {
			return unknown
		}
		c = compareJavaDouble(lf, rf)
	} else {
		var ok bool
		if c, ok = compare(l, r); !ok {
			return unknown
		}
	}
	switch o {
	case opGt:
		return triOf(c > 0)
	case opGe:
		return triOf(c >= 0)
	case opLt:
		return triOf(c < 0)
	}
	return triOf(c <= 0)
}

// compare is RocketMQ's ComparisonExpression.__compare with string
// conversion on (as SelectorParser.parse always sets it), for non-null
// values. Values of one kind compare naturally; a narrower number widens
// to the other's type (int -> long -> double); a string converts to the
// type of the other side with Java's Integer.valueOf, Long.valueOf,
// Double.valueOf or Boolean.valueOf. ok is false where Java throws: a
// string that does not parse, and a Boolean on the left of a string
// (a ClassCastException in RocketMQ). Other mixes (a boolean and a
// number) compare as "less" (-1), as in RocketMQ.
func compare(l, r value) (c int, ok bool) {
	if l.k == r.k {
		switch l.k {
		case kBool:
			return compareBool(l.bool(), r.bool()), true
		case kInt32, kInt64:
			return cmp.Compare(l.i, r.i), true
		case kDouble:
			return compareJavaDouble(l.double(), r.double()), true
		case kString:
			return strings.Compare(l.s, r.s), true
		}
		return 0, true
	}
	switch l.k {
	case kBool:
		if r.k == kString {
			return 0, false
		}
	case kInt32, kInt64:
		switch r.k {
		case kInt32, kInt64:
			return cmp.Compare(l.i, r.i), true
		case kDouble:
			return compareJavaDouble(float64(l.i), r.double()), true
		case kString:
			bits := 32
			if l.k == kInt64 {
				bits = 64
			}
			i, ok := parseJavaInt(r.s, bits)
			return cmp.Compare(l.i, i), ok
		}
	case kDouble:
		switch r.k {
		case kInt32, kInt64:
			return compareJavaDouble(l.double(), float64(r.i)), true
		case kString:
			f, ok := parseJavaDouble(r.s)
			return compareJavaDouble(l.double(), f), ok
		}
	case kString:
		switch r.k {
		case kBool:
			return compareBool(javaBooleanValueOf(l.s), r.bool()), true
		case kInt32, kInt64:
			bits := 32
			if r.k == kInt64 {
				bits = 64
			}
			i, ok := parseJavaInt(l.s, bits)
			return cmp.Compare(i, r.i), ok
		case kDouble:
			f, ok := parseJavaDouble(l.s)
			return compareJavaDouble(f, r.double()), ok
		}
	}
	return -1, true
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// compareJavaDouble is Java's Double.compare: a total order with -0.0
// below 0.0 and NaN above +Inf and equal to itself.
func compareJavaDouble(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	ab, bb := javaDoubleBits(a), javaDoubleBits(b)
	return cmp.Compare(ab, bb)
}

func javaDoubleBits(f float64) int64 {
	if f != f {
		return 0x7ff8000000000000
	}
	return int64(math.Float64bits(f))
}
