package chaos

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Kind names one class of violation the checker finds.
type Kind string

const (
	// KindLost: an acknowledged send is missing from a replica.
	KindLost Kind = "lost"
	// KindMisplaced: an acknowledged send is stored, but not at the
	// queue and offset its acknowledgement named.
	KindMisplaced Kind = "misplaced"
	// KindDuplicate: a message stored more than once (a violation unless
	// the history is AtLeastOnce).
	KindDuplicate Kind = "duplicate"
	// KindReplicaDiverged: replicas hold different queues.
	KindReplicaDiverged Kind = "replica-diverged"
	// KindUnreadable: a replica could not be read after the run.
	KindUnreadable Kind = "replica-unreadable"
	// KindOrder: a key's acknowledged sends are stored, or first
	// delivered by orderly consumers, out of their send order.
	KindOrder Kind = "order"
	// KindPhantom: a consumer received a message no one sent.
	KindPhantom Kind = "phantom"
	// KindCorrupt: a received or stored body differs from the one sent.
	KindCorrupt Kind = "corrupt"
	// KindUncommittedRead: a consumer received, at a queue position, a
	// message the replicas do not hold there after the run (it read an
	// entry that was never committed, or was overwritten).
	KindUncommittedRead Kind = "uncommitted-read"
	// KindUndelivered: an acknowledged, stored send never reached a
	// consumer before the run ended.
	KindUndelivered Kind = "undelivered"
	// KindLockOverlap: two orderly members processed one queue at once.
	KindLockOverlap Kind = "lock-overlap"
	// KindOffsetRegress: a replica's committed offset moved backwards
	// with no operator reset in between.
	KindOffsetRegress Kind = "offset-regress"
)

// AllKinds lists every Kind in report order.
var AllKinds = []Kind{KindLost, KindMisplaced, KindDuplicate, KindReplicaDiverged, KindUnreadable, KindOrder,
	KindPhantom, KindCorrupt, KindUncommittedRead, KindUndelivered, KindLockOverlap, KindOffsetRegress}

// maxExamples bounds the examples kept per kind.
const maxExamples = 10

// Result is the checker's verdict.
type Result struct {
	Attempts   int `json:"attempts"`      // send calls
	Acked      int `json:"acked"`         // of which acknowledged
	Failed     int `json:"failed"`        // returned an error (outcome unknown)
	StoredFail int `json:"stored_failed"` // failed sends found stored anyway (allowed)
	// Purged counts acknowledged sends that retention had deleted from
	// every replica by the time they were read: each was checked by its
	// deliveries instead (received at its acknowledged position, with
	// its body, else undelivered).
	Purged     int `json:"purged"`
	Deliveries int `json:"deliveries"` // messages handed to handlers
	Delivered  int `json:"delivered"`  // distinct sends delivered
	// Holds counts orderly members' stretches of processing one queue
	// (what the lock check compared); OffsetSamples the committed
	// offsets read from replicas (what the regress check compared).
	Holds         int `json:"holds"`
	OffsetSamples int `json:"offset_samples"`
	// Counts has the number of violations of each kind (duplicates: extra
	// stored copies, also when allowed).
	Counts map[Kind]int `json:"counts"`
	// Examples has the first few violations of each kind, readable.
	Examples map[Kind][]string `json:"examples,omitempty"`
	// FirstAcked is, for lost and misplaced sends, the earliest
	// acknowledgement of one: how soon into the run the damage was done.
	FirstAcked        map[Kind]time.Time `json:"first_acked,omitempty"`
	ReplicasIdentical bool               `json:"replicas_identical"`
	// Unavailable is, per fault, the time from its start to the first
	// acknowledgement of a send issued after it (-1: none).
	Unavailable    []time.Duration `json:"unavailable_ns"`
	UnavailableP50 time.Duration   `json:"unavailable_p50_ns"`
	UnavailableMax time.Duration   `json:"unavailable_max_ns"`
	atLeastOnce    bool
}

func (r *Result) add(k Kind, format string, args ...any) {
	r.Counts[k]++
	if len(r.Examples[k]) < maxExamples {
		r.Examples[k] = append(r.Examples[k], fmt.Sprintf(format, args...))
	}
}

func (r *Result) firstAcked(k Kind, t time.Time) {
	if f, ok := r.FirstAcked[k]; !ok || t.Before(f) {
		r.FirstAcked[k] = t
	}
}

// Err is nil if the run kept every guarantee, else it lists the
// violations by kind with examples.
func (r Result) Err() error {
	var errs []error
	for _, k := range AllKinds {
		n := r.Counts[k]
		if n == 0 || (k == KindDuplicate && r.atLeastOnce) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %d, e.g.\n\t%s", k, n, strings.Join(r.Examples[k], "\n\t")))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("chaos: history violates the guarantees:\n%w", errors.Join(errs...))
}

type position struct {
	queue  uint32
	offset uint64
}

func (p position) String() string { return fmt.Sprintf("q%d@%d", p.queue, p.offset) }

// Check judges a history against the replicas read after the run. It
// trusts neither side's claims about the other: acknowledgements are
// looked up in every replica, receives are matched to sends and to the
// stored queues, and replicas are compared with each other.
func Check(h *History, replicas []Replica) Result {
	r := Result{Counts: map[Kind]int{}, Examples: map[Kind][]string{}, FirstAcked: map[Kind]time.Time{}, atLeastOnce: h.AtLeastOnce}
	sends := map[string]*Send{}
	for i := range h.Sends {
		s := &h.Sends[i]
		sends[s.ID] = s
		r.Attempts++
		if s.OK {
			r.Acked++
		} else {
			r.Failed++
		}
	}
	checkReplicas(&r, h, replicas)
	where := checkStored(&r, h, sends, replicas)
	checkOrder(&r, h, where)
	checkReceives(&r, h, sends, replicas)
	if h.Mode.Orderly {
		checkLocks(&r, h)
	}
	checkOffsets(&r, h)
	unavailability(&r, h)
	return r
}

// checkReplicas compares every queue's hash across the readable replicas.
func checkReplicas(r *Result, h *History, replicas []Replica) {
	r.ReplicasIdentical = true
	var ok []Replica
	for _, rep := range replicas {
		if rep.Err != "" {
			r.add(KindUnreadable, "%s: %s", rep.Node, rep.Err)
			r.ReplicasIdentical = false
			continue
		}
		ok = append(ok, rep)
	}
	if len(ok) < 2 {
		return
	}
	for q := uint32(0); q < h.Queues; q++ {
		// Replicas read at different moments of a purge: compare what
		// all of them still hold.
		var from uint64
		for _, rep := range ok {
			from = max(from, rep.Min[q])
		}
		base := ok[0]
		for _, rep := range ok[1:] {
			if rep.HashFrom(q, from) == base.HashFrom(q, from) {
				continue
			}
			r.ReplicasIdentical = false
			r.add(KindReplicaDiverged, "queue %d: %s and %s differ: %s", q, base.Node, rep.Node,
				firstDifference(storedFrom(base.Queues[q], from), storedFrom(rep.Queues[q], from)))
		}
	}
}

func storedFrom(ms []Stored, from uint64) []Stored {
	for i, m := range ms {
		if m.Offset >= from {
			return ms[i:]
		}
	}
	return nil
}

func firstDifference(a, b []Stored) string {
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("at offset %d: %+v vs %+v", a[i].Offset, a[i], b[i])
		}
	}
	return fmt.Sprintf("%d vs %d messages", len(a), len(b))
}

// checkStored looks every send up in every replica: acknowledged ones
// must be stored exactly once, at the acknowledged position, with the
// body sent. Each send counts once however many replicas miss it. A send
// below a replica's retained range (Replica.Min) is not missing there;
// one that retention deleted from every replica must have been received
// at its acknowledged position instead. It returns, per send id, its
// first stored position in the first readable replica.
func checkStored(r *Result, h *History, sends map[string]*Send, replicas []Replica) map[string]position {
	var where map[string]position
	readable := 0
	purgedOn := map[string]int{}                   // send id -> replicas that deleted its position
	missing := map[string][]string{}               // send id -> nodes without it
	misplaced := map[string][]string{}             // send id -> nodes holding it elsewhere
	corrupt := map[string]string{}                 // send id -> first example
	copiesOn := map[string]map[string][]position{} // node -> send id -> positions
	for _, rep := range replicas {
		if rep.Err != "" {
			continue
		}
		copies := map[string][]position{}
		for q := uint32(0); q < h.Queues; q++ {
			for _, m := range rep.Queues[q] {
				copies[m.ID] = append(copies[m.ID], position{q, m.Offset})
				if s := sends[m.ID]; s != nil && m.BodyHash != s.BodyHash && corrupt[m.ID] == "" {
					corrupt[m.ID] = fmt.Sprintf("%s stores %s at q%d@%d with body %s, sent %s", rep.Node, m.ID, q, m.Offset, m.BodyHash, s.BodyHash)
				}
			}
		}
		copiesOn[rep.Node] = copies
		readable++
		if where == nil {
			where = map[string]position{}
			for id, ps := range copies {
				where[id] = ps[0]
				if len(ps) > 1 {
					r.Counts[KindDuplicate] += len(ps) - 1
					if len(r.Examples[KindDuplicate]) < maxExamples {
						r.Examples[KindDuplicate] = append(r.Examples[KindDuplicate], fmt.Sprintf("%s stores %s %d times: %v", rep.Node, id, len(ps), ps))
					}
				}
			}
			for i := range h.Sends {
				if s := &h.Sends[i]; !s.OK && len(copies[s.ID]) > 0 {
					r.StoredFail++
				}
			}
		}
		for i := range h.Sends {
			s := &h.Sends[i]
			if !s.OK {
				continue
			}
			switch ps := copies[s.ID]; {
			case len(ps) == 0 && s.Offset < rep.Min[s.Queue]:
				purgedOn[s.ID]++
			case len(ps) == 0:
				missing[s.ID] = append(missing[s.ID], rep.Node)
			case !containsPos(ps, position{s.Queue, s.Offset}):
				misplaced[s.ID] = append(misplaced[s.ID], rep.Node)
			}
		}
	}
	receivedAt := map[string]map[position]bool{} // send id -> positions it was received at, with its body
	for _, rc := range h.Receives {
		if s := sends[rc.ID]; s != nil && rc.BodyHash == s.BodyHash {
			if receivedAt[rc.ID] == nil {
				receivedAt[rc.ID] = map[position]bool{}
			}
			receivedAt[rc.ID][position{rc.Queue, rc.Offset}] = true
		}
	}
	for i := range h.Sends {
		s := &h.Sends[i]
		acked := position{s.Queue, s.Offset}
		if s.OK && readable > 0 && purgedOn[s.ID] == readable {
			r.Purged++
			if !receivedAt[s.ID][acked] {
				r.add(KindUndelivered, "%s acknowledged at %s at %s: retention deleted it from every replica before a consumer received it there (received at %v)",
					s.ID, acked, s.End.Format(timeFmt), keys(receivedAt[s.ID]))
			}
		}
		if nodes := missing[s.ID]; len(nodes) > 0 {
			r.firstAcked(KindLost, s.End)
			r.add(KindLost, "%s acknowledged at %s (%s, %s) is not on %v", s.ID, acked, s.MsgID, s.End.Format(timeFmt), nodes)
		} else if nodes := misplaced[s.ID]; len(nodes) > 0 {
			r.firstAcked(KindMisplaced, s.End)
			r.add(KindMisplaced, "%s acknowledged at %s is at %v on %v", s.ID, acked, copiesOn[nodes[0]][s.ID], nodes)
		}
		if e := corrupt[s.ID]; e != "" {
			r.add(KindCorrupt, "%s", e)
		}
	}
	return where
}

const timeFmt = "15:04:05.000"

func keys(m map[position]bool) []position {
	out := make([]position, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func containsPos(ps []position, p position) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// checkOrder: for keyed histories, a key's acknowledged sends must be
// stored in one queue at increasing offsets in send order.
func checkOrder(r *Result, h *History, where map[string]position) {
	if !h.Mode.Keyed {
		return
	}
	byKey := map[string][]*Send{}
	for i := range h.Sends {
		s := &h.Sends[i]
		if s.OK && s.Key != "" {
			byKey[s.Key] = append(byKey[s.Key], s)
		}
	}
	for key, ss := range byKey {
		sort.Slice(ss, func(i, j int) bool { return ss[i].Seq < ss[j].Seq })
		var prev *Send
		var prevPos position
		for _, s := range ss {
			p, ok := where[s.ID]
			if !ok {
				continue // lost: reported already
			}
			if prev != nil {
				switch {
				case p.queue != prevPos.queue:
					r.add(KindOrder, "key %s: seq %d stored in queue %d, seq %d in queue %d", key, prev.Seq, prevPos.queue, s.Seq, p.queue)
				case p.offset <= prevPos.offset:
					r.add(KindOrder, "key %s: seq %d stored at %s, before seq %d at %s", key, s.Seq, p, prev.Seq, prevPos)
				}
			}
			prev, prevPos = s, p
		}
	}
}

// checkReceives matches every receive to a send and to the replicas'
// stored message at its position, and finds acknowledged sends never
// received. For orderly keyed histories, a key's sends must be first
// delivered in send order.
func checkReceives(r *Result, h *History, sends map[string]*Send, replicas []Replica) {
	var truth *Replica
	for i := range replicas {
		if replicas[i].Err == "" {
			truth = &replicas[i]
			break
		}
	}
	stored := map[position]string{}
	if truth != nil {
		for q, ms := range truth.Queues {
			for _, m := range ms {
				stored[position{q, m.Offset}] = m.ID
			}
		}
	}
	firstDelivery := map[string]int{}           // send id -> receive index
	positions := map[string]map[position]bool{} // send id -> positions it was received at
	purgedPos := func(q uint32, off uint64) bool { return truth != nil && off < truth.Min[q] }
	recs := append([]Receive(nil), h.Receives...)
	sort.Slice(recs, func(i, j int) bool { return recs[i].Index < recs[j].Index })
	for _, rc := range recs {
		r.Deliveries++
		s := sends[rc.ID]
		if s == nil {
			r.add(KindPhantom, "%s received %q (%s) at q%d@%d: never sent", rc.Consumer, rc.ID, rc.MsgID, rc.Queue, rc.Offset)
			continue
		}
		if rc.BodyHash != s.BodyHash {
			r.add(KindCorrupt, "%s received %s with body %s, sent %s", rc.Consumer, rc.ID, rc.BodyHash, s.BodyHash)
		}
		if positions[rc.ID] == nil {
			positions[rc.ID] = map[position]bool{}
		}
		positions[rc.ID][position{rc.Queue, rc.Offset}] = true
		if truth != nil && !purgedPos(rc.Queue, rc.Offset) { // what retention deleted cannot be compared
			if id, ok := stored[position{rc.Queue, rc.Offset}]; !ok || id != rc.ID {
				r.add(KindUncommittedRead, "%s received %s at q%d@%d at %s; %s holds %q there", rc.Consumer, rc.ID, rc.Queue, rc.Offset,
					rc.Start.Format(timeFmt), truth.Node, id)
			}
		}
		if _, seen := firstDelivery[rc.ID]; !seen {
			firstDelivery[rc.ID] = rc.Index
			r.Delivered++
		}
	}
	// A message stored twice where retention deleted both copies is seen
	// only as deliveries at two positions (stored copies were counted by
	// checkStored; two visible copies never put a delivery below Min).
	for id, ps := range positions {
		if len(ps) < 2 {
			continue
		}
		for p := range ps {
			if purgedPos(p.queue, p.offset) {
				r.Counts[KindDuplicate] += len(ps) - 1
				if len(r.Examples[KindDuplicate]) < maxExamples {
					r.Examples[KindDuplicate] = append(r.Examples[KindDuplicate], fmt.Sprintf("%s received at %d positions %v (retention deleted some)", id, len(ps), keys(ps)))
				}
				break
			}
		}
	}
	for i := range h.Sends {
		s := &h.Sends[i]
		if _, got := firstDelivery[s.ID]; s.OK && !got && r.storedSomewhere(s, replicas) {
			r.add(KindUndelivered, "%s acknowledged at q%d@%d at %s was never received", s.ID, s.Queue, s.Offset, s.End.Format(timeFmt))
		}
	}
	if !h.Mode.Orderly || !h.Mode.Keyed {
		return
	}
	byKey := map[string][]*Send{}
	for i := range h.Sends {
		s := &h.Sends[i]
		if _, got := firstDelivery[s.ID]; s.OK && s.Key != "" && got {
			byKey[s.Key] = append(byKey[s.Key], s)
		}
	}
	for key, ss := range byKey {
		sort.Slice(ss, func(i, j int) bool { return ss[i].Seq < ss[j].Seq })
		for i := 1; i < len(ss); i++ {
			if firstDelivery[ss[i].ID] < firstDelivery[ss[i-1].ID] {
				r.add(KindOrder, "key %s: seq %d first delivered before seq %d (orderly)", key, ss[i].Seq, ss[i-1].Seq)
			}
		}
	}
}

// storedSomewhere: the send is in some readable replica (else it is lost,
// reported already, and not undelivered too).
func (r *Result) storedSomewhere(s *Send, replicas []Replica) bool {
	for _, rep := range replicas {
		if rep.Err != "" {
			continue
		}
		for _, m := range rep.Queues[s.Queue] {
			if m.ID == s.ID {
				return true
			}
		}
	}
	return false
}

// hold is one stretch of a member processing a queue: handler calls over
// contiguous offsets, from the start of the first to the end of the last.
// A member that loses a queue and gets it back resumes where the group
// committed, so its next delivery starts a new stretch.
type hold struct {
	consumer    string
	start, end  time.Time
	first, last uint64
}

// checkLocks: no two orderly members' holds of one queue overlap in time.
func checkLocks(r *Result, h *History) {
	recs := append([]Receive(nil), h.Receives...)
	sort.Slice(recs, func(i, j int) bool { return recs[i].Index < recs[j].Index })
	type key struct {
		consumer string
		queue    uint32
	}
	holds := map[key][]hold{}
	for _, rc := range recs {
		k := key{rc.Consumer, rc.Queue}
		hs := holds[k]
		if n := len(hs); n > 0 && (hs[n-1].last+1 == rc.Offset || hs[n-1].last == rc.Offset) && !rc.Start.Before(hs[n-1].start) {
			if rc.End.After(hs[n-1].end) {
				hs[n-1].end = rc.End
			}
			hs[n-1].last = max(hs[n-1].last, rc.Offset)
			continue
		}
		holds[k] = append(hs, hold{consumer: rc.Consumer, start: rc.Start, end: rc.End, first: rc.Offset, last: rc.Offset})
	}
	byQueue := map[uint32][]hold{}
	for k, hs := range holds {
		r.Holds += len(hs)
		byQueue[k.queue] = append(byQueue[k.queue], hs...)
	}
	for q, hs := range byQueue {
		sort.Slice(hs, func(i, j int) bool { return hs[i].start.Before(hs[j].start) })
		for i := range hs {
			for j := i + 1; j < len(hs) && hs[j].start.Before(hs[i].end); j++ {
				if hs[j].consumer == hs[i].consumer {
					continue
				}
				a, b := hs[i], hs[j]
				r.add(KindLockOverlap, "queue %d: %s processed [%d, %d] during %s..%s while %s processed [%d, %d] during %s..%s",
					q, a.consumer, a.first, a.last, a.start.Format(timeFmt), a.end.Format(timeFmt),
					b.consumer, b.first, b.last, b.start.Format(timeFmt), b.end.Format(timeFmt))
			}
		}
	}
}

// checkOffsets: within one process of one node, a queue's committed
// offset never decreases unless an operator reset happened in between.
func checkOffsets(r *Result, h *History) {
	type key struct {
		node  string
		inc   int
		queue uint32
	}
	series := map[key][]OffsetSample{}
	r.OffsetSamples = len(h.Offsets)
	for _, s := range h.Offsets {
		k := key{s.Node, s.Incarnation, s.Queue}
		series[k] = append(series[k], s)
	}
	for k, ss := range series {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].At.Before(ss[j].At) })
		for i := 1; i < len(ss); i++ {
			a, b := ss[i-1], ss[i]
			if b.Offset >= a.Offset || resetBetween(h.Resets, a.At, b.At) {
				continue
			}
			r.add(KindOffsetRegress, "%s (start %d) queue %d: committed offset %d at %s, then %d at %s",
				k.node, k.inc, k.queue, a.Offset, a.At.Format(timeFmt), b.Offset, b.At.Format(timeFmt))
		}
	}
}

func resetBetween(resets []time.Time, from, to time.Time) bool {
	for _, t := range resets {
		if t.After(from) && !t.After(to) {
			return true
		}
	}
	return false
}

// unavailability: per fault, from its start to the first acknowledgement
// of a send issued after it.
func unavailability(r *Result, h *History) {
	var got []time.Duration
	for _, f := range h.Faults {
		d := time.Duration(-1)
		for i := range h.Sends {
			s := &h.Sends[i]
			if s.OK && s.Start.After(f.Start) && (d < 0 || s.End.Sub(f.Start) < d) {
				d = s.End.Sub(f.Start)
			}
		}
		r.Unavailable = append(r.Unavailable, d)
		if d >= 0 {
			got = append(got, d)
		}
	}
	r.UnavailableP50, r.UnavailableMax = percentiles(got)
}
