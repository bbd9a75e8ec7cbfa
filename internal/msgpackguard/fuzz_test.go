package msgpackguard

import (
	"errors"
	"reflect"
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

type wide struct {
	A string            `msgpack:"a"`
	B [8]int64          `msgpack:"b"`
	C map[string]string `msgpack:"c"`
	N *wide             `msgpack:"n"`
}

// fuzzTarget has no interface field: msgpack v5.4.1 panics decoding a
// repeated key into an interface field that already holds a slice
// (reflect.Value.Set using unaddressable value; found by this fuzzer).
// No body rmq decodes has an interface field.
type fuzzTarget struct {
	Items []wide           `msgpack:"i"`
	Words []string         `msgpack:"w"`
	ByKey map[string]*wide `msgpack:"k"`
}

// FuzzUnmarshalBounded: whatever it accepts decodes without allocating
// more than a fixed multiple of the input (here, into a struct with
// large slice elements and into an interface); whatever it refuses wraps
// one of the package's two errors; CheckLengths accepts everything
// UnmarshalBounded does.
func FuzzUnmarshalBounded(f *testing.F) {
	for _, v := range []any{
		fuzzTarget{Items: []wide{{A: "a", C: map[string]string{"k": "v"}, N: &wide{A: "n"}}}, Words: []string{"x", ""}},
		map[string]any{"x": []any{1, "s", map[string]any{"m": nil}}},
		fuzzTarget{ByKey: map[string]*wide{"k": nil, "j": {}}},
		map[string]any{"i": []any{nil, nil, nil}},
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte{0x81, 0xa1, 'i', 0xdc, 0x00, 0x03, 0xc0, 0x80, 0x90}, false)
	f.Fuzz(func(t *testing.T, b []byte, intoAny bool) {
		limit := 2*BoundedSlack + 64*uint64(len(b))
		var err error
		var n uint64
		if intoAny {
			var v any
			n = allocated(func() { err = UnmarshalBounded(b, &v, 32) })
		} else {
			var v fuzzTarget
			n = allocated(func() { err = UnmarshalBounded(b, &v, 32) })
		}
		if n > limit {
			t.Fatalf("decoding %d bytes allocated %d, limit %d (err %v)", len(b), n, limit, err)
		}
		if cerr := CheckLengths(b); err == nil && cerr != nil {
			t.Fatalf("UnmarshalBounded accepted what CheckLengths refuses: %v", cerr)
		} else if cerr != nil && !errors.Is(cerr, ErrBadLength) {
			t.Fatalf("CheckLengths: %v does not wrap ErrBadLength", cerr)
		}
	})
}

func TestUnmarshalBoundedRefusesHollowArrays(t *testing.T) {
	// {i: [65536 nils]}: each nil is a zero 96-byte wide.
	n := 1 << 16
	b := append([]byte{0x81, 0xa1, 'i', 0xdd, 0, 1, 0, 0}, make([]byte, n)...)
	for i := range n {
		b[8+i] = 0xc0
	}
	var v fuzzTarget
	if err := UnmarshalBounded(b, &v, 32); !errors.Is(err, ErrTooManyElements) {
		t.Fatalf("got %v, want ErrTooManyElements", err)
	}
	if err := Unmarshal(b, &v); err != nil || len(v.Items) != n {
		t.Fatalf("Unmarshal (no element bound) got %d items, %v", len(v.Items), err)
	}
	if got, want := maxElemSize(typeOf[fuzzTarget]()), uint64(reflect.TypeFor[wide]().Size()); got != want {
		t.Fatalf("largest element of fuzzTarget: got %d bytes, want %d (a wide)", got, want)
	}
}

func typeOf[T any]() reflect.Type { return reflect.TypeOf((*T)(nil)) }
