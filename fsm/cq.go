package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// UnitSize is the size of one consume-queue unit in bytes.
const UnitSize = 28

// Unit is one consume-queue entry: where a message's record lives in the
// raft log. The record is Log.Data[Pos : Pos+Size] of raft entry Index.
type Unit struct {
	Index     uint64 // raft log index of the batch entry
	Pos       uint32 // byte offset of the record inside Log.Data
	Size      uint32 // record size in bytes
	TagHash   uint32 // TagHash(tags), 0 for no tags
	StoreTime int64  // batch store timestamp, unix ms (leader clock)
	// Retry is the metadata of a retried or dead-lettered delivery (nil
	// otherwise); it is not part of the 28 stored bytes (retry.go).
	Retry *RetryInfo
}

func putUnit(b []byte, u Unit) {
	_ = b[UnitSize-1]
	binary.BigEndian.PutUint64(b, u.Index)
	binary.BigEndian.PutUint32(b[8:], u.Pos)
	binary.BigEndian.PutUint32(b[12:], u.Size)
	binary.BigEndian.PutUint32(b[16:], u.TagHash)
	binary.BigEndian.PutUint64(b[20:], uint64(u.StoreTime))
}

func getUnit(b []byte) Unit {
	_ = b[UnitSize-1]
	return Unit{
		Index:     binary.BigEndian.Uint64(b),
		Pos:       binary.BigEndian.Uint32(b[8:]),
		Size:      binary.BigEndian.Uint32(b[12:]),
		TagHash:   binary.BigEndian.Uint32(b[16:]),
		StoreTime: int64(binary.BigEndian.Uint64(b[20:])),
	}
}

// cqFile is one memory-mapped consume-queue file holding units
// [no*upf, (no+1)*upf).
type cqFile struct {
	no      uint64
	path    string
	f       *os.File
	data    []byte
	dirty   bool
	written int64       // end of the highest unit written, in bytes
	res     reservation // blocks reserved ahead of the writer (reserve.go)
}

func (c *cqFile) close() error {
	err := munmap(c.data)
	c.data = nil
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// queue is the state of one (topic, queue). min and next are guarded by
// FSM.mu; so are files, cur and err.
type queue struct {
	topicID uint32
	topic   string
	id      uint32
	dir     string
	min     uint64 // first readable offset
	next    uint64 // offset the next accepted message gets
	since   uint64 // raft index of the entry that created the queue
	files   map[uint64]*cqFile
	cur     *cqFile // file of the last write, saves a map lookup
	err     error   // first local I/O error; the queue needs a rebuild
	gen     uint64  // ApplyBatch generation that last touched the queue

	delivered deliveredTable // delivered delayed messages' record entries (timers.go)
}

// cqStore owns the consume-queue files. Every method runs under FSM.mu
// held for writing, except where noted.
type cqStore struct {
	root        string // Config.Dir/cq
	upf         uint64
	dirty       []*cqFile
	dirtyDirs   map[string]bool
	retired     []*cqFile // unlinked from queues; closed and removed by Sync
	retiredDirs []string
}

func (s *cqStore) topicDir(topicID uint32) string {
	return filepath.Join(s.root, strconv.FormatUint(uint64(topicID), 10))
}

func (s *cqStore) newQueue(t *topicState, id uint32) *queue {
	return &queue{
		topicID: t.ID, topic: t.Name, id: id,
		dir:   filepath.Join(s.topicDir(t.ID), strconv.FormatUint(uint64(id), 10)),
		files: map[uint64]*cqFile{},
	}
}

func (s *cqStore) filePath(q *queue, no uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%020d.cq", no*s.upf))
}

// open maps file no of q, creating (and preallocating) it if create is set.
func (s *cqStore) open(q *queue, no uint64, create bool) (*cqFile, error) {
	path := s.filePath(q, no)
	flags := os.O_RDWR
	if create {
		if _, err := os.Stat(q.dir); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(q.dir, 0o755); err != nil {
				return nil, fmt.Errorf("create queue dir: %w", err)
			}
			s.dirtyDirs[s.root] = true
			s.dirtyDirs[filepath.Dir(q.dir)] = true
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			s.dirtyDirs[q.dir] = true
		}
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, err
	}
	size := int64(s.upf) * UnitSize
	if st, err := f.Stat(); err != nil || st.Size() != size {
		if err == nil {
			err = f.Truncate(size)
		}
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("preallocate %s: %w", path, err)
		}
	}
	data, err := mmapFile(f, int(size))
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	c := &cqFile{no: no, path: path, f: f, data: data}
	q.files[no] = c
	return c, nil
}

// write stores u at offset off of q. It does not fsync.
func (s *cqStore) write(q *queue, off uint64, u Unit) error {
	no := off / s.upf
	c := q.cur
	if c == nil || c.no != no {
		c = q.files[no]
		if c == nil {
			var err error
			if c, err = s.open(q, no, true); err != nil {
				return err
			}
		}
		q.cur = c
	}
	at := int64(off%s.upf) * UnitSize
	if err := c.res.reserve(c.f, at, UnitSize, int64(len(c.data))); err != nil {
		return err
	}
	putUnit(c.data[at:], u)
	c.written = max(c.written, at+UnitSize)
	if !c.dirty {
		c.dirty = true
		s.dirty = append(s.dirty, c)
	}
	return nil
}

// read returns the unit at off, or false if its file is not open. Safe
// under FSM.mu held for reading.
func (s *cqStore) read(q *queue, off uint64) (Unit, bool) {
	c := q.cur
	if c == nil || c.no != off/s.upf {
		c = q.files[off/s.upf]
		if c == nil {
			return Unit{}, false
		}
	}
	return getUnit(c.data[(off%s.upf)*UnitSize:]), true
}

// retireBelow unlinks the files of q wholly below offset min.
func (s *cqStore) retireBelow(q *queue, min uint64) {
	for no, c := range q.files {
		if (no+1)*s.upf <= min {
			delete(q.files, no)
			if q.cur == c {
				q.cur = nil
			}
			s.retired = append(s.retired, c)
		}
	}
}

// retireTopic unlinks every file of t and schedules its directory removal.
func (s *cqStore) retireTopic(t *topicState) {
	for _, q := range t.queues {
		for no, c := range q.files {
			delete(q.files, no)
			s.retired = append(s.retired, c)
		}
		q.cur = nil
	}
	s.retiredDirs = append(s.retiredDirs, s.topicDir(t.ID))
}

// syncWork is what one Sync must do, taken from the store under FSM.mu.
type syncWork struct {
	dirty       []*cqFile
	release     [][]byte // per dirty file: its whole pages below the writer
	dirs        []string
	retired     []*cqFile
	retiredDirs []string
}

func (s *cqStore) takeSyncWork() syncWork {
	w := syncWork{retired: s.retired, retiredDirs: s.retiredDirs}
	for _, c := range s.dirty {
		c.dirty = false
		if c.data != nil {
			w.dirty = append(w.dirty, c)
			w.release = append(w.release, pagesBelow(c.data, c.written))
		}
	}
	for d := range s.dirtyDirs {
		w.dirs = append(w.dirs, d)
	}
	s.dirty, s.retired, s.retiredDirs = s.dirty[:0], nil, nil
	clear(s.dirtyDirs)
	return w
}

// run fsyncs dirty files and directories, then closes and removes retired
// files. It runs without FSM.mu (but with FSM.syncMu): Apply never closes a
// file itself, it only retires it, so every file here stays mapped.
func (w syncWork) run() error {
	var errs []error
	for i, c := range w.dirty {
		// MAP_SHARED pages are page-cache pages: fsync writes them back.
		if err := fsync(c.f); err != nil {
			errs = append(errs, fmt.Errorf("sync %s: %w", c.path, err))
			continue
		}
		releasePages(w.release[i])
	}
	for _, d := range w.dirs {
		if err := syncDir(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, c := range w.retired {
		if err := c.close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", c.path, err))
		}
		if err := os.Remove(c.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, d := range w.retiredDirs {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = fsync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// closeQueue closes every open file of q immediately (Restore and Close).
func closeQueue(q *queue) error {
	var errs []error
	for no, c := range q.files {
		if err := c.close(); err != nil {
			errs = append(errs, err)
		}
		delete(q.files, no)
	}
	q.cur = nil
	return errors.Join(errs...)
}

// pagesBelow returns the whole pages of the mapping data that lie below
// byte end, the part a writer appending at end no longer touches.
func pagesBelow(data []byte, end int64) []byte {
	page := int64(os.Getpagesize())
	end = min(end, int64(len(data))) / page * page
	return data[:end]
}
