package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// cleanHistory is a keyed, orderly run that kept every guarantee: two
// keys (queue 0 and 1) of three sends each, stored on three identical
// replicas, received by member a (queue 0) and b (queue 1), one fault,
// and committed offsets that only grow.
func cleanHistory() (*History, []Replica) {
	h := &History{Run: "r", Topic: "t", Queues: 2, Mode: Mode{Keyed: true, Orderly: true}}
	rep := Replica{Node: "n0", Queues: map[uint32][]Stored{}}
	i := 0
	for k := 0; k < 2; k++ {
		for seq := 0; seq < 3; seq++ {
			id := fmt.Sprintf("k%d-%d", k, seq)
			q, off := uint32(k), uint64(seq)
			ms := 10 * (3*k + seq)
			h.Sends = append(h.Sends, Send{ID: id, Key: fmt.Sprint("k", k), Seq: seq, BodyHash: "b-" + id,
				Start: at(ms), End: at(ms + 5), OK: true, MsgID: "M" + id, Queue: q, Offset: off})
			rep.Queues[q] = append(rep.Queues[q], Stored{Offset: off, RaftIndex: uint64(10 + 3*k + seq), StoreTime: int64(ms), ID: id, MsgID: "M" + id, BodyHash: "b-" + id})
			who := []string{"a", "b"}[k]
			h.Receives = append(h.Receives, Receive{Index: i, Consumer: who, ID: id, MsgID: "M" + id, BodyHash: "b-" + id,
				Queue: q, Offset: off, Start: at(100 + 10*(3*k+seq)), End: at(101 + 10*(3*k+seq))})
			i++
		}
	}
	h.Faults = []FaultRecord{{Name: "f", Start: at(12), Healed: at(20), Recovered: at(30)}}
	for j, off := range []uint64{0, 1, 3} {
		h.Offsets = append(h.Offsets, OffsetSample{At: at(200 + j*10), Node: "n0", Incarnation: 1, Queue: 0, Offset: off})
	}
	reps := []Replica{rep, cloneReplica(rep, "n1"), cloneReplica(rep, "n2")}
	return h, reps
}

func cloneReplica(r Replica, node string) Replica {
	c := Replica{Node: node, Queues: map[uint32][]Stored{}}
	for q, ms := range r.Queues {
		c.Queues[q] = append([]Stored(nil), ms...)
	}
	return c
}

func TestCheckClean(t *testing.T) {
	h, reps := cleanHistory()
	r := Check(h, reps)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.Attempts != 6 || r.Acked != 6 || r.Delivered != 6 || !r.ReplicasIdentical {
		t.Errorf("got attempts %d acked %d delivered %d identical %v, want 6 6 6 true", r.Attempts, r.Acked, r.Delivered, r.ReplicasIdentical)
	}
	// The first send issued after the fault at 12ms is k0-2 at 20ms,
	// acknowledged at 25ms.
	if want := 13 * time.Millisecond; r.UnavailableMax != want || r.UnavailableP50 != want {
		t.Errorf("unavailable p50 %v max %v, want %v", r.UnavailableP50, r.UnavailableMax, want)
	}
}

// TestCheckCatches breaks a clean history in one way at a time; the
// checker must report exactly that kind of violation.
func TestCheckCatches(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kind   Kind
		also   []Kind // kinds the same damage implies
		break_ func(h *History, reps []Replica) []Replica
	}{
		{"acked send missing on every replica", KindLost, []Kind{KindUncommittedRead}, func(h *History, reps []Replica) []Replica {
			// As ack-before-commit does: k0-2 acknowledged, then truncated
			// by the new leader. Its consumer saw it before (a read of the
			// uncommitted entry).
			for i := range reps {
				reps[i].Queues[0] = reps[i].Queues[0][:2]
			}
			return reps
		}},
		{"acked send missing on one replica", KindLost, []Kind{KindReplicaDiverged}, func(h *History, reps []Replica) []Replica {
			reps[2].Queues[1] = reps[2].Queues[1][:2]
			return reps
		}},
		{"acked at another offset", KindMisplaced, nil, func(h *History, reps []Replica) []Replica {
			h.Sends[1].Offset = 7
			return reps
		}},
		{"stored twice", KindDuplicate, nil, func(h *History, reps []Replica) []Replica {
			for i := range reps {
				d := reps[i].Queues[0][0]
				d.Offset, d.RaftIndex = 3, 40
				reps[i].Queues[0] = append(reps[i].Queues[0], d)
			}
			return reps
		}},
		{"replicas differ", KindReplicaDiverged, nil, func(h *History, reps []Replica) []Replica {
			reps[1].Queues[1][2].RaftIndex++
			return reps
		}},
		{"replica unreadable", KindUnreadable, nil, func(h *History, reps []Replica) []Replica {
			reps[2] = Replica{Node: "n2", Err: "connection refused"}
			return reps
		}},
		{"key stored out of order", KindOrder, []Kind{KindMisplaced, KindUncommittedRead}, func(h *History, reps []Replica) []Replica {
			for i := range reps {
				q := reps[i].Queues[0]
				q[1].ID, q[2].ID = q[2].ID, q[1].ID
				q[1].BodyHash, q[2].BodyHash = q[2].BodyHash, q[1].BodyHash
				q[1].MsgID, q[2].MsgID = q[2].MsgID, q[1].MsgID
			}
			return reps
		}},
		{"key split over queues", KindOrder, []Kind{KindMisplaced, KindUncommittedRead}, func(h *History, reps []Replica) []Replica {
			for i := range reps {
				m := reps[i].Queues[0][2]
				reps[i].Queues[0] = reps[i].Queues[0][:2]
				m.Offset = 3
				reps[i].Queues[1] = append(reps[i].Queues[1], m)
			}
			return reps
		}},
		{"orderly first delivery out of order", KindOrder, nil, func(h *History, reps []Replica) []Replica {
			h.Receives[0].Index, h.Receives[1].Index = h.Receives[1].Index, h.Receives[0].Index
			return reps
		}},
		{"received but never sent", KindPhantom, nil, func(h *History, reps []Replica) []Replica {
			h.Receives = append(h.Receives, Receive{Index: 50, Consumer: "a", ID: "nobody", Queue: 0, Offset: 0, Start: at(500), End: at(501)})
			return reps
		}},
		{"received another body", KindCorrupt, nil, func(h *History, reps []Replica) []Replica {
			h.Receives[3].BodyHash = "garbage"
			return reps
		}},
		{"stored another body", KindCorrupt, nil, func(h *History, reps []Replica) []Replica {
			for i := range reps {
				reps[i].Queues[1][0].BodyHash = "garbage"
			}
			return reps
		}},
		{"read an entry the replicas do not hold", KindUncommittedRead, nil, func(h *History, reps []Replica) []Replica {
			// Offset 2 of queue 0 was read as k0-2, but the replicas hold
			// a failed send there: the read saw an entry later replaced.
			h.Sends = append(h.Sends, Send{ID: "k0-x", Key: "k0", Seq: 9, BodyHash: "b-x", Start: at(50), End: at(60), Err: "timeout"})
			for i := range reps {
				reps[i].Queues[0] = append(reps[i].Queues[0][:2], Stored{Offset: 2, RaftIndex: 12, ID: "k0-x", BodyHash: "b-x"},
					Stored{Offset: 3, RaftIndex: 13, ID: "k0-2", MsgID: "Mk0-2", BodyHash: "b-k0-2"})
			}
			h.Sends[2].Offset = 3
			return reps
		}},
		{"acked and stored, never received", KindUndelivered, nil, func(h *History, reps []Replica) []Replica {
			h.Receives = h.Receives[:5]
			return reps
		}},
		{"two orderly members at once", KindLockOverlap, nil, func(h *History, reps []Replica) []Replica {
			// b redelivers queue 0's offset 1 while a still processes it.
			h.Receives = append(h.Receives, Receive{Index: 60, Consumer: "b", ID: "k0-1", MsgID: "Mk0-1", BodyHash: "b-k0-1",
				Queue: 0, Offset: 1, Start: at(111), End: at(115)})
			return reps
		}},
		{"committed offset moved back", KindOffsetRegress, nil, func(h *History, reps []Replica) []Replica {
			h.Offsets = append(h.Offsets, OffsetSample{At: at(300), Node: "n0", Incarnation: 1, Queue: 0, Offset: 2})
			return reps
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, reps := cleanHistory()
			reps = tc.break_(h, reps)
			r := Check(h, reps)
			if r.Counts[tc.kind] == 0 {
				t.Fatalf("no %s violation found; counts %v", tc.kind, r.Counts)
			}
			// One damaged message is one violation, however many
			// replicas show it.
			if n := r.Counts[tc.kind]; n != 1 && tc.kind != KindOrder && tc.kind != KindReplicaDiverged {
				t.Errorf("%d %s violations, want 1: %v", n, tc.kind, r.Examples[tc.kind])
			}
			if r.Err() == nil || !strings.Contains(r.Err().Error(), string(tc.kind)) {
				t.Errorf("Err() = %v, want it to name %s", r.Err(), tc.kind)
			}
			for k, n := range r.Counts {
				if n > 0 && k != tc.kind && !contains(tc.also, k) {
					t.Errorf("also found %d %s: %v", n, k, r.Examples[k])
				}
			}
			t.Logf("%s: %v", tc.kind, r.Examples[tc.kind])
		})
	}
}

func contains(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// TestCheckAllowed: what the guarantees permit is not reported. A failed
// send may be stored (its outcome was unknown); redelivery by the same
// member is no overlap; a restarted node's replay and an operator reset
// may lower offsets; duplicates pass in an at-least-once history; a
// clustering history is not held to per-key delivery order.
func TestCheckAllowed(t *testing.T) {
	h, reps := cleanHistory()
	h.Sends = append(h.Sends, Send{ID: "k1-3", Key: "k1", Seq: 3, BodyHash: "b-k1-3", Start: at(60), End: at(70), Err: "timeout"})
	for i := range reps {
		reps[i].Queues[1] = append(reps[i].Queues[1], Stored{Offset: 3, RaftIndex: 16, ID: "k1-3", BodyHash: "b-k1-3"})
	}
	h.Receives = append(h.Receives,
		Receive{Index: 6, Consumer: "b", ID: "k1-3", BodyHash: "b-k1-3", Queue: 1, Offset: 3, Start: at(160), End: at(161)},
		Receive{Index: 7, Consumer: "b", ID: "k1-2", MsgID: "Mk1-2", BodyHash: "b-k1-2", Queue: 1, Offset: 2, Start: at(162), End: at(163)})
	h.Offsets = append(h.Offsets,
		OffsetSample{At: at(300), Node: "n0", Incarnation: 2, Queue: 0, Offset: 0}, // replay after a restart
		OffsetSample{At: at(400), Node: "n1", Incarnation: 1, Queue: 0, Offset: 5},
		OffsetSample{At: at(420), Node: "n1", Incarnation: 1, Queue: 0, Offset: 1})
	h.Resets = []time.Time{at(410)}
	r := Check(h, reps)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.StoredFail != 1 {
		t.Errorf("stored failed sends %d, want 1", r.StoredFail)
	}

	h, reps = cleanHistory()
	h.AtLeastOnce = true
	for i := range reps {
		d := reps[i].Queues[1][2]
		d.Offset, d.RaftIndex = 3, 50
		reps[i].Queues[1] = append(reps[i].Queues[1], d)
	}
	r = Check(h, reps)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.Counts[KindDuplicate] != 1 {
		t.Errorf("duplicates %d, want 1 (counted though allowed)", r.Counts[KindDuplicate])
	}

	h, reps = cleanHistory()
	h.Mode.Orderly = false
	h.Receives[0].Index, h.Receives[1].Index = h.Receives[1].Index, h.Receives[0].Index
	h.Receives = append(h.Receives, Receive{Index: 60, Consumer: "b", ID: "k0-1", MsgID: "Mk0-1", BodyHash: "b-k0-1",
		Queue: 0, Offset: 1, Start: at(111), End: at(115)})
	if err := Check(h, reps).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "sync-keyed-clustering",
		"async":                   "async-keyed-clustering",
		"unkeyed,orderly":         "sync-unkeyed-orderly",
		"async-unkeyed-orderly":   "async-unkeyed-orderly",
		"orderly keyed sync":      "sync-keyed-orderly",
		"async-keyed-clustering ": "async-keyed-clustering",
	} {
		m, err := ParseMode(in)
		if err != nil || m.String() != want {
			t.Errorf("ParseMode(%q) = %v, %v; want %s", in, m, err, want)
		}
	}
	if _, err := ParseMode("fast"); err == nil {
		t.Error("ParseMode(fast): no error")
	}
}

// purge makes retention's cut on rep: queue q keeps offsets from min on.
func purge(rep *Replica, q uint32, min uint64) {
	if rep.Min == nil {
		rep.Min = map[uint32]uint64{}
	}
	rep.Min[q] = min
	rep.Queues[q] = storedFrom(rep.Queues[q], min)
}

// TestCheckRetention: a prefix deleted by retention, to different depths
// on different replicas (read at different moments of a purge), is
// neither lost nor diverged when every deleted send was received at its
// acknowledged position; a deleted send never received, a send missing
// above the retained range, and a send received at two positions that
// retention deleted are caught.
func TestCheckRetention(t *testing.T) {
	h, reps := cleanHistory()
	purge(&reps[0], 0, 2)
	purge(&reps[1], 0, 1)
	purge(&reps[2], 0, 2)
	purge(&reps[1], 1, 1)
	r := Check(h, reps)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.Purged != 1 || !r.ReplicasIdentical {
		t.Errorf("purged %d identical %v, want 1 (k0-0 deleted everywhere; k0-1 and k1-0 still on a replica) and true", r.Purged, r.ReplicasIdentical)
	}

	h, reps = cleanHistory()
	h.Receives = h.Receives[1:] // k0-0 never received
	for i := range reps {
		purge(&reps[i], 0, 1)
	}
	if r := Check(h, reps); r.Counts[KindUndelivered] != 1 || !strings.Contains(r.Examples[KindUndelivered][0], "retention deleted it") {
		t.Errorf("a deleted send never received: %v %v, want 1 undelivered naming retention", r.Counts, r.Examples)
	}

	h, reps = cleanHistory()
	for i := range reps {
		purge(&reps[i], 0, 1)
	}
	reps[1].Queues[0] = reps[1].Queues[0][1:] // k0-2 missing on n1, above its Min
	if r := Check(h, reps); r.Counts[KindLost] != 1 {
		t.Errorf("missing above the retained range: %v, want 1 lost", r.Counts)
	}

	h, reps = cleanHistory()
	h.Receives = append(h.Receives, Receive{Index: 9, Consumer: "a", ID: "k0-0", MsgID: "Mk0-0", BodyHash: "b-k0-0",
		Queue: 0, Offset: 1, Start: at(300), End: at(301)}) // a second copy at offset 1 (k0-1 then at 2, ...)
	for i := range reps {
		purge(&reps[i], 0, 2)
	}
	if r := Check(h, reps); r.Counts[KindDuplicate] != 1 {
		t.Errorf("a send received at two deleted positions: %v, want 1 duplicate", r.Counts)
	}
}
