package fsm

import "os"

// reserveChunk is how far ahead of the writer the blocks of a mapped
// file (consume queue, message index) are reserved with fallocate. The
// files are sparse (ftruncate), and a store into a mapped hole on a full
// file system raises SIGBUS, which kills the process; with the blocks
// reserved first, a full disk is an ENOSPC error from reserve instead,
// which marks the queue (or the index) broken until a restart rebuilds
// it from the log. One fallocate per 16 KiB (585 units); a queue holds at
// most that much more on disk than it uses.
const reserveChunk = 16 << 10

// reservation tracks the reserved prefix of one mapped file (from the
// first write of this process: earlier blocks were written already).
type reservation struct {
	from, to int64 // reserved [from, to); to == -1: fallocate unsupported
}

// reserve makes sure the blocks of [off, off+n) of f are allocated;
// size bounds the file.
func (r *reservation) reserve(f *os.File, off, n, size int64) error {
	end := off + n
	if r.to < 0 || off >= r.from && end <= r.to {
		return nil
	}
	if r.to == 0 || off < r.from || off > r.to {
		r.from = off &^ (reserveChunk - 1)
		r.to = r.from
	}
	to := min(max(end, r.to+reserveChunk), size)
	supported, err := fallocate(f, r.to, to-r.to)
	if err != nil {
		return err
	}
	if !supported {
		r.to = -1
		return nil
	}
	r.to = to
	return nil
}
