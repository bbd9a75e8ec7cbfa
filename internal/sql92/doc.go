// Package sql92 parses and evaluates RocketMQ's SQL92 property filters
// (subscriptions with expression type SQL92), matching apache/rocketmq's
// filter module: the grammar of parser/SelectorParser.jj and the
// evaluation of expression/ComparisonExpression, LogicExpression,
// UnaryExpression and friends, applied as the broker does
// (ExpressionMessageFilter), to properties that are all strings.
//
// Parse runs once per subscription and returns an immutable *Expr; Match
// runs per message, reads only properties through a callback, never
// fails and does not allocate. String is a canonical form; Properties
// lists the names read. No goroutines, no I/O; all methods are safe for
// concurrent use.
//
// Grammar, loosest first (every binary level is left-associative):
//
//	expr    = and { OR and }
//	and     = eq { AND eq }
//	eq      = cmp { ("=" | "<>") cmp | IS [NOT] NULL }
//	cmp     = unary { (">" | ">=" | "<" | "<=") unary
//	        | [NOT] BETWEEN unary AND unary
//	        | [NOT] IN "(" string { "," string } ")"
//	        | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string }
//	unary   = ("+" | "-" | NOT) unary | primary
//	primary = string | long | double | TRUE | FALSE | NULL | ident | "(" expr ")"
//
// NOT is a unary operator and binds tighter than every comparison, as in
// RocketMQ: "NOT a = 'x'" is "(NOT a) = 'x'" (never TRUE); write
// "NOT (a = 'x')" or "a <> 'x'". String shows the grouping. Keywords are
// case-insensitive; identifiers are [A-Za-z_$][A-Za-z0-9_$]* and not a
// keyword (so "TAGS" is a property, a name with '.' or '-' cannot be
// written). Strings are single-quoted, a quote inside written twice. A
// long is 0 or [1-9][0-9]* with an optional L (no hex or octal: "0x1F" is
// refused); it is an Integer if it fits 32 bits, else a Long. A double is
// 1.5, 1., .5, 1e3 or 1.5E-3. Literals are never negative: "-5" is a
// negation. "--" starts a comment to the end of the line, "/*" one to
// "*/".
//
// Evaluation, three-valued. A missing property is null. AND, OR, NOT are
// Kleene logic (unknown AND FALSE = FALSE, unknown OR TRUE = TRUE, NOT
// unknown = unknown) and Match is true only for TRUE. Comparisons:
//
//   - "<", "<=", ">", ">=", BETWEEN: unknown if a side is null. A
//     property compared with a number literal converts as Java's
//     Integer.valueOf, Long.valueOf or Double.valueOf, to the type of the
//     literal: with a = "10", "a > 5" is TRUE; with a = "10.5", "a > 5"
//     is unknown (not an integer) and "a > 5.0" TRUE. Two properties
//     both convert to double; numbers widen int -> long -> double. A
//     string that does not convert makes the comparison unknown, and so
//     does a negated property ("-a": RocketMQ negates numbers only).
//     Parse refuses string and boolean literals and conditions as
//     operands: strings have no order.
//   - "=", "<>": strings compare exactly, byte for byte; a string against
//     a number converts as above, against TRUE or FALSE it is true when
//     it is "true" in any case (but TRUE left of a string is unknown, a
//     ClassCastException in RocketMQ). RocketMQ's null rule is asymmetric
//     and kept: "a = 'x'" is unknown when a is missing, but "'x' = a" is
//     FALSE, and "a = b" TRUE when both are missing. "<>" is NOT "=".
//   - IS [NOT] NULL is TRUE or FALSE, never unknown.
//   - [NOT] IN: unknown if the property is missing, else membership.
//   - CONTAINS, STARTSWITH, ENDSWITH and their NOT forms are two-valued:
//     FALSE (NOT forms too) when the operand is missing or not a string
//     or the search string is empty.
//   - A property used as a condition ("a AND b") is FALSE when present
//     (it is a string, not a boolean) and unknown when missing.
//
// Parse refuses what RocketMQ refuses, with a *SyntaxError at the byte
// offset of the fault: NULL as an operand of "=" or "<>", a TRUE/FALSE
// literal left of "=" against a non-boolean literal, IN on anything but a
// property, literal BETWEEN bounds that are NULL, incomparable or
// descending, a long beyond 64 bits, a double beyond its range, and an
// operand of AND, OR, NOT or the whole expression that is not a condition
// or property ("NOT 5").
//
// Deviations, where RocketMQ is ill-defined. A conversion that fails
// throws in RocketMQ, which then filters the message out whatever the
// rest of the expression says; here only that comparison is unknown, so
// "a > 5 OR b = 'x'" with a = "abc" still matches on b.
// RocketMQ ignores anything after the first complete expression
// ("a = 1 b = 2" is "a = 1"); Parse refuses it. RocketMQ refuses the
// double literal 0.0 (a check against Double.MIN_VALUE); it is accepted.
// Java's number parsing accepts non-ASCII digits; this accepts ASCII only.
//
// Limits: MaxLength bytes of source, MaxDepth levels of nesting, and
// MaxInList strings per IN list.
package sql92
