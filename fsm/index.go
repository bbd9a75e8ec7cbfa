package fsm

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/raft"
)

// The message index (RocketMQ's IndexFile): message ID -> record and
// (topic, key) -> records, built in Apply from every accepted message's
// ID and keys, so every replica holds the same entries for the same log.
// It is a cache of the log like the consume queues: files under
// Dir/index, each a hash table of a fixed number of entries, mapped and
// written without fsync; Sync fsyncs them and then records, in
// Dir/index/state.json, how many entries each file holds durably and
// the raft index they cover. After a restart the entries past that are
// ignored and rebuilt from the log by Restore (scan from the first
// entry not covered), or by the replay that follows; Apply skips
// entries the index already covers, so a replay adds nothing twice.
//
// File layout (little effort to read, fixed size, sparse until used):
//
//	header (64 B): magic "RMQIDX01", first raft index u64, last raft
//	  index u64, entries u32, slots u32, capacity u32
//	slots  [slots]u32: unused (zero, so sparse on disk); see below
//	entries [capacity] x 20 B: hash32 u32, raft index u64, pos u32,
//	  1 + the previous entry of the same slot u32
//
// The slot table (1 + the latest entry of each hash slot, 0: none) lives
// in memory, 8 MiB a full file, rebuilt from the entries when a file is
// opened (relink, about 20 ms for 4 Mi entries). Kept in the mapping it
// cost about a microsecond an entry: every fsync write-protects the dirty
// pages again, and slot writes land on random pages, so nearly every
// insert took a page fault (BenchmarkIndexAddSynced).
//
// A lookup walks the slot's chain newest first in every file, newest
// file first, and returns candidate records; callers read each record
// to drop hash collisions (and records retention already removed).
// Retention retires whole files whose last raft index is below the log
// start.

const (
	idxMagic     = "RMQIDX01"
	idxHeaderLen = 64
	idxEntryLen  = 20
	// DefaultIndexEntriesPerFile is an index file's capacity: 4 Mi
	// entries, 8 MiB of slots and 80 MiB of entries.
	DefaultIndexEntriesPerFile = 1 << 22
	// MaxIndexLookup bounds one lookup's candidates.
	MaxIndexLookup = 4096
)

// RecordRef names a stored record: its raft entry and position.
type RecordRef struct {
	Index uint64
	Pos   uint32
}

type idxFile struct {
	seq         int
	path        string
	f           *os.File
	data        []byte
	first, last uint64 // raft indexes covered
	n, slots    uint32
	capacity    uint32
	synced      uint32      // entries durable at the last Sync
	slot        []uint32    // 1 + the latest entry of each hash slot (in memory only)
	res         reservation // blocks reserved ahead of the writer (reserve.go)
	hdrRes      reservation // the header's
}

type msgIndex struct {
	dir      string
	capacity uint32
	files    []*idxFile // oldest first
	through  uint64     // highest raft index indexed (entries <= it are skipped)
	dirty    bool
	retired  []*idxFile
	broken   error // first I/O error: indexing stops, lookups still serve what is there
}

type idxState struct {
	Through uint64 `json:"through"`
	Files   []struct {
		Seq     int    `json:"seq"`
		Entries uint32 `json:"entries"`
	} `json:"files"`
}

// FNV-1a, written out so hashing allocates nothing (hash/fnv's interface
// escapes to the heap).
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

func idHash(id []byte) uint64 { return fnvBytes(fnvBytes(fnvOffset, []byte{'i'}), id) }

func keyHash(topic string, key []byte) uint64 {
	h := fnvString(fnvBytes(fnvOffset, []byte{'k'}), topic)
	return fnvBytes(fnvBytes(h, []byte{0}), key)
}

// openIndex opens Dir/index, keeping what state.json says is durable.
// Anything it cannot trust is removed: the index is rebuilt from the log.
func openIndex(dir string, capacity int) *msgIndex {
	ix := &msgIndex{dir: dir, capacity: uint32(capacity)}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	var st idxState
	if err != nil || json.Unmarshal(b, &st) != nil {
		_ = os.RemoveAll(dir)
		return ix
	}
	keep := map[string]bool{"state.json": true}
	for _, fs := range st.Files {
		f, err := ix.openFile(fs.Seq, false)
		if err != nil || fs.Entries > f.capacity {
			if f != nil {
				_ = f.close()
			}
			ix.closeAll()
			_ = os.RemoveAll(dir)
			return &msgIndex{dir: dir, capacity: uint32(capacity)}
		}
		f.n, f.synced = fs.Entries, fs.Entries
		ix.files = append(ix.files, f)
		keep[filepath.Base(f.path)] = true
	}
	ix.through = st.Through
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !keep[e.Name()] {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	// Chains may point at entries past the durable count (written before
	// a crash): clear the slots and relink from the entries kept.
	for _, f := range ix.files {
		f.relink()
	}
	return ix
}

func (ix *msgIndex) openFile(seq int, create bool) (*idxFile, error) {
	path := filepath.Join(ix.dir, fmt.Sprintf("%08d.idx", seq))
	flags := os.O_RDWR
	if create {
		if err := os.MkdirAll(ix.dir, 0o755); err != nil {
			return nil, err
		}
		flags |= os.O_CREATE | os.O_EXCL
	}
	fd, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, err
	}
	f := &idxFile{seq: seq, path: path, f: fd}
	if create {
		f.capacity = ix.capacity
		f.slots = max(f.capacity/2, 1)
		size := idxHeaderLen + int64(f.slots)*4 + int64(f.capacity)*idxEntryLen
		if err := fd.Truncate(size); err != nil {
			_ = fd.Close()
			return nil, err
		}
		if err := f.hdrRes.reserve(fd, 0, idxHeaderLen, size); err != nil {
			_ = fd.Close()
			_ = os.Remove(path)
			return nil, err
		}
		if f.data, err = mmapFile(fd, int(size)); err != nil {
			_ = fd.Close()
			return nil, err
		}
		copy(f.data, idxMagic)
		f.slot = make([]uint32, f.slots)
		binary.BigEndian.PutUint32(f.data[28:], f.slots)
		binary.BigEndian.PutUint32(f.data[32:], f.capacity)
		return f, nil
	}
	st, err := fd.Stat()
	if err != nil || st.Size() < idxHeaderLen {
		_ = fd.Close()
		return nil, errors.New("short index file")
	}
	if f.data, err = mmapFile(fd, int(st.Size())); err != nil {
		_ = fd.Close()
		return nil, err
	}
	f.slots, f.capacity = binary.BigEndian.Uint32(f.data[28:]), binary.BigEndian.Uint32(f.data[32:])
	if string(f.data[:8]) != idxMagic || f.slots == 0 || int64(idxHeaderLen)+int64(f.slots)*4+int64(f.capacity)*idxEntryLen != st.Size() {
		_ = f.close()
		return nil, errors.New("index file header does not match its size")
	}
	f.first, f.last = binary.BigEndian.Uint64(f.data[8:]), binary.BigEndian.Uint64(f.data[16:])
	f.slot = make([]uint32, f.slots) // filled by relink
	return f, nil
}

func (f *idxFile) close() error {
	err := munmap(f.data)
	f.data, f.slot = nil, nil
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *idxFile) entryAt(e uint32) []byte {
	return f.data[idxHeaderLen+4*int64(f.slots)+idxEntryLen*int64(e):]
}

// relink rebuilds the slots from the first n entries (and their chains:
// a link may point past them, written before a crash).
func (f *idxFile) relink() {
	clear(f.slot)
	f.first, f.last = 0, 0
	for e := uint32(0); e < f.n; e++ {
		ent := f.entryAt(e)
		h := binary.BigEndian.Uint32(ent)
		idx := binary.BigEndian.Uint64(ent[4:])
		s := h % f.slots
		binary.BigEndian.PutUint32(ent[16:], f.slot[s])
		f.slot[s] = e + 1
		if f.first == 0 {
			f.first = idx
		}
		f.last = idx
	}
	f.writeHeader()
}

func (f *idxFile) writeHeader() {
	binary.BigEndian.PutUint64(f.data[8:], f.first)
	binary.BigEndian.PutUint64(f.data[16:], f.last)
	binary.BigEndian.PutUint32(f.data[24:], f.n)
}

// add indexes one hash for the record at (index, pos).
func (ix *msgIndex) add(h uint64, index uint64, pos uint32) {
	if ix.broken != nil {
		return
	}
	var f *idxFile
	if len(ix.files) > 0 {
		f = ix.files[len(ix.files)-1]
	}
	if f == nil || f.n == f.capacity {
		seq := 0
		if f != nil {
			seq = f.seq + 1
		}
		nf, err := ix.openFile(seq, true)
		if err != nil {
			ix.broken = fmt.Errorf("message index: create file %d: %w", seq, err)
			return
		}
		ix.files = append(ix.files, nf)
		f = nf
	}
	e := f.n
	at := idxHeaderLen + 4*int64(f.slots) + idxEntryLen*int64(e)
	if err := f.res.reserve(f.f, at, idxEntryLen, int64(len(f.data))); err != nil {
		ix.broken = fmt.Errorf("message index: %w", err)
		return
	}
	if err := f.hdrRes.reserve(f.f, 0, idxHeaderLen, int64(len(f.data))); err != nil {
		ix.broken = fmt.Errorf("message index: %w", err)
		return
	}
	ent := f.entryAt(e)
	s := uint32(h) % f.slots
	binary.BigEndian.PutUint32(ent, uint32(h))
	binary.BigEndian.PutUint64(ent[4:], index)
	binary.BigEndian.PutUint32(ent[12:], pos)
	binary.BigEndian.PutUint32(ent[16:], f.slot[s])
	f.slot[s] = e + 1
	f.n++
	if f.first == 0 {
		f.first = index
	}
	f.last = index
	f.writeHeader()
	ix.dirty = true
}

// indexRecord indexes a record's id and keys (space-separated).
func (ix *msgIndex) indexRecord(index uint64, pos uint32, topic string, id, keys []byte) {
	if len(id) > 0 {
		ix.add(idHash(id), index, pos)
	}
	for len(keys) > 0 {
		i := 0
		for i < len(keys) && keys[i] != ' ' {
			i++
		}
		if i > 0 {
			ix.add(keyHash(topic, keys[:i]), index, pos)
		}
		if i == len(keys) {
			break
		}
		keys = keys[i+1:]
	}
}

// lookup returns up to max candidate records for hash h, newest first,
// not below logStart.
func (ix *msgIndex) lookup(h uint64, logStart uint64, max int) []RecordRef {
	var out []RecordRef
	for i := len(ix.files) - 1; i >= 0 && len(out) < max; i-- {
		f := ix.files[i]
		if f.last != 0 && f.last < logStart {
			break
		}
		for e := f.slot[uint32(h)%f.slots]; e != 0 && len(out) < max; {
			if e > f.n {
				break // a link past the durable entries (never after relink)
			}
			ent := f.entryAt(e - 1)
			if binary.BigEndian.Uint32(ent) == uint32(h) {
				if idx := binary.BigEndian.Uint64(ent[4:]); idx >= logStart {
					out = append(out, RecordRef{Index: idx, Pos: binary.BigEndian.Uint32(ent[12:])})
				}
			}
			e = binary.BigEndian.Uint32(ent[16:])
		}
	}
	return out
}

// retireBelow retires files wholly below the log start.
func (ix *msgIndex) retireBelow(logStart uint64) {
	keep := ix.files[:0]
	for i, f := range ix.files {
		if i < len(ix.files)-1 && f.last != 0 && f.last < logStart {
			ix.retired = append(ix.retired, f)
			ix.dirty = true
			continue
		}
		keep = append(keep, f)
	}
	ix.files = keep
}

// syncWork is what Sync does for the index, taken under FSM.mu.
type idxSyncWork struct {
	dir     string
	files   []*os.File
	release [][]byte // per file: its whole pages below the next entry
	state   idxState
	retired []*idxFile
	counts  map[*idxFile]uint32
}

func (ix *msgIndex) takeSyncWork() *idxSyncWork {
	if !ix.dirty && len(ix.retired) == 0 {
		return nil
	}
	w := &idxSyncWork{dir: ix.dir, retired: ix.retired, counts: map[*idxFile]uint32{}}
	ix.retired, ix.dirty = nil, false
	w.state.Through = ix.through
	for _, f := range ix.files {
		w.files = append(w.files, f.f)
		w.release = append(w.release, pagesBelow(f.data, idxHeaderLen+4*int64(f.slots)+idxEntryLen*int64(f.n)))
		w.state.Files = append(w.state.Files, struct {
			Seq     int    `json:"seq"`
			Entries uint32 `json:"entries"`
		}{f.seq, f.n})
		w.counts[f] = f.n
	}
	return w
}

// run fsyncs the files, then writes the state that trusts them.
func (w *idxSyncWork) run() error {
	if w == nil {
		return nil
	}
	for i, f := range w.files {
		if err := fsync(f); err != nil {
			return fmt.Errorf("sync message index: %w", err)
		}
		releasePages(w.release[i])
	}
	b, _ := json.Marshal(w.state)
	tmp := filepath.Join(w.dir, "state.json.tmp")
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write message index state: %w", err)
	}
	if fd, err := os.Open(tmp); err == nil {
		_ = fd.Sync()
		_ = fd.Close()
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, "state.json")); err != nil {
		return fmt.Errorf("write message index state: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	for _, f := range w.retired {
		path := f.path
		_ = f.close()
		_ = os.Remove(path)
	}
	return nil
}

func (ix *msgIndex) closeAll() {
	for _, f := range append(ix.files, ix.retired...) {
		_ = f.close()
	}
	ix.files, ix.retired = nil, nil
}

// reset drops every entry (a restore whose log the index does not match).
func (ix *msgIndex) reset() {
	ix.closeAll()
	_ = os.RemoveAll(ix.dir)
	ix.through, ix.dirty, ix.broken = 0, false, nil
}

// IndexStats describes the message index.
type IndexStats struct {
	Files   int
	Entries uint64
	Bytes   int64 // file sizes (sparse: disk use may be lower)
	Through uint64
}

// IndexStats returns the index's size.
func (f *FSM) IndexStats() IndexStats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := IndexStats{Files: len(f.index.files), Through: f.index.through}
	for _, x := range f.index.files {
		st.Entries += uint64(x.n)
		st.Bytes += int64(len(x.data))
	}
	return st
}

// LookupID returns the records whose message ID hashes like id, newest
// first (up to max): candidates, which callers confirm by reading.
func (f *FSM) LookupID(id []byte, max int) []RecordRef {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index.lookup(idHash(id), f.logStart, min(max, MaxIndexLookup))
}

// LookupKey returns the records of topic whose keys hash like key,
// newest first (up to max): candidates, confirmed by reading.
func (f *FSM) LookupKey(topic, key string, max int) []RecordRef {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index.lookup(keyHash(topic, []byte(key)), f.logStart, min(max, MaxIndexLookup))
}

// catchUpIndex indexes the retained log past what the index covers, up
// to applied: after a restore, or a restart whose index lagged.
func (f *FSM) catchUpIndex() error {
	if f.cfg.Log == nil || f.index.through >= f.applied {
		return nil
	}
	first, err := f.cfg.Log.FirstIndex()
	if err != nil || first == 0 {
		return err
	}
	from := max(first, f.index.through+1)
	var refs []recRef
	err = f.cfg.Log.Scan(from, f.applied, func(index uint64, typ raft.LogType, data []byte) error {
		if typ != raft.LogCommand || len(data) < 2 || CommandType(data[0]) != CmdMessageBatch || data[1] != msgBatchVersion {
			return nil
		}
		_, rs, err := splitBatch(data, refs[:0])
		refs = rs
		if err != nil {
			return nil
		}
		for i := range rs {
			r := &rs[i].r
			t := f.topics[string(r.topic)]
			if t == nil || t.ID != r.topicID || r.queueID >= t.Queues {
				continue
			}
			f.index.indexRecord(index, rs[i].pos, t.Name, r.id, r.keys)
		}
		return nil
	})
	f.index.through = max(f.index.through, f.applied)
	return err
}

// indexFiles lists the index file names, sorted (for tests).
func indexFiles(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".idx") {
			out = append(out, e.Name())
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		x, _ := strconv.Atoi(strings.TrimSuffix(a, ".idx"))
		y, _ := strconv.Atoi(strings.TrimSuffix(b, ".idx"))
		return cmp.Compare(x, y)
	})
	return out
}
