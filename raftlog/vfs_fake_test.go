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
