package raftlog

import (
	"io"
	"os"
	"path/filepath"
	"sort"
)

// File is the subset of *os.File the store uses.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
	Stat() (os.FileInfo, error)
}

// VFS is the file-system seam. Tests substitute a fake that injects errors.
type VFS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	RemoveAll(name string) error
	Rename(oldpath, newpath string) error
	// ReadDir returns the sorted names of the entries in dir.
	ReadDir(dir string) ([]string, error)
	MkdirAll(dir string, perm os.FileMode) error
	// SyncDir fsyncs a directory so creates, renames and removes in it are durable.
	SyncDir(dir string) error
	Stat(name string) (os.FileInfo, error)
}

// Step domains of the rmqfault build's crash events (fault_on.go): the
// CommitLog's files and snapshot sinks.
const (
	faultLog      = "log"
	faultSnapshot = "snapshot"
)

type osFS struct{}

// OSFS returns the VFS backed by package os.
func OSFS() VFS { return osFS{} }

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// osFile uses fdatasync for Sync on Linux.
type osFile struct{ *os.File }

func (f osFile) Sync() error                      { return datasync(f.File) }
func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) RemoveAll(name string) error          { return os.RemoveAll(name) }
func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error {
	return os.MkdirAll(dir, perm)
}
func (osFS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}
