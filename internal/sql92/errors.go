package sql92

import "strconv"

// SyntaxError is the error Parse returns for every refused expression:
// a lexical or grammar error, an operand RocketMQ refuses at parse time
// (a string after '>', NULL after '=', BETWEEN bounds in the wrong
// order), or a limit. Pos is the byte offset, 0-based, of the token or
// operand at fault (len(expr) for the end of the expression).
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return "sql92: at " + strconv.Itoa(e.Pos) + ": " + e.Msg
}
