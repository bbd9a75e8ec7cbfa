package msgpackguard

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// ErrBadLength is returned when a declared length exceeds the input.
var ErrBadLength = errors.New("msgpack: length exceeds the input")

// Unmarshal decodes b into v after CheckLengths accepted b.
func Unmarshal(b []byte, v any) error {
	if err := CheckLengths(b); err != nil {
		return err
	}
	return msgpack.Unmarshal(b, v)
}

// CheckLengths walks the msgpack items in b without decoding them. Each
// element needs at least one byte, so a container may not declare more
// elements than bytes remain. It does not allocate.
func CheckLengths(b []byte) error {
	pending, pos := 1, 0
	for pending > 0 {
		if pos >= len(b) {
			return fmt.Errorf("%w: truncated at byte %d", ErrBadLength, pos)
		}
		pending--
		c := b[pos]
		pos++
		var n, head, children int // payload bytes, length-field bytes, nested items
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixints, nil, bools
		case c >= 0x80 && c <= 0x8f:
			children = 2 * int(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			children = int(c & 0x0f)
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
				children = int(l)
			case 0xde, 0xdf:
				children = 2 * int(l)
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
	}
	return nil
}
