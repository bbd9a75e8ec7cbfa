package compat

import (
	"errors"
	"strconv"
)

var (
	// ErrMalformed means bytes from the peer do not form a valid frame,
	// header, stored message or body. It is wrapped with the reason.
	ErrMalformed = errors.New("compat: malformed frame")
	// ErrFrameTooLarge means a frame's length prefix exceeds the limit.
	ErrFrameTooLarge = errors.New("compat: frame too large")
	// ErrClosed is returned by calls on a connection or client that has
	// been closed (wrapped with the reason when one is known).
	ErrClosed = errors.New("compat: connection closed")
)

// FieldError reports a missing or malformed ext (custom header) field.
// Its text reads `header field "queueId": missing`.
type FieldError struct {
	Field   string // the extFields key
	Problem string // "missing", `"abc" is not an integer`, ...
}

func (e *FieldError) Error() string {
	return "header field " + strconv.Quote(e.Field) + ": " + e.Problem
}
