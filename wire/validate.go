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
// FuzzDecodeBodies). It also refuses a body whose arrays and maps declare
// more elements than bodyElemRatio x its size in bytes allows for v's
// largest element type (msgpackguard.UnmarshalBounded): a nil decodes to a
// 136-byte Message, so a 16 MiB send of nils allocated 2 GiB (found by
// FuzzBodies). Every body this package decodes goes through here.
func Unmarshal(b []byte, v any) error { return msgpackguard.UnmarshalBounded(b, v, bodyElemRatio) }

// bodyElemRatio bounds the element bytes a body may declare per byte of
// body. Real elements cost at most ~7 times their encoding (a 136-byte
// Message takes at least ~20 bytes: topic, body, 16-byte ID), so only
// bodies built to amplify reach it.
const bodyElemRatio = 32

// checkLengths is msgpackguard.CheckLengths.
func checkLengths(b []byte) error { return msgpackguard.CheckLengths(b) }
