// Package msgpackguard decodes msgpack that may come from outside the
// process (a client frame, a raft entry, a snapshot from the leader)
// without trusting its declared lengths.
//
// msgpack v5.4.1 preallocates a slice of the length an array header
// declares: its allocation limit never applies to slices of structs (the
// check in decode_slice.go compares a flag with 1), so a few bytes that
// declare four billion elements make the process run out of memory.
// Unmarshal first walks the items without decoding them and refuses any
// array, map, string, binary or extension that declares more elements or
// bytes than remain in the input. Each element needs at least one byte, so
// after the check a decode allocates at most (size of the Go element) x
// len(b) for any container, proportional to the real input, never to a
// declared length. That factor is the size of a Go element, which a
// one-byte nil fills: 136 bytes for a wire message. UnmarshalBounded
// (used by wire, whose bodies come from any network peer) also bounds the
// sum of declared elements, each counted at the largest element size of
// v's type, to a multiple of len(b), so a body cannot allocate more than
// a fixed multiple of its own size.
//
// It imports only the standard library and msgpack, so every package that
// decodes msgpack (wire, fsm) can use it without depending on each
// other. Unmarshal is a pure function: no state, no goroutines, safe for
// concurrent use. A refused input gets ErrBadLength (wrapped with the
// offset and what was declared); the caller decides what that means
// (fsm: a corrupt command or snapshot; wire: a malformed frame).
package msgpackguard
