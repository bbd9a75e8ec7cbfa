package msgpackguard

import (
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestCheckLengths(t *testing.T) {
	valid, err := msgpack.Marshal(map[string]any{"a": []int{1, 2, 3}, "b": "str", "c": []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckLengths(valid); err != nil {
		t.Fatalf("valid input: got %v, want nil", err)
	}
	bad := map[string][]byte{
		"array32 of 4e9":  {0xdd, 0xee, 0x6b, 0x28, 0x00},
		"map32 of 4e9":    {0xdf, 0xee, 0x6b, 0x28, 0x00},
		"str32 of 4 GiB":  {0xdb, 0xff, 0xff, 0xff, 0xff},
		"fixarray of 15":  {0x9f, 0x01},
		"truncated ext8":  {0xc7, 0x05, 0x01},
		"reserved byte":   {0xc1},
		"empty input":     {},
		"nested too long": {0x91, 0xdc, 0x00, 0x10},
	}
	for name, b := range bad {
		if err := CheckLengths(b); !errors.Is(err, ErrBadLength) {
			t.Errorf("%s: got %v, want ErrBadLength", name, err)
		}
		var v any
		if err := Unmarshal(b, &v); !errors.Is(err, ErrBadLength) {
			t.Errorf("%s: Unmarshal got %v, want ErrBadLength", name, err)
		}
	}
}
