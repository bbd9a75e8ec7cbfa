package sql92

// op is the kind of an expression node.
type op uint8

const (
	opLit  op = iota // a literal: val
	opProp           // a property: name
	opNeg            // -kids[0]
	opNot            // NOT kids[0]
	opCast           // a property used as a boolean: kids[0] is an opProp
	opAnd            // kids[0] AND kids[1] AND ...
	opOr             // kids[0] OR kids[1] OR ...
	// Comparisons: kids[0] op kids[1].
	opEq
	opNe
	opGt
	opGe
	opLt
	opLe
	// kids[0] [NOT] BETWEEN kids[1] AND kids[2].
	opBetween
	opNotBetween
	// kids[0] [NOT] IN (list), kids[0] an opProp.
	opIn
	opNotIn
	// kids[0] [NOT] CONTAINS|STARTSWITH|ENDSWITH str.
	opContains
	opNotContains
	opStartsWith
	opNotStartsWith
	opEndsWith
	opNotEndsWith
	// kids[0] IS [NOT] NULL.
	opIsNull
	opIsNotNull
)

var opSymbol = [...]string{
	opEq: "=", opNe: "<>", opGt: ">", opGe: ">=", opLt: "<", opLe: "<=",
	opBetween: "BETWEEN", opNotBetween: "NOT BETWEEN",
	opIn: "IN", opNotIn: "NOT IN",
	opContains: "CONTAINS", opNotContains: "NOT CONTAINS",
	opStartsWith: "STARTSWITH", opNotStartsWith: "NOT STARTSWITH",
	opEndsWith: "ENDSWITH", opNotEndsWith: "NOT ENDSWITH",
	opIsNull: "IS NULL", opIsNotNull: "IS NOT NULL",
}

// node is one expression node. Nodes are immutable once Parse returns.
type node struct {
	op     op
	pos    int // byte offset of the node's first token
	height int // 1 for a leaf
	kids   []*node
	val    value               // opLit
	name   string              // opProp
	str    string              // opContains .. opNotEndsWith
	list   []string            // opIn, opNotIn, in source order
	set    map[string]struct{} // opIn, opNotIn with more than smallIn items
}

// smallIn is the longest IN list searched linearly; longer ones also get
// a set.
const smallIn = 8

// isBoolean reports whether n is what RocketMQ calls a BooleanExpression:
// a comparison, a logical operator, or the literals TRUE, FALSE, NULL.
// Only these (and properties, through a cast) may be operands of AND, OR,
// NOT and the whole expression.
func (n *node) isBoolean() bool {
	switch n.op {
	case opProp, opNeg:
		return false
	case opLit:
		return n.val.k == kBool || n.val.k == kNull
	}
	return true
}

func newNode(o op, pos int, kids ...*node) *node {
	n := &node{op: o, pos: pos, kids: kids, height: 1}
	for _, k := range kids {
		n.height = max(n.height, k.height+1)
	}
	return n
}
