//go:build !linux

package fsm

import "os"

// fallocate is Linux-only; elsewhere mapped files are written into holes.
func fallocate(*os.File, int64, int64) (bool, error) { return false, nil }
