package compat

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Header serialization types (the top byte of the second frame word).
const (
	SerializeJSON   byte = 0
	SerializeBinary byte = 1
)

// Flag bits of a command.
const (
	FlagResponse int32 = 1
	FlagOneway   int32 = 2
)

// DefaultMaxFrame is the default limit on a frame's length (RocketMQ's
// NettyDecoder limit, 16 MiB).
const DefaultMaxFrame = 16 << 20

// binaryFixedLen is the fixed part of a ROCKETMQ binary header.
const binaryFixedLen = 21

// Command is one remoting command: a request or a response.
type Command struct {
	Code      int32             // request code, or response code
	Language  string            // "GO", "JAVA", ...
	Version   int32             // client MQVersion ordinal (Go client sends 317)
	Opaque    int32             // request id; a response echoes it
	Flag      int32             // FlagResponse | FlagOneway
	Remark    string            // error text of a response
	Ext       map[string]string // extFields; all values are strings
	Body      []byte
	Serialize byte // header encoding it was read with / will be written with
}

// IsResponse reports whether c is a response.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether c is a request that wants no response.
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// NewRequest builds a JSON-serialized request with Language "JAVA" (what
// RocketMQ servers send) and the Go client's version (317).
func NewRequest(code int32, ext map[string]string, body []byte) *Command {
	return &Command{Code: code, Language: "JAVA", Version: 317, Ext: ext, Body: body, Serialize: SerializeJSON}
}

// NewResponse builds the response to req: same Opaque, Version and
// Serialize, FlagResponse set, Language "JAVA".
func NewResponse(req *Command, code int32, remark string) *Command {
	return &Command{
		Code:      code,
		Language:  "JAVA",
		Version:   req.Version,
		Opaque:    req.Opaque,
		Flag:      FlagResponse,
		Remark:    remark,
		Serialize: req.Serialize,
	}
}

// SetExt sets an ext field, allocating Ext if needed.
func (c *Command) SetExt(key, value string) {
	if c.Ext == nil {
		c.Ext = make(map[string]string)
	}
	c.Ext[key] = value
}

// ExtString returns a required ext field.
func (c *Command) ExtString(key string) (string, error) {
	v, ok := c.Ext[key]
	if !ok {
		return "", &FieldError{Field: key, Problem: "missing"}
	}
	return v, nil
}

// ExtInt64 returns a required integer ext field.
func (c *Command) ExtInt64(key string) (int64, error) {
	v, err := c.ExtString(key)
	if err != nil {
		return 0, err
	}
	return parseInt(key, v, 64)
}

// ExtInt32 returns a required 32-bit integer ext field.
func (c *Command) ExtInt32(key string) (int32, error) {
	v, err := c.ExtString(key)
	if err != nil {
		return 0, err
	}
	n, err := parseInt(key, v, 32)
	return int32(n), err
}

// ExtOptInt64 returns an optional integer ext field: def when it is
// missing or empty, an error when it is present but not an integer.
func (c *Command) ExtOptInt64(key string, def int64) (int64, error) {
	v := c.Ext[key]
	if v == "" {
		return def, nil
	}
	return parseInt(key, v, 64)
}

// ExtOptInt32 is ExtOptInt64 for 32-bit fields.
func (c *Command) ExtOptInt32(key string, def int32) (int32, error) {
	v := c.Ext[key]
	if v == "" {
		return def, nil
	}
	n, err := parseInt(key, v, 32)
	return int32(n), err
}

// ExtBool reports whether an ext field is "true" (case-insensitive), as
// Java's Boolean.parseBoolean does. Missing or anything else is false.
func (c *Command) ExtBool(key string) bool {
	return strings.EqualFold(c.Ext[key], "true")
}

func parseInt(key, v string, bits int) (int64, error) {
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, &FieldError{Field: key, Problem: fmt.Sprintf("%q is out of range for int%d", v, bits)}
		}
		return 0, &FieldError{Field: key, Problem: fmt.Sprintf("%q is not an integer", v)}
	}
	return n, nil
}

// Language codes of the binary header (RocketMQ LanguageCode).
var languageNames = [...]string{
	"JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER",
	"HTTP", "GO", "PHP", "OMS", "RUST", "NODE_JS",
}

const languageOther = 7

func languageName(b byte) string {
	if int(b) < len(languageNames) {
		return languageNames[b]
	}
	return "OTHER"
}

func languageByte(name string) byte {
	for i, n := range languageNames {
		if n == name {
			return byte(i)
		}
	}
	return languageOther
}

// ReadCommand reads one frame from r:
//
//	int32 totalLen | int32 serializeType<<24 | headerLen | header | body
//
// totalLen counts every byte after itself. It never allocates more than
// max bytes (DefaultMaxFrame if max <= 0) whatever the prefix says. The
// body aliases the frame buffer, which is fresh for every call.
func ReadCommand(r io.Reader, max int) (*Command, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n < 4 {
		return nil, fmt.Errorf("%w: length %d is shorter than the 4-byte header length word", ErrMalformed, n)
	}
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return decodeFrameBody(buf)
}

// DecodeCommand decodes the frame at the start of b (including its length
// prefix) and returns it with the number of bytes used. The body aliases b.
func DecodeCommand(b []byte, max int) (*Command, int, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	if len(b) < 4 {
		return nil, 0, io.ErrUnexpectedEOF
	}
	n := binary.BigEndian.Uint32(b)
	if n < 4 {
		return nil, 0, fmt.Errorf("%w: length %d is shorter than the 4-byte header length word", ErrMalformed, n)
	}
	if uint64(n) > uint64(max) {
		return nil, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	if uint64(len(b)-4) < uint64(n) {
		return nil, 0, io.ErrUnexpectedEOF
	}
	c, err := decodeFrameBody(b[4 : 4+n])
	return c, 4 + int(n), err
}

// decodeFrameBody decodes everything after the length prefix.
func decodeFrameBody(buf []byte) (*Command, error) {
	word := binary.BigEndian.Uint32(buf)
	st := byte(word >> 24)
	hl := int(word & 0xFFFFFF)
	if hl > len(buf)-4 {
		return nil, fmt.Errorf("%w: header length %d exceeds the %d bytes after it", ErrMalformed, hl, len(buf)-4)
	}
	header := buf[4 : 4+hl]
	var (
		c   *Command
		err error
	)
	switch st {
	case SerializeJSON:
		c, err = decodeJSONHeader(header)
	case SerializeBinary:
		c, err = decodeBinaryHeader(header)
	default:
		return nil, fmt.Errorf("%w: unknown serialize type %d", ErrMalformed, st)
	}
	if err != nil {
		return nil, err
	}
	c.Serialize = st
	if body := buf[4+hl:]; len(body) > 0 {
		c.Body = body
	}
	return c, nil
}

type jsonHeader struct {
	Code      int32             `json:"code"`
	Language  string            `json:"language"`
	Version   int32             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
}

func decodeJSONHeader(h []byte) (*Command, error) {
	if c, ok := fastJSONHeader(h); ok {
		return c, nil
	}
	var jh jsonHeader
	if err := json.Unmarshal(h, &jh); err != nil {
		return nil, fmt.Errorf("%w: JSON header: %w", ErrMalformed, err)
	}
	c := &Command{
		Code:     jh.Code,
		Language: jh.Language,
		Version:  jh.Version,
		Opaque:   jh.Opaque,
		Flag:     jh.Flag,
		Remark:   jh.Remark,
	}
	if len(jh.ExtFields) > 0 {
		c.Ext = jh.ExtFields
	}
	return c, nil
}

func decodeBinaryHeader(h []byte) (*Command, error) {
	if len(h) < binaryFixedLen {
		return nil, fmt.Errorf("%w: binary header is %d bytes, shorter than its %d-byte fixed part", ErrMalformed, len(h), binaryFixedLen)
	}
	c := &Command{
		Code:     int32(int16(binary.BigEndian.Uint16(h[0:]))),
		Language: languageName(h[2]),
		Version:  int32(int16(binary.BigEndian.Uint16(h[3:]))),
		Opaque:   int32(binary.BigEndian.Uint32(h[5:])),
		Flag:     int32(binary.BigEndian.Uint32(h[9:])),
	}
	p := h[13:]
	rl := int32(binary.BigEndian.Uint32(p))
	p = p[4:]
	if rl < 0 || int64(rl) > int64(len(p)) {
		return nil, fmt.Errorf("%w: binary header remark length %d, %d bytes left", ErrMalformed, rl, len(p))
	}
	c.Remark = string(p[:rl])
	p = p[rl:]
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: binary header truncated before the ext length", ErrMalformed)
	}
	el := int32(binary.BigEndian.Uint32(p))
	p = p[4:]
	if el < 0 || int64(el) != int64(len(p)) {
		return nil, fmt.Errorf("%w: binary header ext length %d, %d bytes left", ErrMalformed, el, len(p))
	}
	for len(p) > 0 {
		if len(p) < 2 {
			return nil, fmt.Errorf("%w: binary header ext truncated in a key length", ErrMalformed)
		}
		kl := int16(binary.BigEndian.Uint16(p))
		p = p[2:]
		if kl < 0 || int(kl) > len(p) {
			return nil, fmt.Errorf("%w: binary header ext key length %d, %d bytes left", ErrMalformed, kl, len(p))
		}
		k := string(p[:kl])
		p = p[kl:]
		if len(p) < 4 {
			return nil, fmt.Errorf("%w: binary header ext truncated in the length of %q", ErrMalformed, k)
		}
		vl := int32(binary.BigEndian.Uint32(p))
		p = p[4:]
		if vl < 0 || int64(vl) > int64(len(p)) {
			return nil, fmt.Errorf("%w: binary header ext value length %d of %q, %d bytes left", ErrMalformed, vl, k, len(p))
		}
		c.SetExt(k, string(p[:vl]))
		p = p[vl:]
	}
	return c, nil
}

// AppendCommand appends the frame encoding of c (length prefix included),
// with the header serialized as c.Serialize says.
func AppendCommand(dst []byte, c *Command) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	switch c.Serialize {
	case SerializeJSON:
		dst = appendJSONHeader(dst, c)
	case SerializeBinary:
		dst, err = appendBinaryHeader(dst, c)
		if err != nil {
			return dst[:start], err
		}
	default:
		return dst[:start], fmt.Errorf("compat: unknown serialize type %d", c.Serialize)
	}
	hl := len(dst) - start - 8
	if hl > 0xFFFFFF {
		return dst[:start], fmt.Errorf("compat: header is %d bytes, more than the 24-bit limit", hl)
	}
	total := 4 + hl + len(c.Body)
	if total > math.MaxInt32 {
		return dst[:start], fmt.Errorf("compat: frame is %d bytes, more than int32", total)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(total))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(c.Serialize)<<24|uint32(hl))
	return append(dst, c.Body...), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func appendJSONHeader(dst []byte, c *Command) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.Code), 10)
	if len(c.Ext) > 0 {
		dst = append(dst, `,"extFields":{`...)
		for i, k := range sortedKeys(c.Ext) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendJSONString(dst, c.Ext[k])
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(c.Flag), 10)
	dst = append(dst, `,"language":`...)
	dst = appendJSONString(dst, c.Language)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(c.Opaque), 10)
	if c.Remark != "" {
		dst = append(dst, `,"remark":`...)
		dst = appendJSONString(dst, c.Remark)
	}
	dst = append(dst, `,"serializeTypeCurrentRPC":"JSON","version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r < 0x20:
			switch r {
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xF])
			}
		case r == 0x2028 || r == 0x2029:
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			dst = append(dst, string(r)...)
		}
	}
	return append(dst, '"')
}

func appendBinaryHeader(dst []byte, c *Command) ([]byte, error) {
	if c.Code < math.MinInt16 || c.Code > math.MaxInt16 {
		return dst, fmt.Errorf("compat: code %d does not fit the binary header's int16 (use JSON)", c.Code)
	}
	if c.Version < math.MinInt16 || c.Version > math.MaxInt16 {
		return dst, fmt.Errorf("compat: version %d does not fit the binary header's int16", c.Version)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(c.Code)))
	dst = append(dst, languageByte(c.Language))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(c.Version)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Opaque))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Flag))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Remark)))
	dst = append(dst, c.Remark...)
	lenAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, k := range sortedKeys(c.Ext) {
		if len(k) > math.MaxInt16 {
			return dst, fmt.Errorf("compat: ext key of %d bytes does not fit the binary header's int16", len(k))
		}
		v := c.Ext[k]
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	return dst, nil
}
