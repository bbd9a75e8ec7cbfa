package fsm

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// fallocate allocates the blocks of [off, off+n) of f without changing
// its size; supported is false when the file system cannot (the caller
// then writes into holes as before).
func fallocate(f *os.File, off, n int64) (supported bool, err error) {
	for {
		err = syscall.Fallocate(int(f.Fd()), 0, off, n)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
		return false, nil
	}
	return true, fmt.Errorf("reserve %d bytes of %s at %d: %w", n, f.Name(), off, err)
}
