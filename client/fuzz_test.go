package client

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseTagExpression: an expression parses to one that its own
// String parses to again, matching the same tags; a refusal is
// ErrInvalidArgument.
func FuzzParseTagExpression(f *testing.F) {
	for _, s := range []string{"*", "", "a", "TagA || TagB", " a||b ||c ", "a||", "||", "a||*", "a | b"} {
		f.Add(s, "TagA")
	}
	f.Fuzz(func(t *testing.T, s, tag string) {
		te, err := ParseTagExpression(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("%q: refusal %v is not ErrInvalidArgument", s, err)
			}
			return
		}
		again, err := ParseTagExpression(te.String())
		if err != nil {
			t.Fatalf("%q is written %q, which does not parse: %v", s, te.String(), err)
		}
		probes := []string{tag, strings.TrimSpace(tag)}
		for _, p := range strings.Split(s, "||") {
			probes = append(probes, strings.TrimSpace(p))
		}
		for _, p := range probes {
			if te.Match(p) != again.Match(p) {
				t.Fatalf("%q and its form %q disagree on tag %q", s, te.String(), p)
			}
		}
	})
}

// FuzzLoadLocalOffsets loads a broadcasting consumer's offsets file of
// arbitrary content: it loads or fails with an error naming the file,
// and a loaded store keeps taking offsets and writes a file that loads
// back to the same offsets.
func FuzzLoadLocalOffsets(f *testing.F) {
	f.Add([]byte(`{"t@g#0": 12, "t@g#1": 0}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"t@g#0": -1}`))
	dir := filepath.Join(f.TempDir(), "offsets")
	f.Fuzz(func(t *testing.T, file []byte) {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "g.offsets.json")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		lo, err := loadLocalOffsets(dir, "g")
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		q := Queue{Topic: "t", Group: "g", QueueID: 3}
		lo.set(q, 42)
		if off, ok := lo.get(q); !ok || off != 42 {
			t.Fatalf("get after set: %d, %v", off, ok)
		}
		if err := lo.persist(); err != nil {
			t.Fatal(err)
		}
		back, err := loadLocalOffsets(dir, "g")
		if err != nil {
			t.Fatalf("reload of the persisted file: %v", err)
		}
		if len(back.m) != len(lo.m) {
			t.Fatalf("reload: %d offsets, persisted %d", len(back.m), len(lo.m))
		}
		for k, v := range lo.m {
			if back.m[k] != v {
				t.Fatalf("reload: %s is %d, persisted %d", k, back.m[k], v)
			}
		}
	})
}
