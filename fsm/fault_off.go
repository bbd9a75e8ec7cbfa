//go:build !rmqfault

package fsm

import "os"

// fsync fsyncs f. The rmqfault build (fault_on.go) may delay or fail it
// first; this one has no fault hooks.
func fsync(f *os.File) error { return f.Sync() }
