package sql92

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

type props map[string]string

func (p props) get(name string) (string, bool) {
	v, ok := p[name]
	return v, ok
}

// truth evaluates e over p as three-valued logic: "TRUE", "FALSE" or "NULL"
// (unknown), so that the tests see what Match folds into false.
func truth(e *Expr, p props) string {
	switch cond(e.root, p.get) {
	case isTrue:
		return "TRUE"
	case isFalse:
		return "FALSE"
	}
	return "NULL"
}

// mustRoundTrip checks that the canonical form parses back to itself and
// returns the re-parsed expression.
func mustRoundTrip(t *testing.T, e *Expr) *Expr {
	t.Helper()
	e2, err := parse(e.String(), math.MaxInt)
	if err != nil {
		t.Fatalf("String() %q does not parse: %v", e.String(), err)
	}
	if e2.String() != e.String() {
		t.Fatalf("String() %q re-parses to %q", e.String(), e2.String())
	}
	return e2
}

func TestEval(t *testing.T) {
	big := "'v0','v1','v2','v3','v4','v5','v6','v7','v8','v9'"
	cases := []struct {
		name  string
		expr  string
		props props
		want  string // TRUE, FALSE or NULL
		canon string // expected String(), if set
	}{
		// = and <> on strings, and RocketMQ's asymmetric NULL rule.
		{"eq string", "a = 'x'", props{"a": "x"}, "TRUE", "a = 'x'"},
		{"eq string differs", "a = 'x'", props{"a": "y"}, "FALSE", ""},
		{"eq missing", "a = 'x'", props{}, "NULL", ""},
		{"eq literal left missing", "'x' = a", props{}, "FALSE", ""},
		{"eq two missing", "a = b", props{}, "TRUE", ""},
		{"eq right missing", "a = b", props{"a": "1"}, "FALSE", ""},
		{"eq is case-sensitive", "a = 'X'", props{"a": "x"}, "FALSE", ""},
		{"ne", "a <> 'x'", props{"a": "y"}, "TRUE", "a <> 'x'"},
		{"ne equal", "a <> 'x'", props{"a": "x"}, "FALSE", ""},
		{"ne missing", "a <> 'x'", props{}, "NULL", ""},
		{"ne literal left missing", "'x' <> a", props{}, "TRUE", ""},
		{"eq empty string present", "a = ''", props{"a": ""}, "TRUE", ""},
		// Numbers: the property converts to the literal's Java type.
		{"gt int", "a > 5", props{"a": "10"}, "TRUE", "a > 5"},
		{"gt int false", "a > 5", props{"a": "3"}, "FALSE", ""},
		{"gt int of decimal string", "a > 5", props{"a": "10.5"}, "NULL", ""},
		{"gt double", "a > 5.0", props{"a": "10.5"}, "TRUE", "a > 5.0"},
		{"ge equal", "a >= 5", props{"a": "5"}, "TRUE", ""},
		{"lt negative", "a < 5", props{"a": "-7"}, "TRUE", ""},
		{"le negated literal", "a <= -5", props{"a": "-5"}, "TRUE", "a <= -5"},
		{"gt not a number", "a > 5", props{"a": "abc"}, "NULL", ""},
		{"gt missing", "a > 5", props{}, "NULL", ""},
		{"int does not trim", "a > 5", props{"a": " 10"}, "NULL", ""},
		{"int plus sign", "a > 5", props{"a": "+10"}, "TRUE", ""},
		{"double trims", "a > 5.0", props{"a": " 10 "}, "TRUE", ""},
		{"int literal, long value", "a > 5", props{"a": "3000000000"}, "NULL", ""},
		{"long literal", "a > 2147483648", props{"a": "3000000000"}, "TRUE", ""},
		{"long max", "a = 9223372036854775807", props{"a": "9223372036854775807"}, "TRUE", ""},
		{"long min via negation", "a = -9223372036854775807", props{"a": "-9223372036854775807"}, "TRUE", ""},
		{"int min is a long", "a = -2147483648", props{"a": "-2147483648"}, "TRUE", ""},
		{"eq int", "a = 5", props{"a": "5"}, "TRUE", ""},
		{"eq int of 5.0", "a = 5", props{"a": "5.0"}, "NULL", ""},
		{"eq double of 5", "a = 5.0", props{"a": "5"}, "TRUE", ""},
		{"eq string of 5.0", "a = '5'", props{"a": "5.0"}, "FALSE", ""},
		{"L suffix", "a = 5L", props{"a": "5"}, "TRUE", "a = 5"},
		{"exponent literal", "a = 1.5E3", props{"a": "1500"}, "TRUE", "a = 1500.0"},
		{"leading point", "a = .5", props{"a": "0.5"}, "TRUE", "a = 0.5"},
		{"trailing point", "a = 5.", props{"a": "5"}, "TRUE", "a = 5.0"},
		{"big exponent", "a < 1e300", props{"a": "1e299"}, "TRUE", "a < 1e+300"},
		{"double exponent value", "a >= 1e3", props{"a": "1E3"}, "TRUE", ""},
		{"java NaN is greatest", "a > 0.5", props{"a": "NaN"}, "TRUE", ""},
		{"java -Infinity", "a < 0.5", props{"a": "-Infinity"}, "TRUE", ""},
		{"java float suffix", "a > 1.0", props{"a": "1.5f"}, "TRUE", ""},
		{"java hex double", "a = 16.0", props{"a": "0x1p4"}, "TRUE", ""},
		{"two properties compare as doubles", "a > b", props{"a": "20", "b": "10.5"}, "TRUE", ""},
		{"two properties, one not a number", "a > b", props{"a": "x", "b": "10"}, "NULL", ""},
		{"double negation", "a = -(-3)", props{"a": "3"}, "TRUE", "a = -(-3)"},
		{"unary plus dropped", "a = +5", props{"a": "5"}, "TRUE", "a = 5"},
		{"negated property is null", "-a = -5", props{"a": "5"}, "NULL", "-a = -5"},
		{"negation accepted, string is null", "a > -'x'", props{"a": "1"}, "NULL", ""},
		// Booleans.
		{"eq TRUE from string", "a = TRUE", props{"a": "TRUE"}, "TRUE", ""},
		{"eq TRUE not true", "a = TRUE", props{"a": "yes"}, "FALSE", ""},
		{"eq FALSE any other", "a = FALSE", props{"a": "yes"}, "TRUE", ""},
		{"TRUE left of property", "TRUE = a", props{"a": "true"}, "NULL", ""},
		{"condition compared", "(a = 1) = TRUE", props{"a": "1"}, "TRUE", "(a = 1) = TRUE"},
		{"eq chain", "a = 1 = TRUE", props{"a": "1"}, "TRUE", "(a = 1) = TRUE"},
		{"two unknown conditions equal", "(a > 1) = (b > 1)", props{}, "TRUE", ""},
		{"property vs condition", "a = (b > 1)", props{"a": "true", "b": "5"}, "TRUE", ""},
		{"literals", "1 = 1 AND 1 < 2.5 AND 'a' = 'a' AND NOT (TRUE = FALSE)", props{}, "TRUE", ""},
		{"number vs boolean", "5 = TRUE", props{}, "FALSE", ""},
		// BETWEEN.
		{"between low", "a BETWEEN 2 AND 10", props{"a": "2"}, "TRUE", "a BETWEEN 2 AND 10"},
		{"between high", "a between 2 and 10", props{"a": "10"}, "TRUE", ""},
		{"between outside", "a BETWEEN 2 AND 10", props{"a": "11"}, "FALSE", ""},
		{"between missing", "a BETWEEN 2 AND 10", props{}, "NULL", ""},
		{"between not a number", "a BETWEEN 2 AND 10", props{"a": "x"}, "NULL", ""},
		{"between negative bounds", "a BETWEEN -5 AND 5", props{"a": "-5"}, "TRUE", ""},
		{"between negated bounds unchecked", "a BETWEEN 5 AND -5", props{"a": "0"}, "FALSE", ""},
		{"not between", "a NOT BETWEEN 2 AND 10", props{"a": "1"}, "TRUE", "a NOT BETWEEN 2 AND 10"},
		{"not between inside", "a NOT BETWEEN 2 AND 10", props{"a": "5"}, "FALSE", ""},
		{"not between missing", "a NOT BETWEEN 2 AND 10", props{}, "NULL", ""},
		{"not between descending accepted", "a NOT BETWEEN 10 AND 2", props{"a": "5"}, "TRUE", ""},
		// IN.
		{"in", "a IN ('3', '4', '5')", props{"a": "4"}, "TRUE", "a IN ('3', '4', '5')"},
		{"in absent", "a in ('3','4','5')", props{"a": "8"}, "FALSE", "a IN ('3', '4', '5')"},
		{"in missing", "a IN ('3')", props{}, "NULL", ""},
		{"in is string equality", "a IN ('5')", props{"a": "5.0"}, "FALSE", ""},
		{"not in", "a NOT IN ('3', '4')", props{"a": "8"}, "TRUE", "a NOT IN ('3', '4')"},
		{"not in present", "a NOT IN ('3', '4')", props{"a": "3"}, "FALSE", ""},
		{"not in missing", "a NOT IN ('3')", props{}, "NULL", ""},
		{"in long list", "a IN (" + big + ")", props{"a": "v7"}, "TRUE", ""},
		{"in long list absent", "a IN (" + big + ")", props{"a": "v10"}, "FALSE", ""},
		{"not in long list", "a NOT IN (" + big + ")", props{"a": "v10"}, "TRUE", ""},
		{"tags", "TAGS IN ('tagA', 'tagB')", props{"TAGS": "tagB"}, "TRUE", ""},
		{"parenthesised property", "(a) IN ('x')", props{"a": "x"}, "TRUE", "a IN ('x')"},
		// IS [NOT] NULL is two-valued.
		{"is null missing", "a IS NULL", props{}, "TRUE", "a IS NULL"},
		{"is null present", "a is null", props{"a": ""}, "FALSE", "a IS NULL"},
		{"is not null", "a IS NOT NULL", props{"a": "x"}, "TRUE", "a IS NOT NULL"},
		{"is not null missing", "a IS NOT NULL", props{}, "FALSE", ""},
		{"is null of a condition", "(a > 1) IS NULL", props{}, "TRUE", ""},
		{"literal is null", "5 IS NULL", props{}, "FALSE", ""},
		// CONTAINS family: two-valued, FALSE when missing, NOT forms too.
		{"contains", "a CONTAINS 'x'", props{"a": "axb"}, "TRUE", "a CONTAINS 'x'"},
		{"contains absent", "a CONTAINS 'x'", props{"a": "abb"}, "FALSE", ""},
		{"contains missing", "a CONTAINS 'x'", props{}, "FALSE", ""},
		{"contains empty", "a CONTAINS ''", props{"a": "axb"}, "FALSE", ""},
		{"not contains", "a NOT CONTAINS 'x'", props{"a": "abb"}, "TRUE", "a NOT CONTAINS 'x'"},
		{"not contains present", "a not contains 'x'", props{"a": "axb"}, "FALSE", ""},
		{"not contains missing", "a NOT CONTAINS 'x'", props{}, "FALSE", ""},
		{"not contains empty", "a NOT CONTAINS ''", props{"a": "axb"}, "FALSE", ""},
		{"not of contains missing", "NOT (a CONTAINS 'x')", props{}, "TRUE", "NOT (a CONTAINS 'x')"},
		{"startswith", "a STARTSWITH 'ax'", props{"a": "axb"}, "TRUE", ""},
		{"not startswith", "a NOT STARTSWITH 'x'", props{"a": "axb"}, "TRUE", "a NOT STARTSWITH 'x'"},
		{"not startswith missing", "a NOT STARTSWITH 'x'", props{}, "FALSE", ""},
		{"endswith", "a ENDSWITH 'xb'", props{"a": "axb"}, "TRUE", ""},
		{"not endswith", "a NOT ENDSWITH 'xb'", props{"a": "axb"}, "FALSE", "a NOT ENDSWITH 'xb'"},
		{"contains literal", "'axb' contains 'x'", props{}, "TRUE", "'axb' CONTAINS 'x'"},
		{"contains of a number", "5 CONTAINS '5'", props{}, "FALSE", ""},
		{"contains unicode", "a CONTAINS 'ü'", props{"a": "grüß"}, "TRUE", ""},
		// Three-valued logic.
		{"unknown and unknown", "a = 1 AND b = 1", props{"a": "1"}, "NULL", ""},
		{"unknown and false", "a = 1 AND b = 1", props{"b": "2"}, "FALSE", ""},
		{"false and unknown", "b = 1 AND a = 1", props{"b": "2"}, "FALSE", ""},
		{"unknown or true", "a = 1 OR b = 1", props{"b": "1"}, "TRUE", ""},
		{"unknown or false", "a = 1 OR b = 1", props{"b": "2"}, "NULL", ""},
		{"not unknown", "NOT (a = 1)", props{}, "NULL", "NOT (a = 1)"},
		{"not false", "NOT (a = 1)", props{"a": "2"}, "TRUE", ""},
		{"conversion failure is local", "a > 5 OR b = 'x'", props{"a": "abc", "b": "x"}, "TRUE", ""},
		{"TRUE", "TRUE", props{}, "TRUE", "TRUE"},
		{"FALSE", "false", props{}, "FALSE", "FALSE"},
		{"NULL", "NULL", props{}, "NULL", "NULL"},
		{"not NULL", "NOT NULL", props{}, "NULL", "NOT NULL"},
		{"NULL or TRUE", "NULL OR TRUE", props{}, "TRUE", ""},
		{"NULL and FALSE", "NULL AND FALSE", props{}, "FALSE", ""},
		{"bare property present", "a", props{"a": "true"}, "FALSE", "a"},
		{"bare property missing", "a", props{}, "NULL", ""},
		{"not property", "NOT a", props{"a": "x"}, "TRUE", "NOT a"},
		{"property in AND", "a AND TRUE", props{}, "NULL", "a AND TRUE"},
		// Precedence and parentheses.
		{"and above or", "a = 1 OR b = 1 AND c = 1", props{"a": "1", "c": "2"}, "TRUE", "a = 1 OR (b = 1 AND c = 1)"},
		{"parentheses", "(a = 1 OR b = 1) AND c = 1", props{"a": "1", "c": "2"}, "FALSE", "(a = 1 OR b = 1) AND c = 1"},
		{"and chain flattened", "a = 1 AND (b = 2 AND c = 3)", props{"a": "1", "b": "2", "c": "3"}, "TRUE", "a = 1 AND b = 2 AND c = 3"},
		{"not binds to the property", "NOT a = 'x'", props{"a": "x"}, "NULL", "(NOT a) = 'x'"},
		{"not of the comparison", "NOT (a = 'x')", props{"a": "y"}, "TRUE", "NOT (a = 'x')"},
		{"not a is null", "NOT a IS NULL", props{}, "TRUE", "(NOT a) IS NULL"},
		{"comparison above equality", "a = b > 1", props{"a": "true", "b": "2"}, "TRUE", "a = (b > 1)"},
		{"between inside and", "a BETWEEN 1 AND 2 AND b = 1", props{"a": "1", "b": "1"}, "TRUE", "a BETWEEN 1 AND 2 AND b = 1"},
		{"redundant parentheses", "((((a = 1))))", props{"a": "1"}, "TRUE", "a = 1"},
		// Keywords, comments, strings.
		{"keywords any case", "a BeTwEeN 1 aNd 3 AnD b iN ('x') oR c Is NoT nUlL", props{"c": "1"}, "TRUE",
			"(a BETWEEN 1 AND 3 AND b IN ('x')) OR c IS NOT NULL"},
		{"identifier chars", "$a_1 = 'x' AND _B$ = 'y'", props{"$a_1": "x", "_B$": "y"}, "TRUE", ""},
		{"identifiers are case-sensitive", "A = 'x'", props{"a": "x"}, "NULL", ""},
		{"keyword prefix is an identifier", "andy = 'x' OR notx = 'y' OR inx = 'z'", props{"inx": "z"}, "TRUE", ""},
		{"line comment", "a = 1 -- the first\nAND b = 2", props{"a": "1", "b": "2"}, "TRUE", "a = 1 AND b = 2"},
		{"dashes without a line end are minus signs", "a = --1", props{"a": "1"}, "TRUE", "a = -(-1)"},
		{"block comment", "/* x */ a /* ' */ = 1", props{"a": "1"}, "TRUE", "a = 1"},
		{"quote escape", "a = 'it''s'", props{"a": "it's"}, "TRUE", "a = 'it''s'"},
		{"quote escapes", "TAGS = '''''tag'''''", props{"TAGS": "''tag''"}, "TRUE", "TAGS = '''''tag'''''"},
		{"comment chars in strings", "a = '--x /* y */'", props{"a": "--x /* y */"}, "TRUE", ""},
		{"newline in string", "a = 'x\ny'", props{"a": "x\ny"}, "TRUE", ""},
		{"whitespace", "\ta\r\n=\f1 ", props{"a": "1"}, "TRUE", "a = 1"},
		{"no spaces", "a>=1AND(b<>'x')", props{"a": "1", "b": "y"}, "TRUE", "a >= 1 AND b <> 'x'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Parse(tc.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.expr, err)
			}
			if got := truth(e, tc.props); got != tc.want {
				t.Errorf("%q over %v: got %s, want %s", tc.expr, tc.props, got, tc.want)
			}
			if got := e.Match(tc.props.get); got != (tc.want == "TRUE") {
				t.Errorf("Match: got %v, want %v", got, tc.want == "TRUE")
			}
			if tc.canon != "" && e.String() != tc.canon {
				t.Errorf("String(): got %q, want %q", e.String(), tc.canon)
			}
			e2 := mustRoundTrip(t, e)
			if got := truth(e2, tc.props); got != tc.want {
				t.Errorf("re-parsed %q: got %s, want %s", e2.String(), got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		expr string
		pos  int
		msg  string // a substring of the message
	}{
		{"empty", "", 0, "empty expression"},
		{"only a comment", "/* */", 0, "empty expression"},
		{"value after =", "a = ", 4, "expected a value after '=' but found end of expression"},
		{"trailing tokens", "a = 1 b = 2", 6, "expected AND, OR or end of expression but found identifier b"},
		{"unbalanced )", "a = 1)", 5, "unexpected ')'"},
		{"unclosed (", "(a = 1", 6, "expected ')' to close '(' at 0"},
		{"empty parentheses", "()", 1, "expected a value after '(' but found ')'"},
		{"dangling AND", "a = 1 AND", 9, "expected a value after AND"},
		{"dangling OR", "a = 1 OR OR", 9, "expected a value after OR but found keyword OR"},
		{"string after >", "a > 'x'", 4, "string 'x' cannot be compared with '>'"},
		{"boolean after <", "a < TRUE", 4, "TRUE cannot be compared with '<'"},
		{"NULL after >=", "a >= NULL", 5, "NULL cannot be compared"},
		{"condition before >", "(a = 1) > 2", 1, "(a = 1) cannot be compared with '>'"},
		{"relational chain", "a > 1 > 2", 0, "cannot be compared with '>'"},
		{"NULL after =", "a = NULL", 4, "NULL cannot be compared with '='; use IS NULL"},
		{"NULL before <>", "NULL <> a", 0, "use IS NOT NULL"},
		{"TRUE left of a number", "TRUE = 1", 0, "TRUE cannot be compared with number 1"},
		{"between descending", "a BETWEEN 10 AND 1", 10, "lower bound number 10 is greater than upper bound number 1"},
		{"between NULL", "a BETWEEN NULL AND 1", 10, "BETWEEN bounds cannot be NULL"},
		{"between strings", "a BETWEEN 'a' AND 'b'", 10, "string 'a' cannot be compared with BETWEEN"},
		{"between incomparable", "a BETWEEN 'x' AND 1", 10, "cannot be compared"},
		{"between without AND", "a BETWEEN 1 2", 12, "expected AND after 1 but found number 2"},
		{"not between string", "a NOT BETWEEN 1 AND 'z'", 20, "cannot be compared with NOT BETWEEN"},
		{"in number", "a IN (1)", 6, "expected a string literal after '(' but found number 1"},
		{"in without (", "a IN 'x'", 5, "expected '(' after IN"},
		{"in unclosed", "a IN ('x'", 9, "expected ',' or ')'"},
		{"in empty", "a IN ()", 6, "expected a string literal"},
		{"in trailing comma", "a IN ('x',)", 10, "expected a string literal after ','"},
		{"in on a literal", "'x' IN ('x')", 0, "IN needs a property on its left but found string 'x'"},
		{"not in on a negation", "-a NOT IN ('x')", 0, "NOT IN needs a property"},
		{"in of in", "a IN ('x') IN ('y')", 0, "IN needs a property"},
		{"in of not", "NOT a IN ('x')", 0, "IN needs a property"},
		{"contains number", "a CONTAINS 5", 11, "expected a string literal after CONTAINS but found number 5"},
		{"not endswith property", "a NOT ENDSWITH b", 15, "expected a string literal after ENDSWITH"},
		{"not alone", "a NOT 5", 6, "expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT"},
		{"is 5", "a IS 5", 5, "expected NULL or NOT NULL after IS"},
		{"is not 5", "a IS NOT 5", 9, "expected NULL or NOT NULL after NOT"},
		{"not a number", "NOT 5", 4, "expected a condition but found number 5"},
		{"string alone", "'x'", 0, "expected a condition but found string 'x'"},
		{"negation alone", "-a", 0, "expected a condition but found (-a)"},
		{"string in and", "a = 1 AND 'x'", 10, "expected a condition"},
		{"unterminated string", "a = 'x", 4, "unterminated string literal"},
		{"unterminated comment", "a = 1 /* x", 6, "unterminated comment"},
		{"line comment eats the rest", "a = --1\n", 8, "expected a value after '='"},
		{"hex is not a number", "a = 0x1F", 5, "found identifier x1F"},
		{"octal is not a number", "a = 05", 5, "found number 5"},
		{"L after 0", "a = 0L", 5, "found identifier L"},
		{"long overflow", "a > 100000000000000000000", 4, "out of range of a 64-bit long"},
		{"long min literal", "a > -9223372036854775808", 5, "out of range of a 64-bit long"},
		{"double overflow", "a > 1e400", 4, "out of range of a double"},
		{"double quotes", `a = "x"`, 4, "unexpected character '\"' (string literals use single quotes)"},
		{"bang equal", "a != 1", 2, "(not-equal is '<>')"},
		{"double equal", "a == 1", 3, "expected a value after '=' but found '='"},
		{"dot in name", "a.b = 1", 1, "unexpected character '.'"},
		{"non-ASCII name", "größe = 1", 2, "unexpected character 'ö'"},
		{"keyword as name", "in = 1", 0, "expected a value but found keyword IN"},
		{"lone plus", "a = +", 5, "expected a value after '+'"},
		{"slash", "a / 2", 2, "unexpected character '/'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Parse(tc.expr)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tc.expr, e)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %T %v, want *SyntaxError", err, err)
			}
			if se.Pos != tc.pos || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("Parse(%q): got at %d %q, want at %d %q", tc.expr, se.Pos, se.Msg, tc.pos, tc.msg)
			}
		})
	}
}

func TestSyntaxErrorString(t *testing.T) {
	_, err := Parse("a = ")
	want := "sql92: at 4: expected a value after '=' but found end of expression"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestLimits(t *testing.T) {
	long := "a = '" + strings.Repeat("x", MaxLength-6) + "'"
	if _, err := Parse(long); err != nil {
		t.Fatalf("%d bytes: %v", len(long), err)
	}
	var se *SyntaxError
	_, err := Parse(long + " ")
	if !errors.As(err, &se) || se.Pos != MaxLength || !strings.Contains(se.Msg, "longer than the limit") {
		t.Errorf("%d bytes: got %v, want a length error", len(long)+1, err)
	}

	parens := func(n int) string {
		return strings.Repeat("(", n) + "a = 1" + strings.Repeat(")", n)
	}
	if _, err := Parse(parens(MaxDepth)); err != nil {
		t.Errorf("%d parentheses: %v", MaxDepth, err)
	}
	_, err = Parse(parens(MaxDepth + 1))
	if !errors.As(err, &se) || se.Pos != MaxDepth || !strings.Contains(se.Msg, "nested deeper than") {
		t.Errorf("%d parentheses: got %v, want a depth error at %d", MaxDepth+1, err, MaxDepth)
	}
	if _, err := Parse(strings.Repeat("NOT ", MaxDepth+1) + "a"); !errors.As(err, &se) || !strings.Contains(se.Msg, "nested deeper than") {
		t.Errorf("NOT chain: got %v, want a depth error", err)
	}
	// A chain of '=' nests in the tree without parentheses.
	eqChain := func(n int) string { return "a" + strings.Repeat(" = TRUE", n) }
	if _, err := Parse(eqChain(MaxDepth - 1)); err != nil {
		t.Errorf("'=' chain of %d: %v", MaxDepth-1, err)
	}
	if _, err := Parse(eqChain(MaxDepth)); !errors.As(err, &se) || !strings.Contains(se.Msg, "nested deeper than") {
		t.Errorf("'=' chain of %d: got %v, want a depth error", MaxDepth, err)
	}
	// A chain of AND is one level, however long.
	if _, err := Parse("a = 1" + strings.Repeat(" AND a = 1", 500)); err != nil {
		t.Errorf("AND chain: %v", err)
	}

	in := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = "'x'"
		}
		return "a IN (" + strings.Join(items, ",") + ")"
	}
	if _, err := Parse(in(MaxInList)); err != nil {
		t.Errorf("IN of %d: %v", MaxInList, err)
	}
	_, err = Parse(in(MaxInList + 1))
	if !errors.As(err, &se) || se.Pos != 6+4*MaxInList || !strings.Contains(se.Msg, "IN list longer than") {
		t.Errorf("IN of %d: got %v, want an IN-list error", MaxInList+1, err)
	}
}

func TestProperties(t *testing.T) {
	e, err := Parse("b = 1 AND (a IS NULL OR b IN ('x')) AND NOT c AND TAGS CONTAINS 't' AND 1 = 1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"b", "a", "c", "TAGS"}
	got := e.Properties()
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	got[0] = "changed"
	if e.Properties()[0] != "b" {
		t.Error("Properties returned the expression's own slice")
	}
	e, err = Parse("TRUE")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Properties(); len(got) != 0 {
		t.Errorf("TRUE: got %v, want none", got)
	}
}

func TestMatchNilProps(t *testing.T) {
	e, err := Parse("a IS NULL")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Match(nil) {
		t.Error("a IS NULL with no properties: got false, want true")
	}
}

func TestJavaNumbers(t *testing.T) {
	ints := []struct {
		s    string
		bits int
		want int64
		ok   bool
	}{
		{"0", 32, 0, true}, {"-0", 32, 0, true}, {"+7", 32, 7, true}, {"007", 32, 7, true},
		{"2147483647", 32, math.MaxInt32, true}, {"2147483648", 32, 0, false},
		{"-2147483648", 32, math.MinInt32, true}, {"-2147483649", 32, 0, false},
		{"9223372036854775807", 64, math.MaxInt64, true}, {"9223372036854775808", 64, 0, false},
		{"-9223372036854775808", 64, math.MinInt64, true}, {"99999999999999999999", 64, 0, false},
		{"", 32, 0, false}, {"-", 32, 0, false}, {"+", 64, 0, false}, {" 1", 32, 0, false},
		{"1 ", 32, 0, false}, {"1.0", 32, 0, false}, {"1e3", 64, 0, false}, {"٣", 32, 0, false},
	}
	for _, tc := range ints {
		got, ok := parseJavaInt(tc.s, tc.bits)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseJavaInt(%q, %d): got %d %v, want %d %v", tc.s, tc.bits, got, ok, tc.want, tc.ok)
		}
	}
	doubles := []struct {
		s    string
		want float64
		ok   bool
	}{
		{"1", 1, true}, {"1.5", 1.5, true}, {"-1.5", -1.5, true}, {"+.5", 0.5, true}, {"5.", 5, true},
		{"1e3", 1000, true}, {"1E-3", 0.001, true}, {"1.5f", 1.5, true}, {"2D", 2, true},
		{" \t1.5\n", 1.5, true}, {"0x1p4", 16, true}, {"0X1.8P1", 3, true}, {"0x.8p1d", 1, true},
		{"Infinity", math.Inf(1), true}, {"-Infinity", math.Inf(-1), true}, {"1e400", math.Inf(1), true},
		{"1e-400", 0, true},
		{"", 0, false}, {".", 0, false}, {"e5", 0, false}, {"1e", 0, false}, {"1e+", 0, false},
		{"0x1", 0, false}, {"0xp1", 0, false}, {"inf", 0, false}, {"nan", 0, false}, {"infinity", 0, false},
		{"NaNd", 0, false}, {"1_000", 0, false}, {"1.5ff", 0, false}, {"1 5", 0, false}, {"--1", 0, false},
	}
	for _, tc := range doubles {
		got, ok := parseJavaDouble(tc.s)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseJavaDouble(%q): got %v %v, want %v %v", tc.s, got, ok, tc.want, tc.ok)
		}
	}
	if f, ok := parseJavaDouble(" NaN "); !ok || !math.IsNaN(f) {
		t.Errorf("parseJavaDouble(NaN): got %v %v", f, ok)
	}
	if compareJavaDouble(math.NaN(), math.Inf(1)) != 1 || compareJavaDouble(math.NaN(), math.NaN()) != 0 ||
		compareJavaDouble(math.Copysign(0, -1), 0) != -1 {
		t.Error("compareJavaDouble does not order as Java's Double.compare")
	}
	for s, want := range map[string]bool{"true": true, "TRUE": true, "tRuE": true, "yes": false, "true ": false, "": false, "1": false} {
		if got := javaBooleanValueOf(s); got != want {
			t.Errorf("javaBooleanValueOf(%q): got %v, want %v", s, got, want)
		}
	}
}
