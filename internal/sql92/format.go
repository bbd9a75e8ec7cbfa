package sql92

import (
	"strconv"
	"strings"
)

// format writes n in canonical form (see Expr.String).
func format(b *strings.Builder, n *node) {
	switch n.op {
	case opLit:
		formatValue(b, n.val)
	case opProp:
		b.WriteString(n.name)
	case opCast:
		format(b, n.kids[0])
	case opNeg:
		b.WriteByte('-')
		if k := n.kids[0]; k.op == opLit || k.op == opProp {
			format(b, k)
		} else {
			paren(b, k)
		}
	case opNot:
		b.WriteString("NOT ")
		if k := n.kids[0]; k.op == opLit || k.op == opProp || k.op == opCast {
			format(b, k)
		} else {
			paren(b, k)
		}
	case opAnd, opOr:
		sep := " AND "
		if n.op == opOr {
			sep = " OR "
		}
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(sep)
			}
			if k.op == opAnd || k.op == opOr {
				paren(b, k)
			} else {
				format(b, k)
			}
		}
	case opEq, opNe, opGt, opGe, opLt, opLe:
		fmtOperand(b, n.kids[0])
		b.WriteString(" " + opSymbol[n.op] + " ")
		fmtOperand(b, n.kids[1])
	case opBetween, opNotBetween:
		fmtOperand(b, n.kids[0])
		b.WriteString(" " + opSymbol[n.op] + " ")
		fmtOperand(b, n.kids[1])
		b.WriteString(" AND ")
		fmtOperand(b, n.kids[2])
	case opIn, opNotIn:
		fmtOperand(b, n.kids[0])
		b.WriteString(" " + opSymbol[n.op] + " (")
		for i, s := range n.list {
			if i > 0 {
				b.WriteString(", ")
			}
			quote(b, s)
		}
		b.WriteByte(')')
	case opContains, opNotContains, opStartsWith, opNotStartsWith, opEndsWith, opNotEndsWith:
		fmtOperand(b, n.kids[0])
		b.WriteString(" " + opSymbol[n.op] + " ")
		quote(b, n.str)
	case opIsNull, opIsNotNull:
		fmtOperand(b, n.kids[0])
		b.WriteString(" " + opSymbol[n.op])
	}
}

// fmtOperand writes an operand of a comparison: a literal, property or
// negation as it is, anything else (a condition) in parentheses.
func fmtOperand(b *strings.Builder, n *node) {
	if n.op == opLit || n.op == opProp || n.op == opNeg {
		format(b, n)
		return
	}
	paren(b, n)
}

func paren(b *strings.Builder, n *node) {
	b.WriteByte('(')
	format(b, n)
	b.WriteByte(')')
}

func formatValue(b *strings.Builder, v value) {
	switch v.k {
	case kNull:
		b.WriteString("NULL")
	case kBool:
		if v.bool() {
			b.WriteString("TRUE")
		} else {
			b.WriteString("FALSE")
		}
	case kInt32, kInt64:
		b.WriteString(strconv.FormatInt(v.i, 10))
	case kDouble:
		s := strconv.FormatFloat(v.double(), 'g', -1, 64)
		b.WriteString(s)
		if !strings.ContainsAny(s, ".eIN") {
			b.WriteString(".0") // stay a floating-point literal
		}
	case kString:
		quote(b, v.s)
	}
}

func quote(b *strings.Builder, s string) {
	b.WriteByte('\'')
	b.WriteString(strings.ReplaceAll(s, "'", "''"))
	b.WriteByte('\'')
}

// describeNode names a node in an error message.
func describeNode(n *node) string {
	var b strings.Builder
	format(&b, n)
	s := clip(b.String())
	if n.op == opLit {
		switch n.val.k {
		case kString:
			return "string " + s
		case kInt32, kInt64, kDouble:
			return "number " + s
		}
		return s
	}
	if n.op == opProp {
		return "property " + s
	}
	return "(" + s + ")"
}
