//go:build !linux

package fsm

// releasePages does nothing: outside Linux, MADV_DONTNEED on a shared
// mapping is not documented to keep dirty data, so mapped pages stay.
func releasePages([]byte) {}
