package raftlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Install swap layout, next to the live directory <dir>:
//
//	<dir>.install/          staged log of a shipped snapshot
//	<dir>.install/INSTALL   marker naming the snapshot ID, written before the
//	                        snapshot is committed; it moves with the directory
//	<dir>.old/              the previous live log during the swap
const (
	installSuffix = ".install"
	oldSuffix     = ".old"
	markerName    = "INSTALL"
)

func (s *Store) stagingDir() string { return s.dir + installSuffix }

func (s *Store) exists(path string) bool {
	_, err := s.fs.Stat(path)
	return err == nil
}

// recoverInstall runs at the start of Open and finishes every interrupted
// swap whose outcome is already decided (see doc.go, crash cases):
//   - <dir>/INSTALL exists: the swap renamed the staged dir in; clean up.
//   - <dir> is missing and <dir>.install/INSTALL exists: the first rename
//     happened, which is only done after the snapshot was committed; roll on.
//   - <dir>.install without a marker: the install never committed; discard.
//
// <dir>.install with a marker next to a live <dir> is undecided and left to
// NewSnapshotStore, which checks whether the snapshot was committed.
func (s *Store) recoverInstall() error {
	staging, old := s.stagingDir(), s.dir+oldSuffix
	if !s.exists(s.dir) && s.exists(filepath.Join(staging, markerName)) {
		s.log.Warn("rolling interrupted snapshot install forward", "dir", staging)
		if err := s.fs.Rename(staging, s.dir); err != nil {
			return fmt.Errorf("raftlog: finish install: %w", err)
		}
		if err := s.fs.SyncDir(filepath.Dir(s.dir)); err != nil {
			return fmt.Errorf("raftlog: finish install: %w", err)
		}
	}
	if err := s.cleanupSwap(); err != nil {
		return err
	}
	if s.exists(staging) && !s.exists(filepath.Join(staging, markerName)) {
		s.log.Warn("discarding uncommitted snapshot install", "dir", staging)
		if err := s.fs.RemoveAll(staging); err != nil {
			return fmt.Errorf("raftlog: discard install: %w", err)
		}
	}
	if s.exists(old) && !s.exists(staging) {
		return s.fs.RemoveAll(old)
	}
	return nil
}

// cleanupSwap removes the marker from a swapped-in dir and the old log.
func (s *Store) cleanupSwap() error {
	marker := filepath.Join(s.dir, markerName)
	if !s.exists(marker) {
		return nil
	}
	if err := s.fs.RemoveAll(s.dir + oldSuffix); err != nil {
		return fmt.Errorf("raftlog: remove old log: %w", err)
	}
	if err := s.fs.Remove(marker); err != nil {
		return fmt.Errorf("raftlog: remove install marker: %w", err)
	}
	return s.fs.SyncDir(s.dir)
}

// pendingInstall returns the snapshot ID of an undecided staged install.
func (s *Store) pendingInstall() (string, bool) {
	b, err := readFile(s.fs, filepath.Join(s.stagingDir(), markerName))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// resolveInstall finishes (committed) or discards an undecided install.
func (s *Store) resolveInstall(committed bool) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if !committed {
		s.log.Warn("discarding uncommitted snapshot install", "dir", s.stagingDir())
		return s.fs.RemoveAll(s.stagingDir())
	}
	s.log.Warn("rolling interrupted snapshot install forward", "dir", s.stagingDir())
	if err := s.swapInLocked(); err != nil {
		return s.fail(err)
	}
	return nil
}

// openStaging creates an empty staging store for a shipped snapshot.
func (s *Store) openStaging() (*Store, error) {
	dir := s.stagingDir()
	if err := s.fs.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("raftlog: clear staging: %w", err)
	}
	cfg := s.cfg
	cfg.Dir = dir
	cfg.FlushMode = FlushAsync // finishInstall syncs once at the end
	cfg.FlushInterval = time.Hour
	cfg.CacheEntries = -1
	cfg.Logger = s.log.Named("staging")
	return Open(cfg)
}

// finishInstall completes a shipped install: it appends the live suffix
// after snapIndex (if the live log holds snapIndex+1), closes the staged
// store, writes the marker, calls commit (which commits the snapshot) and
// then swaps the staged log in. Appends are blocked throughout.
func (s *Store) finishInstall(staged *Store, snapIndex uint64, id string, commit func() error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	defer s.faultEvent("install-finish", faultLog, faultSnapshot)()
	discard := func(err error) error {
		staged.Close()
		if rerr := s.fs.RemoveAll(s.stagingDir()); rerr != nil {
			s.log.Error("remove staging dir", "error", rerr)
		}
		return err
	}
	if err := s.writableLocked(); err != nil {
		return discard(err)
	}
	if err := s.copySuffixLocked(staged, snapIndex); err != nil {
		return discard(err)
	}
	if err := staged.Sync(); err != nil {
		return discard(err)
	}
	if err := staged.Close(); err != nil {
		return discard(err)
	}
	marker := filepath.Join(s.stagingDir(), markerName)
	if err := writeFileAtomic(s.fs, marker, []byte(id+"\n")); err != nil {
		return discard(fmt.Errorf("raftlog: write install marker: %w", err))
	}
	if err := commit(); err != nil {
		return discard(err)
	}
	if err := s.swapInLocked(); err != nil {
		return s.fail(err)
	}
	return nil
}

// copySuffixLocked appends live entries (snapIndex, last] to staged.
func (s *Store) copySuffixLocked(staged *Store, snapIndex uint64) error {
	first, last := s.boundsLocked()
	if first == 0 || snapIndex+1 < first || snapIndex+1 > last {
		return nil
	}
	s.log.Info("keeping live log suffix after installed snapshot", "from", snapIndex+1, "to", last)
	var batch []*raft.Log
	for i := snapIndex + 1; i <= last; i++ {
		l := new(raft.Log)
		if err := s.GetLog(i, l); err != nil {
			return err
		}
		batch = append(batch, l)
		if len(batch) == 256 || i == last {
			if err := staged.StoreLogs(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// swapInLocked atomically replaces the live log with the staged one under
// mu, so readers see either the old or the new log. Caller holds writeMu.
func (s *Store) swapInLocked() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sg := range s.segs {
		sg.f.Close()
	}
	s.segs = nil
	s.cache.clear()
	s.allowedPrefix = 0
	s.dirty = false
	old := s.dir + oldSuffix
	if err := s.fs.RemoveAll(old); err != nil {
		return err
	}
	if err := s.fs.Rename(s.dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("raftlog: swap out live log: %w", err)
	}
	if err := s.fs.Rename(s.stagingDir(), s.dir); err != nil {
		return fmt.Errorf("raftlog: swap in staged log: %w", err)
	}
	if err := s.fs.SyncDir(filepath.Dir(s.dir)); err != nil {
		return err
	}
	if err := s.cleanupSwap(); err != nil {
		return err
	}
	segs, err := loadSegments(s.fs, s.dir, s.log)
	if err != nil {
		return err
	}
	s.segs = segs
	first, last := s.boundsLocked()
	s.log.Info("installed shipped log", "first-index", first, "last-index", last)
	return nil
}
