package raftlog

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// headerFailFS fails the header write of new segments with ENOSPC, after
// writing half of it, while armed.
type headerFailFS struct {
	VFS
	armed    atomic.Bool
	keepTorn atomic.Bool // Remove of a .seg file fails (a crash before the cleanup)
}

func (fs *headerFailFS) Remove(name string) error {
	if fs.keepTorn.Load() && strings.HasSuffix(name, ".seg") {
		return syscall.EIO
	}
	return fs.VFS.Remove(name)
}

func (fs *headerFailFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := fs.VFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &headerFailFile{File: f, fs: fs, seg: strings.HasSuffix(name, ".seg")}, nil
}

type headerFailFile struct {
	File
	fs  *headerFailFS
	seg bool
}

func (f *headerFailFile) WriteAt(p []byte, off int64) (int, error) {
	if f.seg && off == 0 && f.fs.armed.Load() {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, syscall.ENOSPC
	}
	return f.File.WriteAt(p, off)
}

// TestRollENOSPC: a full disk while a roll creates the next segment fails
// the store (fail-stop) without leaving a segment that has no header:
// the log reopens with every stored entry and takes appends again.
func TestRollENOSPC(t *testing.T) {
	fs := &headerFailFS{VFS: OSFS()}
	cfg := testConfig(t, t.TempDir())
	cfg.FS = fs
	s := openStore(t, cfg)
	mustStore(t, s, mkLogs(1, 10, 1, 1000))
	fs.armed.Store(true)
	var err error
	var last uint64 = 10
	for i := uint64(11); i < 200 && err == nil; i++ {
		if err = s.StoreLogs(mkLogs(i, i, 1, 1000)); err == nil {
			last = i
		}
	}
	var fse *FailStopError
	if !errors.As(err, &fse) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("StoreLogs across a roll got %v, want a *FailStopError wrapping ENOSPC", err)
	}
	fs.armed.Store(false)
	s = reopen(t, s, cfg)
	wantBounds(t, s, 1, last)
	for i := uint64(1); i <= last; i++ {
		checkEntry(t, s, mkLog(i, 1, 1000))
	}
	mustStore(t, s, mkLogs(last+1, last+100, 1, 1000))
	wantBounds(t, s, 1, last+100)
}

// TestOpenDropsTornSegmentCreate: a crash while a roll created the next
// segment (after the previous one was sealed, before its header was
// written or the failed file removed) leaves a last segment shorter than
// a header or with a zero header. It holds no record: Open removes it
// instead of reporting corruption, the sealed segment before it is the
// active one again, and appends go on there.
func TestOpenDropsTornSegmentCreate(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte // nil: what the failed header write left
	}{{"half header", nil}, {"empty", []byte{}}, {"zero header", make([]byte, segHeader)}} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &headerFailFS{VFS: OSFS()}
			cfg := testConfig(t, t.TempDir())
			cfg.FS = fs
			s := openStore(t, cfg)
			mustStore(t, s, mkLogs(1, 10, 1, 1000))
			fs.armed.Store(true)
			fs.keepTorn.Store(true) // the crash comes before the cleanup
			last := uint64(10)
			for i := uint64(11); i < 200; i++ {
				if s.StoreLogs(mkLogs(i, i, 1, 1000)) != nil {
					break
				}
				last = i
			}
			torn := filepath.Join(cfg.Dir, segName(last+1))
			if tc.data != nil {
				if err := os.WriteFile(torn, tc.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if st, err := os.Stat(torn); err != nil || st.Size() > segHeader {
				t.Fatalf("torn segment %s: %v, %v", torn, st, err)
			}
			fs.armed.Store(false)
			fs.keepTorn.Store(false)
			s.Close()
			s = openStore(t, cfg)
			wantBounds(t, s, 1, last)
			if _, err := os.Stat(torn); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("torn segment still there: %v", err)
			}
			// A new leader's first entry there is small (a no-op): it
			// fits into the segment sealed before the crash, which must
			// take it at its end. It used to be zero-filled from offset
			// 0 (a sealed segment loaded from its .idx had no size), so
			// every entry in it was gone.
			mustStore(t, s, mkLogs(last+1, last+1, 2, 10))
			mustStore(t, s, mkLogs(last+2, last+10, 2, 1000))
			s = reopen(t, s, cfg)
			for i := uint64(1); i <= last; i++ {
				checkEntry(t, s, mkLog(i, 1, 1000))
			}
			checkEntry(t, s, mkLog(last+1, 2, 10))
			checkEntry(t, s, mkLog(last+5, 2, 1000))
		})
	}
}

// TestENOSPCRealTmpfs fills a real 4 MiB tmpfs with log entries (sync
// mode, rolls and preallocation included) until the disk is full: the
// failing StoreLogs is a fail-stop ENOSPC, every entry acknowledged before
// it is intact after space is freed and the store reopened, and appends
// go on. Skipped where a tmpfs cannot be mounted (not root).
func TestENOSPCRealTmpfs(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, filepath.Join(dir, "log"))
	cfg.SegmentSize = 256 << 10
	s := openStore(t, cfg)
	var last uint64
	var err error
	for i := uint64(1); i < 10000; i += 4 {
		if err = s.StoreLogs(mkLogs(i, i+3, 1, 3000)); err != nil {
			break
		}
		last = i + 3
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("StoreLogs on a full tmpfs got %v, want ENOSPC", err)
	}
	t.Logf("full after %d entries: %v", last, err)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, cfg)
	first, got := bounds(t, s)
	if first != 1 || got < last {
		t.Fatalf("bounds after reopen [%d, %d], want [1, >= %d]", first, got, last)
	}
	for i := uint64(1); i <= got; i++ {
		checkEntry(t, s, mkLog(i, 1, 3000))
	}
	mustStore(t, s, mkLogs(got+1, got+20, 1, 3000))
}
