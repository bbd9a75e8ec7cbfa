package broker

import (
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// statDisk's ratio is df's Use% (used against used plus available), not
// 1 - available/total, which counts root's reserved blocks as used.
func TestStatDiskMatchesDF(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("df", "-P", dir).Output()
	if err != nil {
		t.Skipf("df not available: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(fields) < 5 {
		t.Fatalf("unexpected df output %q", out)
	}
	pcent, err := strconv.Atoi(strings.TrimSuffix(fields[4], "%"))
	if err != nil {
		t.Fatalf("df Use%% %q: %v", fields[4], err)
	}
	u, err := statDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	// df rounds up; other programs may write between the two readings.
	if got := u.Ratio() * 100; math.Abs(got-float64(pcent)) > 1.5 {
		t.Fatalf("statDisk says %.1f%% used, df says %d%%", got, pcent)
	}
}
