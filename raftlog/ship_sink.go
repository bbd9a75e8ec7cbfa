package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// sink modes, decided by the first 8 bytes written.
const (
	modeSniff = iota
	modePlain
	modeInstall
)

// install parse phases.
const (
	phaseStateLen = iota
	phaseState
	phaseLogHeader
	phaseRecords
	phaseDone
)

const installBatchBytes = 1 << 20

// shipSink is the raft.SnapshotSink returned by SnapshotStore.Create. It is
// used by one goroutine at a time (raft's), so it has no lock. Close and
// Cancel are idempotent.
type shipSink struct {
	inner  raft.SnapshotSink
	store  *Store
	owner  *SnapshotStore // counts committed snapshots
	index  uint64
	logger hclog.Logger

	mode     int
	phase    int
	pend     []byte // bytes not yet parsed (sniff or partial unit)
	stateLen uint64
	first    uint64
	last     uint64
	logLeft  uint64
	next     uint64
	staged   *Store
	batch    []*raft.Log
	batchLen int
	err      error // first Write error; sticky

	finished bool
	closeErr error
	endFault func() // ends the rmqfault build's snapshot or install event; nil: none
}

// endEvent ends the fault build's event for this sink, if one began.
func (k *shipSink) endEvent() {
	if k.endFault != nil {
		k.endFault()
	}
}

func (k *shipSink) ID() string { return k.inner.ID() }

func (k *shipSink) Write(p []byte) (int, error) {
	if k.finished {
		return 0, errors.New("raftlog: write to closed snapshot sink")
	}
	if k.err != nil {
		return 0, k.err
	}
	switch k.mode {
	case modePlain:
		return k.inner.Write(p)
	case modeInstall:
		if err := k.feed(p); err != nil {
			k.err = err
			return 0, err
		}
		return len(p), nil
	}
	k.pend = append(k.pend, p...)
	if len(k.pend) < len(shipMagic) {
		return len(p), nil
	}
	buf := k.pend
	k.pend = nil
	if string(buf[:len(shipMagic)]) != shipMagic {
		k.mode = modePlain
		k.endFault = k.store.faultEvent("snapshot", faultSnapshot)
		if _, err := k.inner.Write(buf); err != nil {
			k.err = err
			return 0, err
		}
		return len(p), nil
	}
	k.mode = modeInstall
	k.endFault = k.store.faultEvent("install", faultLog, faultSnapshot)
	k.logger.Info("receiving shipped snapshot", "id", k.inner.ID(), "index", k.index)
	if err := k.feed(buf[len(shipMagic):]); err != nil {
		k.err = err
		return 0, err
	}
	return len(p), nil
}

// feed parses shipped-stream bytes after the magic.
func (k *shipSink) feed(p []byte) error {
	for len(p) > 0 {
		switch k.phase {
		case phaseStateLen, phaseLogHeader:
			need := 8
			if k.phase == phaseLogHeader {
				need = shipLogHeader
			}
			p = k.take(p, need)
			if len(k.pend) < need {
				return nil
			}
			if err := k.header(); err != nil {
				return err
			}
		case phaseState:
			n := min(uint64(len(p)), k.stateLen)
			if _, err := k.inner.Write(p[:n]); err != nil {
				return err
			}
			p, k.stateLen = p[n:], k.stateLen-n
			if k.stateLen == 0 {
				k.phase = phaseLogHeader
			}
		case phaseRecords:
			var err error
			if p, err = k.records(p); err != nil {
				return err
			}
		default:
			return errors.New("raftlog: trailing bytes after shipped log")
		}
	}
	return nil
}

// take moves bytes from p into pend until pend holds need bytes.
func (k *shipSink) take(p []byte, need int) []byte {
	if len(k.pend) >= need {
		return p
	}
	n := min(need-len(k.pend), len(p))
	k.pend = append(k.pend, p[:n]...)
	return p[n:]
}

func (k *shipSink) header() error {
	le := binary.LittleEndian
	b := k.pend
	k.pend = k.pend[:0]
	if k.phase == phaseStateLen {
		k.stateLen = le.Uint64(b)
		if k.stateLen > MaxStateSize {
			return fmt.Errorf("%w: state of %d bytes exceeds %d", ErrBadShipLength, k.stateLen, MaxStateSize)
		}
		k.phase = phaseState
		if k.stateLen == 0 {
			k.phase = phaseLogHeader
		}
		return nil
	}
	k.first, k.last, k.logLeft = le.Uint64(b), le.Uint64(b[8:]), le.Uint64(b[16:])
	if err := checkShipRange(k.first, k.last, k.logLeft, k.index); err != nil {
		return err
	}
	staged, err := k.store.openStaging()
	if err != nil {
		return err
	}
	k.staged, k.next, k.phase = staged, k.first, phaseRecords
	if k.last < k.first {
		k.phase = phaseDone
	}
	return nil
}

// records parses whole records from pend+p into batches for the staging store.
func (k *shipSink) records(p []byte) ([]byte, error) {
	p = k.take(p, recPrefix)
	if len(k.pend) < recPrefix {
		return p, nil
	}
	body := uint64(binary.LittleEndian.Uint32(k.pend))
	if body < recFixed || recPrefix+body > k.logLeft || body > MaxRecordSize {
		return nil, fmt.Errorf("raftlog: shipped record %d has bad length %d", k.next, body)
	}
	p = k.take(p, recPrefix+int(body))
	if uint64(len(k.pend)) < recPrefix+body {
		return p, nil
	}
	rec, n, reason := decodeRecord(k.pend)
	if reason == "" && rec.index != k.next {
		reason = decodeReason(fmt.Sprintf("index %d, want %d", rec.index, k.next))
	}
	if reason != "" {
		return nil, fmt.Errorf("%w: shipped record %d: %s", ErrCorrupt, k.next, reason)
	}
	l := new(raft.Log)
	rec.toLog(l)
	k.pend = k.pend[:0]
	k.batch = append(k.batch, l)
	k.batchLen += n
	k.logLeft -= uint64(n)
	k.next++
	if k.next > k.last || k.batchLen >= installBatchBytes {
		if err := k.flush(); err != nil {
			return nil, err
		}
	}
	if k.next > k.last {
		if k.logLeft != 0 {
			return nil, fmt.Errorf("raftlog: shipped log has %d unexplained bytes", k.logLeft)
		}
		k.phase = phaseDone
	}
	return p, nil
}

func (k *shipSink) flush() error {
	if len(k.batch) == 0 {
		return nil
	}
	err := k.staged.StoreLogs(k.batch)
	k.batch, k.batchLen = k.batch[:0], 0
	return err
}

// Close commits the snapshot. For a shipped stream it installs the log
// (see Store.finishInstall); an incomplete stream cancels everything.
func (k *shipSink) Close() error {
	if k.finished {
		return k.closeErr
	}
	k.finished = true
	defer k.endEvent()
	switch {
	case k.mode == modeSniff:
		if _, err := k.inner.Write(k.pend); err != nil {
			k.closeErr = err
			_ = k.inner.Cancel()
			return err
		}
		k.closeErr = k.inner.Close()
		k.counted(&k.owner.created)
	case k.mode == modePlain:
		k.closeErr = k.inner.Close()
		k.counted(&k.owner.created)
	case k.err != nil || k.phase != phaseDone:
		k.abort()
		k.closeErr = fmt.Errorf("%w: snapshot %s", ErrIncompleteSnapshot, k.inner.ID())
		if k.err != nil {
			k.closeErr = fmt.Errorf("%w: %w", k.closeErr, k.err)
		}
	default:
		k.closeErr = k.store.finishInstall(k.staged, k.index, k.inner.ID(), k.inner.Close)
		if k.closeErr != nil {
			_ = k.inner.Cancel()
		} else {
			k.logger.Info("installed shipped snapshot", "id", k.inner.ID(), "first-index", k.first, "last-index", k.last)
			k.counted(&k.owner.installed)
		}
	}
	return k.closeErr
}

// counted adds a committed snapshot to c, if Close succeeded.
func (k *shipSink) counted(c *atomic.Uint64) {
	if k.closeErr == nil {
		c.Add(1)
	}
}

// Cancel discards the snapshot and any staged log. It is idempotent.
func (k *shipSink) Cancel() error {
	if k.finished {
		return nil
	}
	k.finished = true
	defer k.endEvent()
	return k.abort()
}

func (k *shipSink) abort() error {
	err := k.inner.Cancel()
	if k.staged != nil {
		k.staged.Close()
		if rerr := k.store.fs.RemoveAll(k.store.stagingDir()); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}
