package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		{Code: 7, ID: 1, Body: []byte("hello")},
		{Flags: FlagResponse, Code: 0, ID: 1<<63 + 5, Body: []byte{}},
		{Flags: FlagOneway, Code: 65535, ID: 0, Body: bytes.Repeat([]byte{0xab}, 70000)},
	}
	var buf []byte
	for _, f := range frames {
		buf = AppendFrame(buf, f)
	}
	r := bytes.NewReader(buf)
	rest := buf
	for i, want := range frames {
		got, err := ReadFrame(r, DefaultMaxFrame)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("ReadFrame %d (-want +got):\n%s", i, diff)
		}
		got2, n, err := DecodeFrame(rest, DefaultMaxFrame)
		if err != nil {
			t.Fatalf("DecodeFrame %d: %v", i, err)
		}
		if diff := cmp.Diff(want, got2); diff != "" {
			t.Fatalf("DecodeFrame %d (-want +got):\n%s", i, diff)
		}
		rest = rest[n:]
	}
	if _, err := ReadFrame(r, DefaultMaxFrame); err != io.EOF {
		t.Fatalf("after the last frame: got %v, want io.EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	good := AppendFrame(nil, Frame{Code: 1, ID: 2, Body: []byte("abc")})
	badVersion := append([]byte(nil), good...)
	badVersion[4] = 99
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"too large", good, HeaderSize + 2, ErrFrameTooLarge},
		{"huge prefix", []byte{0xff, 0xff, 0xff, 0xff}, DefaultMaxFrame, ErrFrameTooLarge},
		{"short header", []byte{0, 0, 0, 3, 1, 2, 3}, DefaultMaxFrame, ErrMalformed},
		{"bad version", badVersion, DefaultMaxFrame, ErrMalformed},
		{"truncated", good[:len(good)-1], DefaultMaxFrame, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadFrame(bytes.NewReader(tc.in), tc.max); !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame: got %v, want %v", err, tc.want)
			}
			if _, _, err := DecodeFrame(tc.in, tc.max); !errors.Is(err, tc.want) {
				t.Fatalf("DecodeFrame: got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add(AppendFrame(nil, Frame{Code: 1, ID: 2, Body: []byte("abc")}))
	f.Add(AppendFrame(nil, Frame{Flags: FlagResponse, Code: 3}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add(AppendFrame(nil, Frame{Code: 10, ID: 4, Body: []byte{0x80}, Auth: &Auth{AccessKey: "ak1", Timestamp: 1700000000000}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := DecodeFrame(b, 1<<16)
		if err != nil {
			return
		}
		if n > len(b) || len(fr.Body) > n {
			t.Fatalf("decoded %d bytes from %d", n, len(b))
		}
		again := AppendFrame(nil, fr)
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs")
		}
	})
}
