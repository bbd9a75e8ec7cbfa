package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the framing version written by this package.
const Version = 1

// HeaderSize is the fixed frame header after the length prefix.
const HeaderSize = 12

// DefaultMaxFrame is the default largest frame (RocketMQ's 16 MiB).
const DefaultMaxFrame = 16 << 20

// Frame flags.
const (
	FlagResponse uint8 = 1 << 0 // a response to the request with the same ID
	FlagOneway   uint8 = 1 << 1 // a request that expects no response
)

// Frame is one message on a connection.
//
//	0       4        5       6          8                  16
//	+-------+--------+-------+----------+------------------+--------------+
//	| len   | version| flags | code u16 | request id u64   | msgpack body |
//	+-------+--------+-------+----------+------------------+--------------+
//	  len counts every byte after itself: HeaderSize + len(body).
//
// A signed request (FlagAuth) has an auth block between the header and
// the body (see Auth); len counts it too.
//
// For requests Code is the request code; for responses it is the error
// code (CodeOK on success). All integers are big-endian.
type Frame struct {
	Flags uint8
	Code  uint16
	ID    uint64
	Body  []byte
	// Auth, if set, is a signed request's auth block (FlagAuth is then
	// set on the wire whatever Flags says).
	Auth *Auth
}

// IsResponse reports whether f answers a request.
func (f Frame) IsResponse() bool { return f.Flags&FlagResponse != 0 }

// IsOneway reports whether f is a request that wants no answer.
func (f Frame) IsOneway() bool { return f.Flags&FlagOneway != 0 }

var (
	// ErrFrameTooLarge means a frame's length exceeds the limit.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrMalformed means a frame is shorter than its header or has a
	// version this package does not speak.
	ErrMalformed = errors.New("wire: malformed frame")
)

// AppendFrame appends f's encoding to dst.
func AppendFrame(dst []byte, f Frame) []byte {
	h := header(f)
	dst = append(dst, h[:]...)
	if f.Auth != nil {
		dst = appendAuth(dst, f.Auth)
	}
	return append(dst, f.Body...)
}

func header(f Frame) [4 + HeaderSize]byte {
	var h [4 + HeaderSize]byte
	binary.BigEndian.PutUint32(h[0:], uint32(HeaderSize+authLen(f.Auth)+len(f.Body)))
	h[4] = Version
	h[5] = f.Flags &^ FlagAuth
	if f.Auth != nil {
		h[5] |= FlagAuth
	}
	binary.BigEndian.PutUint16(h[6:], f.Code)
	binary.BigEndian.PutUint64(h[8:], f.ID)
	return h
}

// ReadFrame reads one frame from r. The body is a fresh slice. It never
// allocates more than max bytes for a frame, whatever the prefix claims.
func ReadFrame(r io.Reader, max int) (Frame, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if err := checkLen(n, max); err != nil {
		return Frame{}, err
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return parseFrame(buf)
}

// DecodeFrame decodes the first frame in b and returns it with the number
// of bytes it used. The body aliases b.
func DecodeFrame(b []byte, max int) (Frame, int, error) {
	if len(b) < 4 {
		return Frame{}, 0, io.ErrUnexpectedEOF
	}
	n := binary.BigEndian.Uint32(b)
	if err := checkLen(n, max); err != nil {
		return Frame{}, 0, err
	}
	if uint64(len(b)-4) < uint64(n) {
		return Frame{}, 0, io.ErrUnexpectedEOF
	}
	f, err := parseFrame(b[4 : 4+n])
	return f, 4 + int(n), err
}

func checkLen(n uint32, max int) error {
	if n < HeaderSize {
		return fmt.Errorf("%w: length %d is shorter than the %d-byte header", ErrMalformed, n, HeaderSize)
	}
	if uint64(n) > uint64(max) {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	return nil
}

func parseFrame(b []byte) (Frame, error) {
	if b[0] != Version {
		return Frame{}, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[0], Version)
	}
	f := Frame{
		Flags: b[1],
		Code:  binary.BigEndian.Uint16(b[2:]),
		ID:    binary.BigEndian.Uint64(b[4:]),
		Body:  b[HeaderSize:],
	}
	if f.Flags&FlagAuth != 0 {
		var err error
		if f.Auth, f.Body, err = parseAuth(f.Body); err != nil {
			return Frame{}, err
		}
	}
	return f, nil
}
