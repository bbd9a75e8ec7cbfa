package raftlog

import (
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

var errInjected = errors.New("injected I/O error")

// faultFS wraps the OS file system and fails writes or syncs on demand.
type faultFS struct {
	VFS
	failWrite atomic.Bool
	failSync  atomic.Bool
	mu        sync.Mutex
	syncs     int
}

func newFaultFS() *faultFS { return &faultFS{VFS: OSFS()} }

func (fs *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := fs.VFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, fs: fs}, nil
}

func (fs *faultFS) SyncDir(dir string) error {
	if fs.failSync.Load() {
		return errInjected
	}
	return fs.VFS.SyncDir(dir)
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.failWrite.Load() {
		// A partial write, as a full disk would produce.
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, errInjected
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	f.fs.syncs++
	f.fs.mu.Unlock()
	if f.fs.failSync.Load() {
		return errInjected
	}
	return f.File.Sync()
}

// renameFS fails renames whose target ends with failSuffix.
type renameFS struct {
	VFS
	failSuffix atomic.Value // string
}

func (fs *renameFS) Rename(oldpath, newpath string) error {
	if s, _ := fs.failSuffix.Load().(string); s != "" && strings.HasSuffix(newpath, s) {
		return errInjected
	}
	return fs.VFS.Rename(oldpath, newpath)
}

// noSyncFS is the OS file system without fsync, for fuzzing at speed.
type noSyncFS struct{ VFS }

func (fs noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := fs.VFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }

// slowFreeFS makes giving a deleted segment's blocks back slow, the way it
// is on ext4 with online discard (about 0.6 s per GiB on the development
// VM). Blocks are freed by the call that drops a .seg file's last
// reference: Remove with no descriptor open, or Truncate/Close of a
// descriptor whose name was removed. While held, such a call signals
// freeing and waits for release.
type slowFreeFS struct {
	VFS
	mu      sync.Mutex
	open    map[string]int  // open descriptors per path
	removed map[string]bool // names removed while a descriptor was open
	held    bool
	gate    chan struct{} // closed by release
	freeing chan string   // buffered: the path whose blocks are being freed
}

func newSlowFreeFS() *slowFreeFS {
	return &slowFreeFS{VFS: OSFS(), open: map[string]int{}, removed: map[string]bool{},
		gate: make(chan struct{}), freeing: make(chan string, 16)}
}

// hold makes every later free wait for release.
func (fs *slowFreeFS) hold() {
	fs.mu.Lock()
	fs.held = true
	fs.mu.Unlock()
}

// release lets waiting and later frees through. Idempotent.
func (fs *slowFreeFS) release() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.held {
		fs.held = false
		close(fs.gate)
	}
}

func (fs *slowFreeFS) free(path string) {
	if !strings.HasSuffix(path, ".seg") {
		return
	}
	fs.mu.Lock()
	held := fs.held
	fs.mu.Unlock()
	if !held {
		return
	}
	select {
	case fs.freeing <- path:
	default:
	}
	<-fs.gate
}

func (fs *slowFreeFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := fs.VFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	fs.mu.Lock()
	fs.open[name]++
	fs.mu.Unlock()
	return &slowFreeFile{File: f, fs: fs, path: name}, nil
}

func (fs *slowFreeFS) Remove(name string) error {
	fs.mu.Lock()
	inUse := fs.open[name] > 0
	if inUse {
		fs.removed[name] = true
	}
	fs.mu.Unlock()
	if err := fs.VFS.Remove(name); err != nil {
		return err
	}
	if !inUse {
		fs.free(name)
	}
	return nil
}

type slowFreeFile struct {
	File
	fs   *slowFreeFS
	path string
}

func (f *slowFreeFile) unlinked() bool {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return f.fs.removed[f.path]
}

func (f *slowFreeFile) Truncate(size int64) error {
	if f.unlinked() {
		f.fs.free(f.path)
	}
	return f.File.Truncate(size)
}

func (f *slowFreeFile) Close() error {
	f.fs.mu.Lock()
	f.fs.open[f.path]--
	last := f.fs.open[f.path] == 0 && f.fs.removed[f.path]
	if last {
		delete(f.fs.removed, f.path)
	}
	f.fs.mu.Unlock()
	if last {
		f.fs.free(f.path)
	}
	return f.File.Close()
}
