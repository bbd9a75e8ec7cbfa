package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// counterFSM counts applied commands; its snapshot is the 8-byte count.
type counterFSM struct{ n atomic.Uint64 }

func (f *counterFSM) Apply(*raft.Log) interface{} { f.n.Add(1); return nil }

func (f *counterFSM) Snapshot() (raft.FSMSnapshot, error) { return counterSnap(f.n.Load()), nil }

func (f *counterFSM) Restore(rc io.ReadCloser) error {
	st, err := SnapshotState(rc) // the broker wraps FSM.Restore the same way
	if err != nil {
		return err
	}
	defer st.Close()
	var b [8]byte
	if _, err := io.ReadFull(st, b[:]); err != nil {
		return err
	}
	f.n.Store(binary.LittleEndian.Uint64(b[:]))
	return nil
}

type counterSnap uint64

func (c counterSnap) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(binary.LittleEndian.AppendUint64(nil, uint64(c))); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (counterSnap) Release() {}

type node struct {
	id    raft.ServerID
	addr  raft.ServerAddress
	trans *raft.InmemTransport
	store *Store
	raft  *raft.Raft
}

func startNode(t *testing.T, i int) *node {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(t, filepath.Join(dir, "log"))
	cfg.Logger = testLogger(t).Named(fmt.Sprint("node", i))
	n := &node{id: raft.ServerID(fmt.Sprint("node", i)), store: openStore(t, cfg)}
	n.addr, n.trans = raft.NewInmemTransport(raft.ServerAddress(n.id))
	snaps, err := NewSnapshotStore(filepath.Join(dir, "snaps"), 2, n.store, cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = n.id
	rc.HeartbeatTimeout = 50 * time.Millisecond
	rc.ElectionTimeout = 50 * time.Millisecond
	rc.LeaderLeaseTimeout = 50 * time.Millisecond
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = 1 << 40 // snapshots only when the test asks
	rc.TrailingLogs = 10
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: string(n.id), Output: testWriter{t}, Level: hclog.Warn})
	n.raft, err = raft.NewRaft(rc, &counterFSM{}, n.store, raft.NewInmemStore(), snaps, n.trans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.raft.Shutdown().Error(); err != nil {
			t.Errorf("shutdown %s: %v", n.id, err)
		}
	})
	return n
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", d, err)
		}
		<-time.After(5 * time.Millisecond) // poll interval, not a wait for state
	}
}

// TestClusterNewVoterGetsRetainedLog is the key proof: after a snapshot and
// a purge on every node, a brand-new voter receives the leader's whole
// retained log through the shipping snapshot store, not just FSM state.
func TestClusterNewVoterGetsRetainedLog(t *testing.T) {
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, startNode(t, i))
	}
	connect := func() {
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b {
					a.trans.Connect(b.addr, b.trans)
				}
			}
		}
	}
	connect()
	var servers []raft.Server
	for _, n := range nodes {
		servers = append(servers, raft.Server{ID: n.id, Address: n.addr})
	}
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	var leader *node
	eventually(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if n.raft.State() == raft.Leader {
				leader = n
				return nil
			}
		}
		return fmt.Errorf("no leader")
	})
	payload := bytes.Repeat([]byte("m"), 1024)
	findLeader := func() {
		eventually(t, 10*time.Second, func() error {
			for _, n := range nodes {
				if n.raft.State() == raft.Leader {
					leader = n
					return nil
				}
			}
			return fmt.Errorf("no leader")
		})
	}
	// A loaded machine may move leadership mid-run: the entries of a
	// deposed leader's window are proposed again to the new one (the test
	// needs enough log, not an exact count).
	for i, retries := 0, 0; i < 600; i++ {
		f := leader.raft.Apply(payload, 5*time.Second)
		if i%50 == 49 || i == 599 {
			if err := f.Error(); err != nil {
				if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) || retries == 10 {
					t.Fatal(err)
				}
				retries++
				findLeader()
				i -= 50
			}
		}
	}
	if err := leader.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	target := leader.raft.LastIndex()
	eventually(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if n.raft.AppliedIndex() < target {
				return fmt.Errorf("%s applied %d < %d", n.id, n.raft.AppliedIndex(), target)
			}
		}
		return nil
	})
	for _, n := range nodes {
		if err := n.raft.Snapshot().Error(); err != nil {
			t.Fatalf("snapshot %s: %v", n.id, err)
		}
		if n.store.AllowedPrefix() == 0 {
			t.Fatalf("%s: raft's compaction did not raise AllowedPrefix", n.id)
		}
		if res, err := n.store.Purge(target / 2); err != nil || res.FirstIndex <= 1 {
			t.Fatalf("purge %s got (%+v, %v), want the prefix gone", n.id, res, err)
		}
	}
	first, last := bounds(t, leader.store)

	newbie := startNode(t, 4)
	nodes = append(nodes, newbie)
	connect()
	if err := leader.raft.AddVoter(newbie.id, newbie.addr, 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := leader.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		// Against whoever leads now: under load leadership may move, and a
		// new leader's no-op and configuration entries lengthen the log.
		cur := leader
		for _, n := range nodes {
			if n.raft.State() == raft.Leader {
				cur = n
			}
		}
		_, last = bounds(t, cur.store)
		f, l := bounds(t, newbie.store)
		if f != first || l != last {
			return fmt.Errorf("new voter log [%d, %d], leader %s [%d, %d]", f, l, cur.id, first, last)
		}
		return nil
	})
	for i := first; i <= last; i++ {
		lt, ld, err := leader.store.ReadData(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		nt, nd, err := newbie.store.ReadData(i, nil)
		if err != nil || nt != lt || !bytes.Equal(nd, ld) {
			t.Fatalf("entry %d on the new voter got (%v, %d bytes, %v), want the leader's (%v, %d bytes)", i, nt, len(nd), err, lt, len(ld))
		}
	}
	// The new voter keeps working as a replica.
	if err := leader.raft.Apply(payload, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	want := leader.raft.LastIndex()
	eventually(t, 10*time.Second, func() error {
		if _, l := bounds(t, newbie.store); l < want {
			return fmt.Errorf("new voter last %d < %d", l, want)
		}
		return nil
	})
	t.Logf("leader log [%d, %d], new voter received it via a shipped snapshot", first, want)
}
