package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
)

// A view is one command's result. --output table calls its table method;
// --output json encodes the same value, so both formats carry the same
// fields.
type view interface {
	table(w io.Writer)
}

// render writes v to stdout in the format chosen by --output.
func render(c *cli.Context, v view) error {
	w := c.App.Writer
	if jsonOutput(c) {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	v.table(tw)
	return tw.Flush()
}

func jsonOutput(c *cli.Context) bool { return c.String("output") == "json" }

// row writes one tab-separated table row.
func row(w io.Writer, cells ...any) {
	for i, v := range cells {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, v)
	}
	fmt.Fprintln(w)
}

// timeCell renders a time for a table: UTC, millisecond precision, "-"
// when unset.
func timeCell(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// textCell renders s for a one-line cell: "-" when empty, quoted when it
// holds anything that would break the line.
func textCell(s string) string {
	if s == "" {
		return "-"
	}
	if !printable(s) {
		return strconv.Quote(s)
	}
	return s
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}

// permString renders RocketMQ perm bits (4 read, 2 write) as "6 (rw)".
func permString(p uint8) string {
	var b strings.Builder
	if p&4 != 0 {
		b.WriteByte('r')
	} else {
		b.WriteByte('-')
	}
	if p&2 != 0 {
		b.WriteByte('w')
	} else {
		b.WriteByte('-')
	}
	return fmt.Sprintf("%d (%s)", p, b.String())
}
