//go:build linux

package fsm

import "syscall"

// releasePages drops b's pages from this process's page tables with
// MADV_DONTNEED. b is part of a MAP_SHARED file mapping, so nothing is
// lost: the pages stay in the page cache (a dirty one is still written
// back), and the next access maps the page again with a minor fault.
// Mapped pages count in the process's RSS until they are unmapped; see
// "Mapped pages" in doc.go.
func releasePages(b []byte) {
	if len(b) > 0 {
		_ = syscall.Madvise(b, syscall.MADV_DONTNEED) // only a hint: an error changes nothing
	}
}
