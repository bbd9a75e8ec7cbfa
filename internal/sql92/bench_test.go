package sql92

import "testing"

// A message with 10 properties, looked up the way a broker holding them
// in a map would.
var benchProps = props{
	"a": "10", "b": "x", "c": "q", "d": "4.5", "e": "hello world",
	"f": "true", "g": "-3", "TAGS": "tagA", "KEYS": "order-1001", "h": "v7",
}

func benchMatch(b *testing.B, expr string, want bool) {
	e, err := Parse(expr)
	if err != nil {
		b.Fatal(err)
	}
	get := benchProps.get
	if got := e.Match(get); got != want {
		b.Fatalf("Match(%q): got %v, want %v", expr, got, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Match(get)
	}
}

func BenchmarkMatch(b *testing.B) {
	b.Run("brief", func(b *testing.B) {
		benchMatch(b, "a > 5 AND b = 'x' OR c IN ('p','q')", true)
	})
	b.Run("ten-properties", func(b *testing.B) {
		benchMatch(b, "a > 5 AND b = 'x' AND c IN ('p','q') AND d BETWEEN 1.0 AND 5.0 AND e CONTAINS 'wor'"+
			" AND f = TRUE AND g < 0 AND TAGS IN ('tagA','tagB') AND KEYS STARTSWITH 'order-'"+
			" AND h IN ('v0','v1','v2','v3','v4','v5','v6','v7','v8','v9')", true)
	})
	b.Run("no-match-missing", func(b *testing.B) {
		benchMatch(b, "z > 5 AND y = 'x'", false)
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("a > 5 AND b = 'x' OR c IN ('p','q')"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupBaseline makes the property lookups of Match/brief
// (a, b, c) and nothing else: the share of Match that is the caller's map.
// On a loaded machine, compare Match with it rather than with absolute
// numbers.
func BenchmarkLookupBaseline(b *testing.B) {
	get := benchProps.get
	n := 0
	for b.Loop() {
		for _, name := range [...]string{"a", "b", "c"} {
			if _, ok := get(name); ok {
				n++
			}
		}
	}
	if n == 0 {
		b.Fatal("no lookups")
	}
}
