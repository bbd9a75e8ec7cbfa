package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// shipMagic starts a shipped snapshot stream (see doc.go).
const shipMagic = "RMQSHIP1"

const shipLogHeader = 24 // u64 first | u64 last | u64 logBytes

// MaxStateSize bounds the FSM state a shipped stream may declare. The
// state is small (fsm.MaxSnapshotSize is the same bound); a larger
// stateLen is corruption, refused before anything is written.
const MaxStateSize = 1 << 30

// ErrBadShipLength is returned for a shipped stream whose header declares
// a length it cannot hold.
var ErrBadShipLength = errors.New("raftlog: bad length in shipped snapshot")

// checkShipRange checks a shipped log header: a range of entries that
// raft can hold (first >= 1, last <= snapIndex) and a byte count each
// record of which has at least a record header and at most MaxRecordSize.
func checkShipRange(first, last, logBytes, snapIndex uint64) error {
	if last+1 < first || last > snapIndex || first == 0 {
		return fmt.Errorf("%w: log range [%d, %d] does not fit snapshot %d", ErrBadShipLength, first, last, snapIndex)
	}
	n := last + 1 - first // <= snapIndex, so the products below cannot overflow for sane indexes
	if n == 0 {
		if logBytes != 0 {
			return fmt.Errorf("%w: empty log range with %d log bytes", ErrBadShipLength, logBytes)
		}
		return nil
	}
	if logBytes/recHeader < n || logBytes/MaxRecordSize > n {
		return fmt.Errorf("%w: %d log bytes cannot hold entries [%d, %d]", ErrBadShipLength, logBytes, first, last)
	}
	return nil
}

// SnapshotStore is a raft.SnapshotStore that ships the retained log inside
// every snapshot it serves and installs a shipped log when it receives one.
// Local snapshots hold only FSM state, in a raft.FileSnapshotStore.
type SnapshotStore struct {
	inner  *raft.FileSnapshotStore
	log    *Store
	logger hclog.Logger

	created, installed atomic.Uint64 // see Stats
}

// SnapshotStats counts the snapshots a SnapshotStore committed since it
// was opened.
type SnapshotStats struct {
	Created   uint64 // local snapshots of FSM state (raft's own, or a user's)
	Installed uint64 // snapshots received from a leader, with its shipped log
}

// Stats returns the store's counts. It is safe to call concurrently with
// everything else.
func (s *SnapshotStore) Stats() SnapshotStats {
	return SnapshotStats{Created: s.created.Load(), Installed: s.installed.Load()}
}

var _ raft.SnapshotStore = (*SnapshotStore)(nil)

// NewSnapshotStore wraps raft.NewFileSnapshotStoreWithLogger(dir, retain)
// around log. It finishes or discards an install interrupted by a crash,
// so it must be created before raft.NewRaft.
func NewSnapshotStore(dir string, retain int, log *Store, logger hclog.Logger) (*SnapshotStore, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	logger = logger.Named("snapshots")
	inner, err := raft.NewFileSnapshotStoreWithLogger(dir, retain, logger)
	if err != nil {
		return nil, fmt.Errorf("raftlog: snapshot store: %w", err)
	}
	s := &SnapshotStore{inner: inner, log: log, logger: logger}
	removeTornSnapshots(filepath.Join(dir, "snapshots"), logger)
	if id, ok := log.pendingInstall(); ok {
		committed, err := s.has(id)
		if err != nil {
			return nil, err
		}
		if err := log.resolveInstall(committed); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// removeTornSnapshots deletes the <id>.tmp directories a crash left in
// raft's snapshot directory while it wrote a snapshot (raft skips them
// but never removes them). Nothing writes there before raft starts.
func removeTornSnapshots(dir string, logger hclog.Logger) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(path); err != nil {
			logger.Warn("remove unfinished snapshot", "path", path, "error", err)
			continue
		}
		logger.Warn("removed a snapshot a crash left unfinished", "path", path)
	}
}

func (s *SnapshotStore) has(id string) (bool, error) {
	metas, err := s.inner.List()
	if err != nil {
		return false, fmt.Errorf("raftlog: list snapshots: %w", err)
	}
	for _, m := range metas {
		if m.ID == id {
			return true, nil
		}
	}
	return false, nil
}

// List implements raft.SnapshotStore. Sizes are those of the FSM state.
func (s *SnapshotStore) List() ([]*raft.SnapshotMeta, error) { return s.inner.List() }

// Create implements raft.SnapshotStore. The sink sniffs its first 8 bytes:
// plain FSM state is stored as is; a shipped stream installs its log.
func (s *SnapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.inner.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &shipSink{inner: s.log.faultSink(sink), store: s.log, owner: s, index: index, logger: s.logger}, nil
}

// Open implements raft.SnapshotStore. The reader yields
// magic | u64 stateLen | state | u64 first | u64 last | u64 logBytes | records
// for log entries [FirstIndex, min(meta.Index, LastIndex)], with meta.Size
// exact. The range is pinned until the reader is closed, and log records
// are read only once the reader gets past the state.
func (s *SnapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.inner.Open(id)
	if err != nil {
		return nil, nil, err
	}
	hold := s.log.Pin(0) // block purges while the range is chosen
	first, last, logBytes, err := s.log.shipRange(meta.Index)
	if err != nil {
		hold()
		rc.Close()
		return nil, nil, err
	}
	unpin := s.log.Pin(first)
	hold()
	hdr := make([]byte, 0, 16+shipLogHeader)
	hdr = append(hdr, shipMagic...)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(meta.Size))
	tail := make([]byte, 0, shipLogHeader)
	tail = binary.LittleEndian.AppendUint64(tail, first)
	tail = binary.LittleEndian.AppendUint64(tail, last)
	tail = binary.LittleEndian.AppendUint64(tail, uint64(logBytes))
	out := *meta
	out.Size = int64(len(hdr)) + meta.Size + shipLogHeader + logBytes
	r := &shipReader{store: s.log, next: first, last: last, left: logBytes, unpin: unpin, state: rc}
	r.Reader = io.MultiReader(bytes.NewReader(hdr), &exactReader{r: rc, n: meta.Size}, bytes.NewReader(tail), readerFunc(r.readLog))
	return &out, r, nil
}

// shipRange returns the shipped range [first, last] for a snapshot at
// snapIndex and its encoded size. An empty range has last = first-1.
func (s *Store) shipRange(snapIndex uint64) (first, last uint64, n int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, 0, 0, ErrClosed
	}
	first, last = s.boundsLocked()
	if first == 0 || first > snapIndex {
		return snapIndex + 1, snapIndex, 0, nil
	}
	last = min(last, snapIndex)
	for _, sg := range s.segs {
		if sg.count() == 0 || sg.last() < first || sg.first > last {
			continue
		}
		a, _ := sg.bounds(max(first, sg.first))
		_, b := sg.bounds(min(last, sg.last()))
		n += b - a
	}
	return first, last, n, nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// exactReader reads exactly n bytes from r, failing on a short stream.
type exactReader struct {
	r io.Reader
	n int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	k, err := e.r.Read(p)
	e.n -= int64(k)
	if errors.Is(err, io.EOF) {
		if e.n > 0 {
			return k, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return k, err
}

// shipReader streams a shipped snapshot; see SnapshotStore.Open.
type shipReader struct {
	io.Reader
	store   *Store
	next    uint64 // next index to read
	last    uint64
	left    int64 // log bytes not yet produced
	pending []byte
	buf     []byte
	state   io.Closer
	unpin   func()
	once    sync.Once
}

func (r *shipReader) readLog(p []byte) (int, error) {
	if len(r.pending) == 0 {
		if r.next > r.last {
			if r.left != 0 {
				return 0, fmt.Errorf("raftlog: shipped log size changed by %d bytes", r.left)
			}
			return 0, io.EOF
		}
		r.store.mu.RLock()
		c, err := r.store.readRawLocked(r.next, r.last, scanChunk, r.buf[:0])
		r.store.mu.RUnlock()
		r.buf = c.raw
		if err != nil {
			return 0, fmt.Errorf("raftlog: ship index %d: %w", r.next, err)
		}
		r.pending, r.next = c.raw, c.next
		r.left -= int64(len(c.raw))
		if r.left < 0 {
			return 0, fmt.Errorf("raftlog: shipped log grew past its announced size")
		}
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// Close closes the state reader and releases the pin. It is idempotent.
func (r *shipReader) Close() error {
	var err error
	r.once.Do(func() {
		err = r.state.Close()
		r.unpin()
	})
	return err
}

// SnapshotState returns a reader of just the FSM state in rc, which is what
// SnapshotStore.Open returned. Closing it closes rc (releasing its pin)
// without reading the log records. A stream without the magic is returned
// unchanged.
func SnapshotState(rc io.ReadCloser) (io.ReadCloser, error) {
	var hdr [16]byte
	n, err := io.ReadFull(rc, hdr[:8])
	if err != nil || string(hdr[:8]) != shipMagic {
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("raftlog: read snapshot header: %w", err)
		}
		return readCloser{io.MultiReader(bytes.NewReader(hdr[:n]), rc), rc}, nil
	}
	if _, err := io.ReadFull(rc, hdr[8:]); err != nil {
		return nil, fmt.Errorf("raftlog: read snapshot header: %w", err)
	}
	size := binary.LittleEndian.Uint64(hdr[8:])
	if size > MaxStateSize {
		return nil, fmt.Errorf("%w: state of %d bytes exceeds %d", ErrBadShipLength, size, MaxStateSize)
	}
	return readCloser{&exactReader{r: rc, n: int64(size)}, rc}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
