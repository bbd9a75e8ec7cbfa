package wire

import (
	"os"
	"regexp"
	"testing"
)

// TestDocListsEveryCode keeps doc.go's table of request codes complete:
// every Code constant of codes.go appears in it with its number.
func TestDocListsEveryCode(t *testing.T) {
	codes, err := os.ReadFile("codes.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	defs := regexp.MustCompile(`(?m)^\s+(Code\w+)\s+uint16 = (\d+)`).FindAllStringSubmatch(string(codes), -1)
	if len(defs) == 0 {
		t.Fatal("no request codes found in codes.go")
	}
	for _, d := range defs {
		row := regexp.MustCompile(`(?m)^//\s+` + d[2] + `\s+` + d[1] + `\s`)
		if !row.Match(doc) {
			t.Errorf("doc.go's request code table has no row for %s (%s)", d[1], d[2])
		}
	}
}
