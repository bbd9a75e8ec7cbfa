package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
)

func (h *harness) lock(group, client string, now, lease int64, qs ...QueueRef) []QueueRef {
	h.t.Helper()
	data, err := Encode(LockQueues{Group: group, ClientID: client, Queues: qs, Now: now, Lease: lease})
	if err != nil {
		h.t.Fatalf("Encode: %v", err)
	}
	res, ok := h.applyLog(raft.LogCommand, data).(*LockResult)
	if !ok {
		h.t.Fatalf("LockQueues apply did not return *LockResult")
	}
	return res.Granted
}

func qref(topic string, ids ...uint32) []QueueRef {
	out := []QueueRef{}
	for _, id := range ids {
		out = append(out, QueueRef{Topic: topic, QueueID: id})
	}
	return out
}

func owners(f *FSM, group string) map[string]string {
	out := map[string]string{}
	for _, l := range f.Locks(group) {
		out[fmt.Sprintf("%s/%s/%d", l.Group, l.Topic, l.QueueID)] = l.Owner
	}
	return out
}

func TestLockApply(t *testing.T) {
	h := newHarness(t, 16)
	const lease = 60_000
	check := func(what string, want, got []QueueRef) {
		t.Helper()
		if got == nil {
			got = []QueueRef{}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", what, diff)
		}
	}
	check("a takes free queues", qref("t", 0, 1), h.lock("g", "a", 1000, lease, qref("t", 0, 1)...))
	check("b is refused a's queue", qref("t", 2), h.lock("g", "b", 2000, lease, qref("t", 1, 2)...))
	check("a renews", qref("t", 0), h.lock("g", "a", 30_000, lease, qref("t", 0)...))
	check("a renews at an earlier stamp", qref("t", 0), h.lock("g", "a", 20_000, lease, qref("t", 0)...))
	check("a's lease on t/1 still runs", qref("t"), h.lock("g", "b", 60_999, lease, qref("t", 1)...))
	check("a's lease on t/1 ended at 61000", qref("t", 1), h.lock("g", "b", 61_000, lease, qref("t", 1)...))
	check("the renewal keeps t/0", qref("t"), h.lock("g", "b", 61_000, lease, qref("t", 0)...))
	check("a duplicate is granted once", qref("u", 0), h.lock("g", "c", 61_000, lease, qref("u", 0, 0)...))
	check("groups are independent", qref("t", 0), h.lock("other", "x", 61_000, lease, qref("t", 0)...))

	want := []QueueLock{
		{Group: "g", Topic: "t", QueueID: 0, Owner: "a", Granted: 30_000, Expires: 90_000},
		{Group: "g", Topic: "t", QueueID: 1, Owner: "b", Granted: 61_000, Expires: 121_000},
		{Group: "g", Topic: "t", QueueID: 2, Owner: "b", Granted: 2000, Expires: 62_000},
		{Group: "g", Topic: "u", QueueID: 0, Owner: "c", Granted: 61_000, Expires: 121_000},
		{Group: "other", Topic: "t", QueueID: 0, Owner: "x", Granted: 61_000, Expires: 121_000},
	}
	if diff := cmp.Diff(want, h.f.Locks("")); diff != "" {
		t.Fatalf("lock table (-want +got):\n%s", diff)
	}

	// Releases: only the owner's, and GrantedBefore spares later grants.
	h.mustCmd(UnlockQueues{Group: "g", ClientID: "b", Queues: qref("t", 0)})
	h.mustCmd(UnlockQueues{Group: "g", ClientID: "b", All: true, GrantedBefore: 50_000})
	if diff := cmp.Diff(map[string]string{"g/t/0": "a", "g/t/1": "b", "g/u/0": "c"}, owners(h.f, "g")); diff != "" {
		t.Fatalf("after b's releases (-want +got):\n%s", diff)
	}
	h.mustCmd(UnlockQueues{Group: "g", ClientID: "a", Queues: qref("t", 0)})
	check("a released t/0", qref("t", 0), h.lock("g", "b", 62_000, lease, qref("t", 0)...))

	// A later lock drops the group's expired locks.
	check("d at 200000", qref("t", 3), h.lock("g", "d", 200_000, lease, qref("t", 3)...))
	if diff := cmp.Diff(map[string]string{"g/t/3": "d"}, owners(h.f, "g")); diff != "" {
		t.Fatalf("expired locks must be dropped (-want +got):\n%s", diff)
	}
	h.mustCmd(UnlockQueues{Group: "g", ClientID: "d", All: true})
	if got := h.f.Locks("g"); len(got) != 0 {
		t.Fatalf("after the last release got %v, want no locks", got)
	}
}

func TestLockCommandsRejectInvalid(t *testing.T) {
	ok := LockQueues{Group: "g", ClientID: "a", Queues: qref("t", 0), Now: 1, Lease: 1}
	mod := func(f func(*LockQueues)) LockQueues { c := ok; f(&c); return c }
	tests := []struct {
		name string
		cmd  Command
	}{
		{"lock without group", mod(func(c *LockQueues) { c.Group = "" })},
		{"lock without client", mod(func(c *LockQueues) { c.ClientID = "" })},
		{"lock long client", mod(func(c *LockQueues) { c.ClientID = strings.Repeat("c", 256) })},
		{"lock bad topic", mod(func(c *LockQueues) { c.Queues = qref("a b", 0) })},
		{"lock zero lease", mod(func(c *LockQueues) { c.Lease = 0 })},
		{"lock no time", mod(func(c *LockQueues) { c.Now = 0 })},
		{"lock lease overflows", mod(func(c *LockQueues) { c.Lease = math.MaxInt64 })},
		{"lock too many queues", mod(func(c *LockQueues) { c.Queues = make([]QueueRef, MaxLockQueues+1) })},
		{"unlock without client", UnlockQueues{Group: "g"}},
		{"unlock negative cutoff", UnlockQueues{Group: "g", ClientID: "a", GrantedBefore: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Encode(tc.cmd); !errors.Is(err, ErrInvalidCommand) {
				t.Errorf("got %v, want ErrInvalidCommand", err)
			}
		})
	}
}

func TestLockSnapshotRoundTrip(t *testing.T) {
	h := newHarness(t, 16)
	h.mustCmd(CreateTopic{Name: "t", Queues: 4})
	if !bytes.Equal(snapshotBytes(t, h.f), snapshotBytes(t, h.f)) || bytes.Contains(snapshotBytes(t, h.f), []byte("locks")) {
		t.Fatal("a snapshot without locks must keep the format written before locks existed")
	}
	h.lock("g", "a", 1000, 60_000, qref("t", 0, 1)...)
	h.lock("g", "b", 2000, 60_000, qref("t", 2)...)
	h.lock("h", "a", 3000, 10_000, qref("t", 0)...)
	snap := snapshotBytes(t, h.f)
	f2 := newFSM(t, t.TempDir(), 16, h.log)
	if err := restore(t, f2, snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if diff := cmp.Diff(h.f.Locks(""), f2.Locks("")); diff != "" {
		t.Fatalf("restored locks (-want +got):\n%s", diff)
	}
	if !bytes.Equal(snap, snapshotBytes(t, f2)) {
		t.Error("a restored replica snapshots different bytes")
	}
	// The restored replica decides the next command as the original does.
	h2 := &harness{t: t, f: f2, log: h.log, idx: h.idx}
	for _, hh := range []*harness{h, h2} {
		if got := hh.lock("g", "c", 5000, 60_000, qref("t", 0, 2, 3)...); !cmp.Equal(got, qref("t", 3)) {
			t.Errorf("c after restore got %v, want only t/3", got)
		}
	}
}

// TestRestoreSnapshotWithoutLocks restores a snapshot in the layout written
// before the lock table existed.
func TestRestoreSnapshotWithoutLocks(t *testing.T) {
	h := newHarness(t, 16)
	h.mustCmd(CreateTopic{Name: "t", Queues: 2})
	h.send(1, msg("t", h.topicID("t"), 1, "x"))
	type oldState struct { // snapState before Locks
		Applied     uint64            `msgpack:"applied"`
		LogStart    uint64            `msgpack:"log_start"`
		LastTopicID uint32            `msgpack:"last_topic_id"`
		Topics      []snapTopic       `msgpack:"topics"`
		Groups      []snapGroup       `msgpack:"groups"`
		ResetEpochs map[string]uint64 `msgpack:"reset_epochs,omitempty"`
		Nodes       map[string]string `msgpack:"nodes,omitempty"`
	}
	cur, err := readSnapshot(bytes.NewReader(snapshotBytes(t, h.f)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := msgpack.Marshal(&oldState{Applied: cur.Applied, LogStart: cur.LogStart, LastTopicID: cur.LastTopicID, Topics: cur.Topics, Groups: cur.Groups})
	if err != nil {
		t.Fatal(err)
	}
	f2 := newFSM(t, t.TempDir(), 16, h.log)
	if err := restore(t, f2, append([]byte{snapshotVersion}, body...)); err != nil {
		t.Fatalf("Restore of a pre-lock snapshot: %v", err)
	}
	if diff := cmp.Diff(dump(t, h.f), dump(t, f2)); diff != "" {
		t.Fatalf("restored state (-want +got):\n%s", diff)
	}
}
