package sql92

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString  // 'text', '' inside is one quote
	tDecimal // 0 | [1-9][0-9]*[lL]?
	tFloat   // 1.5 1. .5 1e3 1.5E-3
	tEq      // =
	tNe      // <>
	tGt      // >
	tGe      // >=
	tLt      // <
	tLe      // <=
	tLParen
	tRParen
	tComma
	tPlus
	tMinus
	// Keywords, case-insensitive.
	tNot
	tAnd
	tOr
	tBetween
	tIn
	tTrue
	tFalse
	tNull
	tIs
	tContains
	tStartsWith
	tEndsWith
)

var keywords = [...]struct {
	word string
	kind tokKind
}{
	{"NOT", tNot}, {"AND", tAnd}, {"OR", tOr}, {"BETWEEN", tBetween},
	{"IN", tIn}, {"TRUE", tTrue}, {"FALSE", tFalse}, {"NULL", tNull},
	{"IS", tIs}, {"CONTAINS", tContains}, {"STARTSWITH", tStartsWith},
	{"ENDSWITH", tEndsWith},
}

var punct = [...]string{
	tEq: "=", tNe: "<>", tGt: ">", tGe: ">=", tLt: "<", tLe: "<=",
	tLParen: "(", tRParen: ")", tComma: ",", tPlus: "+", tMinus: "-",
}

type token struct {
	kind tokKind
	pos  int
	text string // the source bytes of the token
	str  string // decoded value of a tString
}

// short names the token as it appears in "after X" contexts.
func (t token) short() string {
	switch {
	case t.kind == tEOF:
		return "end of expression"
	case t.kind >= tNot:
		return strings.ToUpper(t.text)
	case t.kind >= tEq:
		return "'" + t.text + "'"
	default:
		return clip(t.text)
	}
}

// describe names the token as it appears in "but found X" contexts.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tIdent:
		return "identifier " + clip(t.text)
	case tString:
		return "string " + clip(t.text)
	case tDecimal, tFloat:
		return "number " + clip(t.text)
	}
	if t.kind >= tNot {
		return "keyword " + strings.ToUpper(t.text)
	}
	return "'" + t.text + "'"
}

func clip(s string) string {
	const max = 24
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// lex splits expr into tokens, ending with a tEOF token at len(expr).
// The token rules are RocketMQ's (SelectorParser.jj), including its
// comments: "--" to the end of the line and "/* */". As in the JavaCC
// lexer, a "--" with no line end after it is not a comment but two minus
// signs.
func lex(expr string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			continue
		case c == '-' && i+1 < len(expr) && expr[i+1] == '-':
			if end := strings.IndexAny(expr[i+2:], "\n\r"); end >= 0 {
				i += 2 + end + 1
				continue
			}
		case c == '/':
			if i+1 < len(expr) && expr[i+1] == '*' {
				end := strings.Index(expr[i+2:], "*/")
				if end < 0 {
					return nil, &SyntaxError{Pos: i, Msg: "unterminated comment: '/*' without '*/'"}
				}
				i += 2 + end + 2
				continue
			}
		}
		t, err := lexToken(expr, i)
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		i += len(t.text)
	}
	return append(toks, token{kind: tEOF, pos: len(expr)}), nil
}

func lexToken(expr string, i int) (token, error) {
	c := expr[i]
	switch {
	case c == '\'':
		return lexString(expr, i)
	case isDigit(c) || (c == '.' && i+1 < len(expr) && isDigit(expr[i+1])):
		return lexNumber(expr, i), nil
	case isIdentStart(c):
		j := i + 1
		for j < len(expr) && isIdentPart(expr[j]) {
			j++
		}
		t := token{kind: tIdent, pos: i, text: expr[i:j]}
		for _, k := range keywords {
			if strings.EqualFold(t.text, k.word) {
				t.kind = k.kind
				break
			}
		}
		return t, nil
	}
	kind := tEOF
	n := 1
	switch c {
	case '=':
		kind = tEq
	case '<':
		kind = tLt
		if i+1 < len(expr) && expr[i+1] == '>' {
			kind, n = tNe, 2
		} else if i+1 < len(expr) && expr[i+1] == '=' {
			kind, n = tLe, 2
		}
	case '>':
		kind = tGt
		if i+1 < len(expr) && expr[i+1] == '=' {
			kind, n = tGe, 2
		}
	case '(':
		kind = tLParen
	case ')':
		kind = tRParen
	case ',':
		kind = tComma
	case '+':
		kind = tPlus
	case '-':
		kind = tMinus
	}
	if kind == tEOF {
		r, _ := utf8.DecodeRuneInString(expr[i:])
		msg := fmt.Sprintf("unexpected character %q", r)
		switch c {
		case '"':
			msg += " (string literals use single quotes)"
		case '!':
			msg += " (not-equal is '<>')"
		}
		return token{}, &SyntaxError{Pos: i, Msg: msg}
	}
	return token{kind: kind, pos: i, text: expr[i : i+n]}, nil
}

func lexString(expr string, i int) (token, error) {
	var b strings.Builder
	j := i + 1
	for {
		k := strings.IndexByte(expr[j:], '\'')
		if k < 0 {
			return token{}, &SyntaxError{Pos: i, Msg: "unterminated string literal"}
		}
		b.WriteString(expr[j : j+k])
		j += k + 1
		if j < len(expr) && expr[j] == '\'' {
			b.WriteByte('\'')
			j++
			continue
		}
		return token{kind: tString, pos: i, text: expr[i:j], str: b.String()}, nil
	}
}

// lexNumber takes the longest of RocketMQ's two number tokens at i:
//
//	DECIMAL_LITERAL        "0" | [1-9][0-9]* [lL]?
//	FLOATING_POINT_LITERAL [0-9]+ "." [0-9]* EXP? | "." [0-9]+ EXP? | [0-9]+ EXP
//	EXP                    [eE] [+-]? [0-9]+
//
// so "05" is two tokens ("0", "5") and "0L" is "0" then identifier "L".
func lexNumber(expr string, i int) token {
	j := i
	for j < len(expr) && isDigit(expr[j]) {
		j++
	}
	intEnd := j
	float := false
	if j < len(expr) && expr[j] == '.' {
		float = true
		j++
		for j < len(expr) && isDigit(expr[j]) {
			j++
		}
	}
	if e := exponentEnd(expr, j); e > j {
		float, j = true, e
	}
	if float {
		return token{kind: tFloat, pos: i, text: expr[i:j]}
	}
	if expr[i] == '0' {
		return token{kind: tDecimal, pos: i, text: expr[i : i+1]}
	}
	if intEnd < len(expr) && (expr[intEnd] == 'l' || expr[intEnd] == 'L') {
		intEnd++
	}
	return token{kind: tDecimal, pos: i, text: expr[i:intEnd]}
}

// exponentEnd returns the end of an exponent starting at j, or j if there
// is none.
func exponentEnd(s string, j int) int {
	if j >= len(s) || (s[j] != 'e' && s[j] != 'E') {
		return j
	}
	k := j + 1
	if k < len(s) && (s[k] == '+' || s[k] == '-') {
		k++
	}
	d := k
	for k < len(s) && isDigit(s[k]) {
		k++
	}
	if k == d {
		return j
	}
	return k
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentStart(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || c == '_' || c == '$'
}

func isIdentPart(c byte) bool { return isIdentStart(c) || isDigit(c) }
