package sql92

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"a > 5 AND b = 'x' OR c IN ('p','q')",
	"a=3 and b<>4 And c>5 AND d<=4",
	"(a not in ('6', '4', '5')) or (b in ('3', '4', '5'))",
	"(a between 2 and 10) AND (b not between 6 and 9)",
	"a is null OR a is not null",
	"a=3 and b contains 'xxx' and c not contains 'xxx'",
	"a startswith 'x' or a not startswith 'y' or a endswith 'z' or a not endswith ''",
	"TAGS is not null and TAGS='''''tag'''''",
	"NOT a = 'x' AND NOT (b = 1.5e3) AND -c < -.5",
	"a = TRUE OR b = FALSE OR NULL OR (a > 1) = (b > 1)",
	"x = 2147483648 OR y = 9223372036854775807L OR z = 0",
	"a = --1 -- c\n AND /* c */ b = 1",
	"a between 10 and 0",
	"a = 'unterminated",
	"(((a)))",
}

// FuzzParse checks that Parse never panics, refuses only with a
// *SyntaxError inside the input, and that an accepted expression's
// canonical form parses to the same canonical form, reads the same
// properties and matches the same messages. Match must never panic on any
// properties: vals gives values ("~" for missing) to the expression's
// properties in turn.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, "10,x,~,true,5.5,NaN, 7 ,0x1p3")
	}
	f.Fuzz(func(t *testing.T, expr, vals string) {
		e, err := Parse(expr)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): %T %v, want *SyntaxError", expr, err, err)
			}
			if se.Pos < 0 || se.Pos > len(expr) || se.Msg == "" {
				t.Fatalf("Parse(%q): bad error %+v", expr, se)
			}
			return
		}
		canon := e.String()
		e2, err := parse(canon, math.MaxInt)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", expr, canon, err)
		}
		if e2.String() != canon {
			t.Fatalf("Parse(%q) = %q, which re-parses to %q", expr, canon, e2.String())
		}
		if !slices.Equal(e.Properties(), e2.Properties()) {
			t.Fatalf("%q reads %v, its canonical form %v", expr, e.Properties(), e2.Properties())
		}
		values := strings.Split(vals, ",")
		p := props{}
		for i, name := range e.Properties() {
			if v := values[i%len(values)]; v != "~" {
				p[name] = v
			}
		}
		if got, want := truth(e2, p), truth(e, p); got != want {
			t.Fatalf("%q over %v is %s, its canonical form %q %s", expr, p, want, canon, got)
		}
		e.Match(p.get)
		e.Match(nil)
	})
}
