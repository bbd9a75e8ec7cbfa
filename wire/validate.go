package wire

import (
	"github.com/rmq-dev/rmq/internal/msgpackguard"
)

// errBadLength is returned by checkLengths.
var errBadLength = msgpackguard.ErrBadLength

// Unmarshal decodes a msgpack body after checking that no array, map,
// string or binary in it declares more elements or bytes than the body
// holds (see internal/msgpackguard: msgpack v5.4.1 preallocates a slice of
// the declared length, so without this an 8-byte body that declares four
// billion elements makes the process run out of memory; found by
// FuzzDecodeBodies). Every body this package decodes goes through here.
func Unmarshal(b []byte, v any) error { return msgpackguard.Unmarshal(b, v) }

// checkLengths is msgpackguard.CheckLengths.
func checkLengths(b []byte) error { return msgpackguard.CheckLengths(b) }
