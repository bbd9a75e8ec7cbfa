//go:build rmqfault

package raftlog

import (
	"fmt"
	"os"

	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/internal/fault"
)

// The rmqfault build: the default file system injects the faults that
// the RMQ_FAULT_ environment or control file asks for (package
// internal/fault), and storage events report to the same Injector.

func defaultFS() VFS {
	if in := fault.Get(); in != nil {
		return injectFS{VFS: osFS{}, in: in}
	}
	return osFS{}
}

// faultEvent reports a storage event to the injector of s's file system.
func (s *Store) faultEvent(name string, kinds ...string) (end func()) {
	if fs, ok := s.fs.(injectFS); ok {
		return fs.in.Event(name, kinds...)
	}
	return noFault
}

func noFault() {}

// faultSink makes a snapshot sink's writes and commit steps of events.
func (s *Store) faultSink(sink raft.SnapshotSink) raft.SnapshotSink {
	if fs, ok := s.fs.(injectFS); ok {
		return &faultySink{SnapshotSink: sink, in: fs.in}
	}
	return sink
}

// injectFS counts mutating operations as steps of an armed crash event,
// crashes before the due one (a write half done), and delays or fails
// fsyncs.
type injectFS struct {
	VFS
	in *fault.Injector
}

// step crashes if the armed event is due at op on path.
func (fs injectFS) step(op, path string) {
	if fs.in.Step(faultLog, op, path) {
		fs.in.Crash(op + " " + path)
	}
}

func (fs injectFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&os.O_CREATE != 0 {
		fs.step("create", name)
	}
	f, err := fs.VFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &injectFile{File: f, fs: fs, path: name}, nil
}

func (fs injectFS) Remove(name string) error {
	fs.step("remove", name)
	return fs.VFS.Remove(name)
}

func (fs injectFS) RemoveAll(name string) error {
	fs.step("remove-all", name)
	return fs.VFS.RemoveAll(name)
}

func (fs injectFS) Rename(oldpath, newpath string) error {
	fs.step("rename", oldpath+" -> "+newpath)
	return fs.VFS.Rename(oldpath, newpath)
}

func (fs injectFS) MkdirAll(dir string, perm os.FileMode) error {
	fs.step("mkdir", dir)
	return fs.VFS.MkdirAll(dir, perm)
}

func (fs injectFS) SyncDir(dir string) error {
	fs.step("syncdir", dir)
	if err := fs.in.Sync(faultLog, dir); err != nil {
		return err
	}
	return fs.VFS.SyncDir(dir)
}

type injectFile struct {
	File
	fs   injectFS
	path string
}

// half writes the first half of p (at off, or appended when off < 0) and
// crashes: a process killed inside write(2).
func (f *injectFile) half(p []byte, off int64) {
	n := len(p) / 2
	if off >= 0 {
		_, _ = f.File.WriteAt(p[:n], off)
	} else {
		_, _ = f.File.Write(p[:n])
	}
	f.fs.in.Crash(fmt.Sprintf("write %s at %d: %d of %d bytes written", f.path, off, n, len(p)))
}

func (f *injectFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.in.Step(faultLog, "write", fmt.Sprintf("%s@%d", f.path, off)) {
		f.half(p, off)
	}
	return f.File.WriteAt(p, off)
}

func (f *injectFile) Write(p []byte) (int, error) {
	if f.fs.in.Step(faultLog, "write", f.path) {
		f.half(p, -1)
	}
	return f.File.Write(p)
}

func (f *injectFile) Truncate(size int64) error {
	f.fs.step("truncate", f.path)
	return f.File.Truncate(size)
}

func (f *injectFile) Sync() error {
	f.fs.step("sync", f.path)
	if err := f.fs.in.Sync(faultLog, f.path); err != nil {
		return err
	}
	return f.File.Sync()
}

// faultySink counts a snapshot sink's writes and its commit (Close) as
// steps of snapshot and install events.
type faultySink struct {
	raft.SnapshotSink
	in *fault.Injector
}

func (s *faultySink) Write(p []byte) (int, error) {
	if s.in.Step(faultSnapshot, "snapshot-write", s.ID()) {
		n := len(p) / 2
		_, _ = s.SnapshotSink.Write(p[:n])
		s.in.Crash(fmt.Sprintf("snapshot-write %s: %d of %d bytes written", s.ID(), n, len(p)))
	}
	return s.SnapshotSink.Write(p)
}

func (s *faultySink) Close() error {
	if s.in.Step(faultSnapshot, "snapshot-commit", s.ID()) {
		s.in.Crash("snapshot-commit " + s.ID())
	}
	return s.SnapshotSink.Close()
}
