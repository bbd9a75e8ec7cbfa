//go:build !rmqfault

package raftlog

import "github.com/hashicorp/raft"

// The default build has no fault hooks: these compile to nothing. The
// rmqfault build (fault_on.go) injects faults here; see doc.go.

func defaultFS() VFS { return osFS{} }

func (s *Store) faultEvent(string, ...string) (end func()) { return noFault }

func (s *Store) faultSink(sink raft.SnapshotSink) raft.SnapshotSink { return sink }

func noFault() {}
