package client

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// localOffsets keeps a Broadcasting consumer's offsets in memory and,
// when dir is set, in dir/<group>.offsets.json (written to a temporary
// file and renamed, so a crash leaves the old or the new file).
type localOffsets struct {
	path string

	fileMu sync.Mutex // serialises persist
	mu     sync.Mutex
	m      map[string]uint64
}

func loadLocalOffsets(dir, group string) (*localOffsets, error) {
	lo := &localOffsets{m: make(map[string]uint64)}
	if dir == "" {
		return lo, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("client: offset dir: %w", err)
	}
	lo.path = filepath.Join(dir, group+".offsets.json")
	b, err := os.ReadFile(lo.path)
	switch {
	case os.IsNotExist(err):
		return lo, nil
	case err != nil:
		return nil, fmt.Errorf("client: read offsets: %w", err)
	}
	if err := json.Unmarshal(b, &lo.m); err != nil {
		return nil, fmt.Errorf("client: offsets file %s: %w", lo.path, err)
	}
	if lo.m == nil { // the file said null: the first set would panic
		lo.m = make(map[string]uint64)
	}
	return lo, nil
}

func (lo *localOffsets) get(q Queue) (uint64, bool) {
	lo.mu.Lock()
	defer lo.mu.Unlock()
	off, ok := lo.m[q.String()]
	return off, ok
}

func (lo *localOffsets) set(q Queue, off uint64) {
	lo.mu.Lock()
	lo.m[q.String()] = off
	lo.mu.Unlock()
}

func (lo *localOffsets) persist() error {
	if lo.path == "" {
		return nil
	}
	lo.fileMu.Lock()
	defer lo.fileMu.Unlock()
	lo.mu.Lock()
	b, err := json.MarshalIndent(lo.m, "", "  ")
	lo.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := lo.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("client: write offsets: %w", err)
	}
	if err := os.Rename(tmp, lo.path); err != nil {
		return fmt.Errorf("client: write offsets: %w", err)
	}
	return nil
}
