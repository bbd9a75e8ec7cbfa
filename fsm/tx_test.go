package fsm

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

func halfMsg(topic string, id, q uint32, body string) Message {
	m := msg(topic, id, q, body)
	m.Properties = map[string]string{PropTransaction: "true", "PGROUP": "pg"}
	return m
}

func (h *harness) endTx(now int64, items ...TxEnd) *EndTxResult {
	h.t.Helper()
	res, ok := h.applyLog(raft.LogCommand, mustEncode(h.t, EndTx{Now: now, Items: items})).(*EndTxResult)
	if !ok {
		h.t.Fatal("EndTx apply did not return *EndTxResult")
	}
	return res
}

// txHarness has topic x (1 queue) with a plain message and three halves
// (entry 2: "plain", "h1", "h2", "h3" at positions r[1..3]).
func txHarness(t *testing.T) (*harness, []TxRef) {
	h := newHarness(t, 16)
	h.mustCmd(CreateTopic{Name: "x", Queues: 1})
	id := h.topicID("x")
	res := h.send(popT0, msg("x", id, 0, "plain"), halfMsg("x", id, 0, "h1"), halfMsg("x", id, 0, "h2"), halfMsg("x", id, 0, "h3"))
	if want := []int64{0, OffsetHalf, OffsetHalf, OffsetHalf}; !cmp.Equal(res.Offsets, want) {
		t.Fatalf("batch offsets %v, want %v", res.Offsets, want)
	}
	var refs []TxRef
	for _, p := range res.Positions[1:] {
		refs = append(refs, TxRef{Index: 2, Pos: p})
	}
	return h, refs
}

// TestTransactionsCommitOnceRollBackAndCheck: halves are invisible until
// committed; a commit appends a unit pointing at the half's own record,
// once however often it is repeated; a rollback discards; checks are
// counted; the broker's own rollbacks are remembered.
func TestTransactionsCommitOnceRollBackAndCheck(t *testing.T) {
	h, refs := txHarness(t)
	f := h.f
	if _, next, _ := f.QueueRange("x", 0); next != 1 {
		t.Fatalf("next %d: halves must be invisible", next)
	}
	if got := f.Halves(); len(got) != 3 || got[0].StoreTime != popT0 {
		t.Fatalf("halves %+v", got)
	}
	if pin, ok := f.PinnedIndex(); !ok || pin != 2 {
		t.Fatalf("pinned %d %v: halves pin their record", pin, ok)
	}
	if d := f.DueHalves(popT0+5999, 6000, 60000, 10); len(d) != 0 {
		t.Fatalf("due before the timeout: %+v", d)
	}
	h.mustCmd(CheckTx{Now: popT0 + 6000, Items: []TxRef{refs[2]}})
	if d := f.DueHalves(popT0+6000, 6000, 60000, 10); len(d) != 2 || d[0].TxRef != refs[0] {
		t.Fatalf("due at the timeout: %+v (the checked one waits for the interval)", d)
	}
	r := h.endTx(popT0+7000, TxEnd{TxRef: refs[0], Commit: true}, TxEnd{TxRef: refs[1]}, TxEnd{TxRef: refs[0], Commit: true})
	if want := []TxOutcome{TxCommitted, TxRolledBack, TxNotPending}; !cmp.Equal(r.Outcomes, want) || r.Offsets[0] != 1 {
		t.Fatalf("end outcomes %v offsets %v", r.Outcomes, r.Offsets)
	}
	units, err := f.Units("x", 0, 0, 10, nil)
	if err != nil || len(units) != 2 || units[1].Index != 2 || units[1].Pos != refs[0].Pos || units[1].StoreTime != popT0+7000 {
		t.Fatalf("units %+v, %v: the commit points at the half's record", units, err)
	}
	if r := h.endTx(popT0+8000, TxEnd{TxRef: refs[1], Commit: true}); r.Outcomes[0] != TxNotPending {
		t.Fatalf("commit after rollback: %v", r.Outcomes[0])
	}
	hs := f.Halves()
	if len(hs) != 1 || hs[0].Checks != 1 || hs[0].LastCheck != popT0+6000 {
		t.Fatalf("halves %+v", hs)
	}
	h.endTx(popT0+9000, TxEnd{TxRef: refs[2], ByBroker: true})
	st, disc := f.TxInfo()
	if st != (TxStats{Committed: 1, RolledBack: 2, BrokerRolledBack: 1}) || len(disc) != 1 || disc[0].TxRef != refs[2] || disc[0].Checks != 1 {
		t.Fatalf("tx info %+v %+v", st, disc)
	}
	if _, ok := f.PinnedIndex(); !ok {
		t.Fatal("the committed unit's record is no longer pinned")
	}
}

// TestTransactionsSurviveSnapshotAndRebuild: pending halves, counters
// and committed units come back from a snapshot, from kept consume
// queues and from a rebuild of the log (a repeated commit adds nothing).
func TestTransactionsSurviveSnapshotAndRebuild(t *testing.T) {
	h, refs := txHarness(t)
	h.endTx(popT0+1, TxEnd{TxRef: refs[0], Commit: true})
	h.endTx(popT0+2, TxEnd{TxRef: refs[0], Commit: true}, TxEnd{TxRef: refs[1]})
	h.mustCmd(CheckTx{Now: popT0 + 3, Items: []TxRef{refs[2]}})
	snap := snapshotBytes(t, h.f)
	want := dump(t, h.f)
	for name, dir := range map[string]string{"kept consume queues": copyDir(t, h.f), "rebuilt from the log": t.TempDir()} {
		t.Run(name, func(t *testing.T) {
			f2 := newFSM(t, dir, 16, h.log)
			if err := restore(t, f2, snap); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
				t.Fatalf("restored state (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(h.f.Halves(), f2.Halves()); diff != "" {
				t.Fatalf("halves (-want +got):\n%s", diff)
			}
			s1, _ := h.f.TxInfo()
			if s2, _ := f2.TxInfo(); s1 != s2 {
				t.Fatalf("tx stats %+v, want %+v", s2, s1)
			}
		})
	}
}
