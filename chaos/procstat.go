package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ReadProc reads /proc for pid: its command name, resident memory and
// open file descriptors.
func ReadProc(pid int) (comm string, rssKiB int64, fds int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "", 0, 0, err
	}
	comm = strings.TrimSpace(string(b))
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return comm, 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := false
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			rssKiB, err = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			found = err == nil
		}
	}
	if !found {
		return comm, 0, 0, fmt.Errorf("chaos: pid %d has no VmRSS (exited, not reaped yet)", pid)
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return comm, rssKiB, 0, err
	}
	return comm, rssKiB, len(ents), nil
}

// SampleProcs writes a CSV line per running process of c every interval
// until ctx ends: time,elapsed_s,process,pid,rss_kib,fds.
func SampleProcs(ctx context.Context, c *Cluster, out io.Writer, every time.Duration) error {
	// A broker's pid is ip netns exec's until it execs the binary: only
	// samples of the binary itself count.
	want := filepath.Base(c.cfg.Bin)
	if len(want) > 15 {
		want = want[:15] // the kernel's comm length
	}
	start := time.Now()
	if _, err := fmt.Fprintln(out, "time,elapsed_s,process,pid,rss_kib,fds"); err != nil {
		return err
	}
	for {
		pids := c.Pids()
		names := make([]string, 0, len(pids))
		for n := range pids {
			names = append(names, n)
		}
		sort.Strings(names)
		now := time.Now()
		for _, n := range names {
			comm, rss, fds, err := ReadProc(pids[n])
			if err != nil || comm != want {
				continue // exited between the listing and the read, or not exec'd yet
			}
			if _, err := fmt.Fprintf(out, "%s,%.1f,%s,%d,%d,%d\n", now.Format(time.RFC3339), now.Sub(start).Seconds(), n, pids[n], rss, fds); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every): // sampling period
		}
	}
}
