package drill

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// Report is what a drill measured.
type Report struct {
	Acked      int `json:"acknowledged"` // messages acknowledged to producers
	Consumed   int `json:"consumed"`     // distinct messages the consumer received
	Lost       int `json:"lost"`         // acknowledged but never received
	Duplicates int `json:"duplicates"`   // deliveries beyond the first (redelivery or stored twice)
	// StoredDuplicates counts extra stored copies: deliveries of a
	// message from another queue position than its first (a resend the
	// broker stored again). Redeliveries of one copy are not counted.
	StoredDuplicates int                `json:"stored_duplicates"`
	OrderErrors      []string           `json:"order_errors"`
	SendErrors       map[string]int     `json:"send_errors"` // failed sends by error (retried by the drill)
	Disruptions      []DisruptionReport `json:"changes"`
	// UnavailableP50 and UnavailableMax summarise Disruptions.
	UnavailableP50 time.Duration `json:"unavailable_p50_ns"`
	UnavailableMax time.Duration `json:"unavailable_max_ns"`
	// Pauses are gaps between consecutive acknowledgements longer than
	// PauseThreshold, whoever caused them (kills by another process
	// included): a client's view of write unavailability.
	Pauses []time.Duration `json:"pauses_ns"`
	// LongestGap is the longest gap between consecutive acknowledgements
	// (any producer), over the threshold or not.
	LongestGap  time.Duration `json:"longest_gap_ns"`
	Redelivered uint64        `json:"redelivered"`
	// Resends counts sends the producer resent to a newer leader while an
	// earlier attempt was unanswered, and retries after an outcome was
	// unknown: each may have stored a copy (see Duplicates).
	Resends uint64 `json:"resends"`
	// Deduplicated counts sends the broker answered as a resend of a
	// message it had stored (producer dedup): not stored again.
	Deduplicated uint64 `json:"deduplicated"`
	// SteadyGap is the longest gap between acknowledgements before the
	// first mark: the baseline for the disruptions' LongestGap.
	SteadyGap time.Duration `json:"steady_gap_ns"`
}

// DisruptionReport is one marked disruption and how long writes paused:
// from the mark to the first acknowledged send issued after it.
type DisruptionReport struct {
	Name        string        `json:"name"`
	At          time.Time     `json:"at"`
	Unavailable time.Duration `json:"unavailable_ns"` // -1 if no send issued after it was acknowledged
	// LongestPause is the longest gap between acknowledgements (any
	// producer) that ends after this disruption and not after the next
	// one: the write pause it caused. 0 if none exceeded PauseThreshold.
	LongestPause time.Duration `json:"longest_pause_ns"`
	// LongestGap is the longest gap between acknowledgements (any
	// producer) ending after this mark and before the next, however short:
	// with producers sending every few milliseconds, the write pause of a
	// disruption too short for LongestPause.
	LongestGap time.Duration `json:"longest_gap_ns"`
}

func (w *Workload) report() Report {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := Report{Acked: len(w.acked), SendErrors: map[string]int{}, OrderErrors: slices.Clone(w.orderErrs)}
	for _, n := range w.received {
		r.Consumed++
		r.Duplicates += n - 1
	}
	for _, at := range w.stored {
		r.StoredDuplicates += len(at) - 1
	}
	for k := range w.acked {
		if w.received[k] == 0 {
			r.Lost++
		}
	}
	for e, n := range w.sendErrs {
		r.SendErrors[e] = n
	}
	var downs []time.Duration
	for i, d := range w.disruptions {
		dr := DisruptionReport{Name: d.name, At: d.at, Unavailable: -1, LongestGap: w.gaps[i]}
		if t, ok := w.firstAfter[i]; ok {
			dr.Unavailable = t.Sub(d.at)
			downs = append(downs, dr.Unavailable)
		}
		for _, p := range w.pauses {
			// A pause belongs to the disruption it ended after (the one it
			// straddles, as its last ack came before the mark).
			ends := p.from.Add(p.d)
			if ends.After(d.at) && (i+1 == len(w.disruptions) || !ends.After(w.disruptions[i+1].at)) {
				dr.LongestPause = max(dr.LongestPause, p.d)
			}
		}
		r.Disruptions = append(r.Disruptions, dr)
	}
	if len(downs) > 0 {
		slices.Sort(downs)
		r.UnavailableP50, r.UnavailableMax = downs[len(downs)/2], downs[len(downs)-1]
	}
	for _, p := range w.pauses {
		r.Pauses = append(r.Pauses, p.d)
	}
	r.SteadyGap = w.gaps[-1]
	r.LongestGap = w.longestGap
	r.Redelivered = w.cons.Stats().Redelivered
	ps := w.prod.Stats()
	r.Resends, r.Deduplicated = ps.Resends, ps.Duplicates
	return r
}

// Print writes the report as a short table.
func (r Report) Print(out io.Writer) {
	fmt.Fprintf(out, "acknowledged  %d\nconsumed      %d\nlost          %d\nduplicates    %d (stored twice %d)\nredelivered   %d\nresends       %d (deduplicated by the broker %d)\norder errors  %d\n",
		r.Acked, r.Consumed, r.Lost, r.Duplicates, r.StoredDuplicates, r.Redelivered, r.Resends, r.Deduplicated, len(r.OrderErrors))
	for _, e := range r.OrderErrors {
		fmt.Fprintf(out, "  %s\n", e)
	}
	for i, d := range r.Disruptions {
		u := "no acknowledged send after it"
		if d.Unavailable >= 0 {
			u = d.Unavailable.Round(time.Millisecond).String()
		}
		fmt.Fprintf(out, "change %-2d %-28s writes paused %s (longest gap %s)\n", i+1, d.Name, u, max(d.LongestGap, d.LongestPause).Round(time.Millisecond))
	}
	if len(r.Disruptions) > 0 {
		fmt.Fprintf(out, "longest gap between acknowledgements before the first change: %s\n", r.SteadyGap.Round(time.Millisecond))
		fmt.Fprintf(out, "unavailability p50 %s, max %s\n", r.UnavailableP50.Round(time.Millisecond), r.UnavailableMax.Round(time.Millisecond))
	}
	if n := len(r.Pauses); n > 0 {
		ps := slices.Clone(r.Pauses)
		slices.Sort(ps)
		fmt.Fprintf(out, "write pauses over %s: %d (p50 %s, max %s)\n", PauseThreshold, n,
			ps[n/2].Round(time.Millisecond), ps[n-1].Round(time.Millisecond))
	}
	fmt.Fprintf(out, "longest gap between acknowledgements %s\n", r.LongestGap.Round(time.Millisecond))
	for e, n := range r.SendErrors {
		fmt.Fprintf(out, "send failed %d× (retried): %s\n", n, e)
	}
}
