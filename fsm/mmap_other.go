//go:build !unix

package fsm

import (
	"errors"
	"os"
)

var errNoMmap = errors.New("fsm: memory-mapped consume queues need a unix system")

func mmapFile(*os.File, int) ([]byte, error) { return nil, errNoMmap }

func munmap([]byte) error { return nil }
