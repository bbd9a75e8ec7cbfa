package fsm

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const (
	// DefaultUnitsPerFile is the default number of 28-byte units per consume
	// queue file (7 MiB files).
	DefaultUnitsPerFile = 262144
	// MaxUnitsPerFile bounds a file's mapping to 448 MiB so 32-bit builds can
	// still map a few of them.
	MaxUnitsPerFile = 1 << 24
)

// LogReader is the storage seam the FSM uses to rebuild consume queues from
// the retained raft log (the CommitLog). raftlog.Store implements it.
type LogReader interface {
	FirstIndex() (uint64, error)
	LastIndex() (uint64, error)
	// Scan calls fn for every stored entry with index in [from, to], in order.
	// data is only valid during the call.
	Scan(from, to uint64, fn func(index uint64, typ raft.LogType, data []byte) error) error
}

// Config configures an FSM. The zero value is not valid: Dir is required.
type Config struct {
	// Dir is the directory holding consume queue files (Dir/cq/...). Required.
	Dir string
	// UnitsPerFile is the number of 28-byte units in each consume queue file.
	// Default DefaultUnitsPerFile (262144, 7 MiB). Must be <= MaxUnitsPerFile.
	// Changing it between runs is safe: files are named by base offset.
	UnitsPerFile int
	// Log is the retained raft log, used by Restore to rebuild missing or
	// short consume queues. Optional; without it such a Restore fails.
	Log LogReader
	// Logger receives lifecycle and error logs. Default: a null logger.
	Logger hclog.Logger
	// OnAppend, if set, is called at the end of Apply/ApplyBatch, outside the
	// state lock, once for each queue that received messages, with the
	// queue's new next offset. It runs on raft's FSM goroutine and must not
	// block (the broker uses it to wake long-polling consumers).
	OnAppend func(topicID uint32, topic string, queueID uint32, next uint64)
	// IndexEntriesPerFile is the capacity of one message index file
	// (index.go). Default DefaultIndexEntriesPerFile.
	IndexEntriesPerFile int
}

// DefaultConfig returns a Config with defaults filled in; Dir is still empty.
func DefaultConfig() Config {
	return Config{UnitsPerFile: DefaultUnitsPerFile}
}

func (c Config) withDefaults() Config {
	if c.UnitsPerFile == 0 {
		c.UnitsPerFile = DefaultUnitsPerFile
	}
	if c.IndexEntriesPerFile == 0 {
		c.IndexEntriesPerFile = DefaultIndexEntriesPerFile
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Validate reports every problem with c, joined.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("fsm: config: Dir is required"))
	}
	if c.UnitsPerFile < 1 || c.UnitsPerFile > MaxUnitsPerFile {
		errs = append(errs, fmt.Errorf("fsm: config: UnitsPerFile %d outside [1, %d]", c.UnitsPerFile, MaxUnitsPerFile))
	}
	if c.IndexEntriesPerFile < 2 || c.IndexEntriesPerFile > 1<<26 {
		errs = append(errs, fmt.Errorf("fsm: config: IndexEntriesPerFile %d outside [2, %d]", c.IndexEntriesPerFile, 1<<26))
	}
	return errors.Join(errs...)
}
