//go:build rmqfault

package fsm

import (
	"os"

	"github.com/rmq-dev/rmq/internal/fault"
)

// fsync fsyncs f, after the delay or instead of the error that the
// process's fault settings ask for fsm files (fsync-on=fsm; see
// internal/fault).
func fsync(f *os.File) error {
	if in := fault.Get(); in != nil {
		if err := in.Sync(fault.FSM, f.Name()); err != nil {
			return err
		}
	}
	return f.Sync()
}
