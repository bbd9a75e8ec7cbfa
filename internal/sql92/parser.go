package sql92

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Limits of Parse. An expression beyond one is refused with a
// *SyntaxError.
const (
	// MaxLength is the longest expression, in bytes.
	MaxLength = 8192
	// MaxDepth bounds, each on its own, the parentheses open at once,
	// the unary operators open at once, and the height of the parsed
	// tree (where a chain of AND, or of OR, is one level).
	MaxDepth = 64
	// MaxInList is the most strings in one IN or NOT IN list.
	MaxInList = 1000
)

// Expr is a parsed SQL92 filter. It is immutable and safe for concurrent
// use.
type Expr struct {
	root  *node
	props []string
	text  string
}

// Parse parses a RocketMQ SQL92 filter expression. Every refusal is a
// *SyntaxError with the byte offset of the fault.
func Parse(expr string) (*Expr, error) {
	return parse(expr, MaxLength)
}

func parse(expr string, maxLen int) (*Expr, error) {
	if len(expr) > maxLen {
		return nil, &SyntaxError{Pos: maxLen, Msg: fmt.Sprintf("expression is %d bytes, longer than the limit of %d", len(expr), maxLen)}
	}
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tEOF {
		return nil, &SyntaxError{Pos: 0, Msg: "empty expression"}
	}
	p := &parser{toks: toks, seen: map[string]bool{}}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	root, err := p.asBoolean(n)
	if err != nil {
		return nil, err
	}
	// RocketMQ's parser stops after the first complete expression and
	// ignores what follows; rmq refuses it.
	if t := p.tok(); t.kind != tEOF {
		if t.kind == tRParen {
			return nil, p.errAt(t.pos, "unexpected ')' without a matching '('")
		}
		return nil, p.errAt(t.pos, "expected AND, OR or end of expression but found %s", t.describe())
	}
	var b strings.Builder
	format(&b, root)
	return &Expr{root: root, props: p.props, text: b.String()}, nil
}

// String returns the expression in canonical form: keywords upper-case,
// single spaces, parentheses where they are needed or make the grouping
// plain (an AND inside an OR, a comparison used as an operand). Parsing it
// gives an equal expression with the same String. It may be longer than
// the source, and than MaxLength.
func (e *Expr) String() string { return e.text }

// Properties returns the names of the properties the expression reads, in
// order of first appearance, each once; the slice is the caller's. Match
// depends on these alone: messages that agree on them match alike, and
// one with none of them matches as Match(nil) does.
func (e *Expr) Properties() []string { return slices.Clone(e.props) }

type parser struct {
	toks   []token
	i      int
	parens int // open parentheses
	unary  int // open unary operators
	props  []string
	seen   map[string]bool
}

func (p *parser) tok() token { return p.toks[p.i] }

func (p *parser) next() {
	if p.i < len(p.toks)-1 {
		p.i++
	}
}

func (p *parser) errAt(pos int, format string, args ...any) error {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// expected reports that the current token is not what the grammar needs
// after the previous one.
func (p *parser) expected(what string) error {
	t := p.tok()
	if p.i == 0 {
		return p.errAt(t.pos, "expected %s but found %s", what, t.describe())
	}
	return p.errAt(t.pos, "expected %s after %s but found %s", what, p.toks[p.i-1].short(), t.describe())
}

// enter and leave bound the recursion of the parser: *open counts the
// parentheses (or unary operators) around the current token. Each is
// limited to MaxDepth on its own, not their sum, so that String, which
// adds parentheses only around a node's children, stays within the
// limits: on any path, both are at most the tree height.
func (p *parser) enter(open *int) error {
	*open++
	if *open > MaxDepth {
		return p.errAt(p.tok().pos, "expression nested deeper than %d levels", MaxDepth)
	}
	return nil
}

func (p *parser) leave(open *int) { *open-- }

func (p *parser) checkHeight(n *node) (*node, error) {
	if n.height > MaxDepth {
		return nil, p.errAt(n.pos, "expression nested deeper than %d levels", MaxDepth)
	}
	return n, nil
}

// asBoolean is RocketMQ's asBooleanExpression: operands of AND, OR, NOT and
// the whole expression must be conditions; a property becomes a boolean
// cast (FALSE when present, since properties are strings; unknown when
// missing).
func (p *parser) asBoolean(n *node) (*node, error) {
	if n.isBoolean() {
		return n, nil
	}
	if n.op == opProp {
		return p.checkHeight(newNode(opCast, n.pos, n))
	}
	return nil, p.errAt(n.pos, "expected a condition but found %s, which is not a boolean", describeNode(n))
}

// orExpression: andExpression (OR andExpression)*
func (p *parser) parseOr() (*node, error) { return p.parseLogic(opOr, tOr, p.parseAnd) }

// andExpression: equalityExpression (AND equalityExpression)*
func (p *parser) parseAnd() (*node, error) { return p.parseLogic(opAnd, tAnd, p.parseEquality) }

func (p *parser) parseLogic(o op, sep tokKind, operand func() (*node, error)) (*node, error) {
	first, err := operand()
	if err != nil || p.tok().kind != sep {
		return first, err
	}
	n := &node{op: o, pos: first.pos}
	for p.tok().kind == sep {
		p.next()
		right, err := operand()
		if err != nil {
			return nil, err
		}
		if first != nil {
			b, err := p.asBoolean(first)
			if err != nil {
				return nil, err
			}
			n.addFlat(b)
			first = nil
		}
		b, err := p.asBoolean(right)
		if err != nil {
			return nil, err
		}
		n.addFlat(b)
	}
	return p.checkHeight(n)
}

// addFlat appends k to an AND or OR node, merging k's operands if it is
// the same operator (parenthesised in the source): both are associative.
func (n *node) addFlat(k *node) {
	kids := []*node{k}
	if k.op == n.op {
		kids = k.kids
	}
	for _, c := range kids {
		n.kids = append(n.kids, c)
		n.height = max(n.height, c.height+1)
	}
}

// equalityExpression: comparisonExpression ( ('=' | '<>') comparisonExpression
// | IS NULL | IS NOT NULL )*
func (p *parser) parseEquality() (*node, error) {
	left, err := p.parseComparison()
	if err != nil {
		return nil, err
	}
	for {
		t := p.tok()
		var n *node
		switch t.kind {
		case tEq, tNe:
			p.next()
			right, err := p.parseComparison()
			if err != nil {
				return nil, err
			}
			if err := p.checkEqualOperands(t, left, right); err != nil {
				return nil, err
			}
			o := opEq
			if t.kind == tNe {
				o = opNe
			}
			n = newNode(o, left.pos, left, right)
		case tIs:
			p.next()
			o := opIsNull
			if p.tok().kind == tNot {
				o = opIsNotNull
				p.next()
			}
			if p.tok().kind != tNull {
				return nil, p.expected("NULL or NOT NULL")
			}
			p.next()
			n = newNode(o, left.pos, left)
		default:
			return left, nil
		}
		if left, err = p.checkHeight(n); err != nil {
			return nil, err
		}
	}
}

// comparisonExpression: unaryExpr ( ('>' | '>=' | '<' | '<=') unaryExpr
// | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) stringLiteral
// | [NOT] BETWEEN unaryExpr AND unaryExpr
// | [NOT] IN '(' stringLiteral (',' stringLiteral)* ')' )*
func (p *parser) parseComparison() (*node, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.tok()
		not := false
		if t.kind == tNot {
			p.next()
			switch p.tok().kind {
			case tContains, tStartsWith, tEndsWith, tBetween, tIn:
			default:
				return nil, p.expected("BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH")
			}
			not = true
			t = p.tok()
		}
		var n *node
		switch t.kind {
		case tGt, tGe, tLt, tLe:
			p.next()
			right, err := p.parseUnary()
			if err != nil {
				return nil, err
			}
			if err := p.checkNumericOperands(t.short(), left, right); err != nil {
				return nil, err
			}
			n = newNode(relational(t.kind), left.pos, left, right)
		case tContains, tStartsWith, tEndsWith:
			p.next()
			if p.tok().kind != tString {
				return nil, p.expected("a string literal")
			}
			n = newNode(textOp(t.kind, not), left.pos, left)
			n.str = p.tok().str
			p.next()
		case tBetween:
			if n, err = p.parseBetween(left, not); err != nil {
				return nil, err
			}
		case tIn:
			if n, err = p.parseIn(left, not); err != nil {
				return nil, err
			}
		default:
			return left, nil
		}
		if left, err = p.checkHeight(n); err != nil {
			return nil, err
		}
	}
}

func relational(k tokKind) op {
	switch k {
	case tGt:
		return opGt
	case tGe:
		return opGe
	case tLt:
		return opLt
	}
	return opLe
}

func textOp(k tokKind, not bool) op {
	switch {
	case k == tContains && not:
		return opNotContains
	case k == tContains:
		return opContains
	case k == tStartsWith && not:
		return opNotStartsWith
	case k == tStartsWith:
		return opStartsWith
	case not:
		return opNotEndsWith
	}
	return opEndsWith
}

func (p *parser) parseBetween(v *node, not bool) (*node, error) {
	p.next()
	lo, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	if p.tok().kind != tAnd {
		return nil, p.expected("AND")
	}
	p.next()
	hi, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	o, name := opBetween, "BETWEEN"
	if not {
		o, name = opNotBetween, "NOT BETWEEN"
	} else if lo.op == opLit && hi.op == opLit {
		// RocketMQ checks literal bounds (not negated ones: -5 is an
		// expression to it) and refuses a range that is empty.
		for _, b := range []*node{lo, hi} {
			if b.val.k == kNull {
				return nil, p.errAt(b.pos, "BETWEEN bounds cannot be NULL")
			}
		}
		c, ok := compare(hi.val, lo.val)
		if !ok {
			return nil, p.errAt(lo.pos, "BETWEEN bounds %s and %s cannot be compared", describeNode(lo), describeNode(hi))
		}
		if c < 0 {
			return nil, p.errAt(lo.pos, "BETWEEN lower bound %s is greater than upper bound %s", describeNode(lo), describeNode(hi))
		}
	}
	if err := p.checkNumericOperands(name, v, lo); err != nil {
		return nil, err
	}
	if err := p.checkNumericOperands(name, v, hi); err != nil {
		return nil, err
	}
	return newNode(o, v.pos, v, lo, hi), nil
}

func (p *parser) parseIn(v *node, not bool) (*node, error) {
	p.next()
	if p.tok().kind != tLParen {
		return nil, p.expected("'('")
	}
	p.next()
	var list []string
	for {
		t := p.tok()
		if t.kind != tString {
			return nil, p.expected("a string literal")
		}
		if len(list) == MaxInList {
			return nil, p.errAt(t.pos, "IN list longer than %d items", MaxInList)
		}
		list = append(list, t.str)
		p.next()
		if p.tok().kind == tComma {
			p.next()
			continue
		}
		if p.tok().kind != tRParen {
			return nil, p.expected("',' or ')'")
		}
		p.next()
		break
	}
	o, name := opIn, "IN"
	if not {
		o, name = opNotIn, "NOT IN"
	}
	if v.op != opProp {
		return nil, p.errAt(v.pos, "%s needs a property on its left but found %s", name, describeNode(v))
	}
	n := newNode(o, v.pos, v)
	n.list = list
	if len(list) > smallIn {
		n.set = make(map[string]struct{}, len(list))
		for _, s := range list {
			n.set[s] = struct{}{}
		}
	}
	return n, nil
}

// checkNumericOperands is RocketMQ's checkLessThanOperand for both sides
// of '>', '>=', '<', '<=' and BETWEEN: a literal must be a number, and a
// condition is refused. Properties and negations pass (and are checked,
// as strings, when a message is evaluated).
func (p *parser) checkNumericOperands(opName string, ns ...*node) error {
	for _, n := range ns {
		if n.op == opLit && (n.val.k == kInt32 || n.val.k == kInt64 || n.val.k == kDouble) {
			continue
		}
		if n.op == opLit || n.isBoolean() {
			return p.errAt(n.pos, "%s cannot be compared with %s, which takes numbers and properties", describeNode(n), opName)
		}
	}
	return nil
}

// checkEqualOperands is RocketMQ's checkEqualOperand and
// checkEqualOperandCompatability for '=' and '<>': no NULL literal, and a
// TRUE or FALSE literal on the left only against another boolean literal
// (when both sides are literals).
func (p *parser) checkEqualOperands(t token, left, right *node) error {
	for _, n := range []*node{left, right} {
		if n.op == opLit && n.val.k == kNull {
			hint := "IS NULL"
			if t.kind == tNe {
				hint = "IS NOT NULL"
			}
			return p.errAt(n.pos, "NULL cannot be compared with '%s'; use %s", t.text, hint)
		}
	}
	if left.op == opLit && right.op == opLit && left.isBoolean() && !right.isBoolean() {
		return p.errAt(left.pos, "%s cannot be compared with %s", describeNode(left), describeNode(right))
	}
	return nil
}

// unaryExpr: '+' unaryExpr | '-' unaryExpr | NOT unaryExpr | primaryExpr
func (p *parser) parseUnary() (*node, error) {
	t := p.tok()
	switch t.kind {
	case tPlus, tMinus, tNot:
	default:
		return p.parsePrimary()
	}
	if err := p.enter(&p.unary); err != nil {
		return nil, err
	}
	defer p.leave(&p.unary)
	p.next()
	kid, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	switch t.kind {
	case tPlus: // a no-op in RocketMQ, not kept
		return kid, nil
	case tMinus:
		return p.checkHeight(newNode(opNeg, t.pos, kid))
	}
	if kid, err = p.asBoolean(kid); err != nil {
		return nil, err
	}
	return p.checkHeight(newNode(opNot, t.pos, kid))
}

// primaryExpr: literal | identifier | '(' orExpression ')'
func (p *parser) parsePrimary() (*node, error) {
	t := p.tok()
	lit := func(v value) (*node, error) {
		p.next()
		n := newNode(opLit, t.pos)
		n.val = v
		return n, nil
	}
	switch t.kind {
	case tString:
		return lit(value{k: kString, s: t.str})
	case tTrue:
		return lit(vTrue)
	case tFalse:
		return lit(vFalse)
	case tNull:
		return lit(vNull)
	case tDecimal:
		// RocketMQ: a Long (the L suffix dropped), an Integer if it fits.
		i, err := strconv.ParseInt(strings.TrimRight(t.text, "lL"), 10, 64)
		if err != nil {
			return nil, p.errAt(t.pos, "integer %s is out of range of a 64-bit long", clip(t.text))
		}
		if i >= math.MinInt32 && i <= math.MaxInt32 {
			return lit(value{k: kInt32, i: i})
		}
		return lit(value{k: kInt64, i: i})
	case tFloat:
		f, err := strconv.ParseFloat(t.text, 64)
		if math.IsInf(f, 0) || (err != nil && f != 0) {
			return nil, p.errAt(t.pos, "number %s is out of range of a double", clip(t.text))
		}
		return lit(doubleVal(f))
	case tIdent:
		p.next()
		if !p.seen[t.text] {
			p.seen[t.text] = true
			p.props = append(p.props, t.text)
		}
		n := newNode(opProp, t.pos)
		n.name = t.text
		return n, nil
	case tLParen:
		if err := p.enter(&p.parens); err != nil {
			return nil, err
		}
		defer p.leave(&p.parens)
		p.next()
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.tok().kind != tRParen {
			return nil, p.expected(fmt.Sprintf("')' to close '(' at %d", t.pos))
		}
		p.next()
		return n, nil // parentheses are transparent, as in RocketMQ
	}
	return nil, p.expected("a value")
}
