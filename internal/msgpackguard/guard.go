package msgpackguard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

var (
	// ErrBadLength is returned when a declared length exceeds the input.
	ErrBadLength = errors.New("msgpack: length exceeds the input")
	// ErrTooManyElements is returned by UnmarshalBounded when the arrays
	// and maps of an input declare more elements than its size allows
	// for the Go type it is decoded into.
	ErrTooManyElements = errors.New("msgpack: too many elements for the input size")
)

// Unmarshal decodes b into v after CheckLengths accepted b.
func Unmarshal(b []byte, v any) error {
	if err := CheckLengths(b); err != nil {
		return err
	}
	return msgpack.Unmarshal(b, v)
}

// BoundedSlack is the element allocation UnmarshalBounded allows any
// input, however small.
const BoundedSlack = 256 << 10

// UnmarshalBounded is Unmarshal that also bounds what the decoder
// preallocates for arrays and maps. An element needs only one byte (nil
// or an empty map decodes to a zero struct), so after CheckLengths a
// body of n bytes may still make the decoder allocate n times the size
// of its largest element type: a 16 MiB request of nils decodes to 16
// million 136-byte messages. UnmarshalBounded refuses b
// (ErrTooManyElements) when the elements its arrays and maps declare,
// each counted at the size of the largest slice element or map entry
// reachable from v's type, exceed ratio x len(b) + BoundedSlack bytes.
func UnmarshalBounded(b []byte, v any, ratio int) error {
	elem := maxElemSize(reflect.TypeOf(v))
	if err := check(b, elem, uint64(ratio)*uint64(len(b))+BoundedSlack); err != nil {
		return err
	}
	return msgpack.Unmarshal(b, v)
}

// CheckLengths walks the msgpack items in b without decoding them. Each
// element needs at least one byte, so a container may not declare more
// elements than bytes remain. It does not allocate.
func CheckLengths(b []byte) error { return check(b, 0, 0) }

// check is CheckLengths that also refuses inputs whose arrays and maps
// declare, in all, more than limit bytes of elements of elem bytes each
// (elem 0: no limit).
func check(b []byte, elem, limit uint64) error {
	var declared uint64 // bytes of elements declared so far
	pending, pos := 1, 0
	for pending > 0 {
		if pos >= len(b) {
			return fmt.Errorf("%w: truncated at byte %d", ErrBadLength, pos)
		}
		pending--
		c := b[pos]
		pos++
		var n, head, children int // payload bytes, length-field bytes, nested items
		var elems int             // slice elements or map entries declared
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixints, nil, bools
		case c >= 0x80 && c <= 0x8f:
			children, elems = 2*int(c&0x0f), int(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			children, elems = int(c&0x0f), int(c&0x0f)
		case c >= 0xa0 && c <= 0xbf:
			n = int(c & 0x1f)
		case c == 0xcc || c == 0xd0:
			n = 1
		case c == 0xcd || c == 0xd1:
			n = 2
		case c == 0xce || c == 0xd2 || c == 0xca:
			n = 4
		case c == 0xcf || c == 0xd3 || c == 0xcb:
			n = 8
		case c >= 0xd4 && c <= 0xd8: // fixext: type byte + 1..16 bytes
			n = 1 + 1<<(c-0xd4)
		case c == 0xc4 || c == 0xd9 || c == 0xc7: // bin8, str8, ext8
			head = 1
		case c == 0xc5 || c == 0xda || c == 0xc8 || c == 0xdc || c == 0xde: // 16-bit lengths
			head = 2
		case c == 0xc6 || c == 0xdb || c == 0xc9 || c == 0xdd || c == 0xdf: // 32-bit lengths
			head = 4
		default:
			return fmt.Errorf("%w: invalid type byte %#x at %d", ErrBadLength, c, pos-1)
		}
		if head > 0 {
			if len(b)-pos < head {
				return fmt.Errorf("%w: truncated length at byte %d", ErrBadLength, pos)
			}
			var l uint64
			switch head {
			case 1:
				l = uint64(b[pos])
			case 2:
				l = uint64(binary.BigEndian.Uint16(b[pos:]))
			case 4:
				l = uint64(binary.BigEndian.Uint32(b[pos:]))
			}
			pos += head
			if l > uint64(len(b)) {
				return fmt.Errorf("%w: length %d at byte %d, input is %d bytes", ErrBadLength, l, pos, len(b))
			}
			switch c {
			case 0xdc, 0xdd:
				children, elems = int(l), int(l)
			case 0xde, 0xdf:
				children, elems = 2*int(l), int(l)
			case 0xc7, 0xc8, 0xc9:
				n = 1 + int(l) // ext type byte + data
			default:
				n = int(l)
			}
		}
		if n > len(b)-pos {
			return fmt.Errorf("%w: %d bytes declared at byte %d, %d remain", ErrBadLength, n, pos, len(b)-pos)
		}
		pos += n
		pending += children
		if pending > len(b)-pos {
			return fmt.Errorf("%w: %d items declared, %d bytes remain", ErrBadLength, pending, len(b)-pos)
		}
		if elem > 0 && elems > 0 {
			declared += uint64(elems) * elem
			if declared > limit {
				return fmt.Errorf("%w: %d bytes of elements declared by byte %d, limit %d for %d input bytes",
					ErrTooManyElements, declared, pos, limit, len(b))
			}
		}
	}
	return nil
}

// elemSizes caches maxElemSize by type.
var elemSizes sync.Map // reflect.Type -> uint64

// maxElemSize returns the size of the largest slice element or map entry
// (key plus value) reachable from t, 0 if t holds neither. An interface
// counts as 64 bytes: what it decodes to is not known from the type.
func maxElemSize(t reflect.Type) uint64 {
	if t == nil {
		return 64
	}
	if v, ok := elemSizes.Load(t); ok {
		return v.(uint64)
	}
	n := elemSizeOf(t, map[reflect.Type]bool{})
	elemSizes.Store(t, n)
	return n
}

func elemSizeOf(t reflect.Type, seen map[reflect.Type]bool) uint64 {
	if seen[t] {
		return 0 // a recursive type: its sizes are counted where it began
	}
	seen[t] = true
	defer delete(seen, t)
	switch t.Kind() {
	case reflect.Pointer, reflect.Array:
		return elemSizeOf(t.Elem(), seen)
	case reflect.Struct:
		var m uint64
		for i := 0; i < t.NumField(); i++ {
			m = max(m, elemSizeOf(t.Field(i).Type, seen))
		}
		return m
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return 0 // []byte decodes from a binary, not an array
		}
		return max(uint64(t.Elem().Size()), elemSizeOf(t.Elem(), seen))
	case reflect.Map:
		return max(uint64(t.Key().Size()+t.Elem().Size()), elemSizeOf(t.Key(), seen), elemSizeOf(t.Elem(), seen))
	case reflect.Interface:
		return 64
	}
	return 0
}
