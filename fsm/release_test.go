package fsm

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mappedRSS sums the resident bytes of this process's mappings whose file
// path contains dir, from /proc/self/smaps (Linux only).
func mappedRSS(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			in = len(fields) >= 6 && strings.Contains(fields[5], dir)
		case in && fields[0] == "Rss:":
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestSyncReleasesMappedPages checks that Sync drops the consume-queue and
// index pages behind the writers from the process (so RSS does not grow
// with the data written) and that nothing is lost: units and index
// lookups read the same before and after, and after a reopen.
func TestSyncReleasesMappedPages(t *testing.T) {
	dir := t.TempDir()
	log := &memLog{}
	h := &harness{t: t, f: newFSM(t, dir, DefaultUnitsPerFile, log), log: log}
	h.mustCmd(CreateTopic{Name: "a", Queues: 1, Time: 10})
	a := h.topicID("a")
	const batches, per = 40, 100 // 4000 units, 109 KiB of one queue file
	for b := 0; b < batches; b++ {
		msgs := make([]Message, per)
		for i := range msgs {
			msgs[i] = msg("a", a, 0, strconv.Itoa(b*per+i))
			msgs[i].ID = []byte(fmt.Sprintf("id-%06d", b*per+i))
		}
		h.send(int64(1000+b), msgs...)
	}
	before := dump(t, h.f)
	if err := h.f.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if runtime.GOOS == "linux" {
		page := int64(os.Getpagesize())
		// What stays mapped: the page each writer is in (and the index
		// header's, which the next entry rewrites).
		if got := mappedRSS(t, dir+"/cq/"); got > page {
			t.Errorf("consume-queue pages mapped after Sync got %d bytes, want at most one page (%d)", got, page)
		}
		if got := mappedRSS(t, dir+"/index/"); got > 2*page {
			t.Errorf("index pages mapped after Sync got %d bytes, want at most two pages (%d)", got, 2*page)
		}
	}
	if diff := cmp.Diff(before, dump(t, h.f)); diff != "" {
		t.Fatalf("state after Sync (-before +after):\n%s", diff)
	}
	for _, i := range []int{0, per*batches/2 + 7, per*batches - 1} {
		if refs := h.f.LookupID([]byte(fmt.Sprintf("id-%06d", i)), 4); len(refs) == 0 {
			t.Fatalf("LookupID(id-%06d) after Sync found nothing", i)
		}
	}
	// A restart: the same files, opened from a snapshot, read the same.
	snap := snapshotBytes(t, h.f)
	if err := h.f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	f2 := newFSM(t, dir, DefaultUnitsPerFile, log)
	if err := restore(t, f2, snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if diff := cmp.Diff(before, dump(t, f2)); diff != "" {
		t.Fatalf("state after reopen (-before +after):\n%s", diff)
	}
}
