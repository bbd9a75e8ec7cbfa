package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows a running bench on stderr, never on stdout: a redrawn
// progress bar (messages against --count, or time against --duration)
// with the current msgs/s when stderr is a terminal, else a plain line
// every plainEvery. --no-progress turns it off. One goroutine, owned by
// the progress and ended by stop, samples the count.
type progress struct {
	stopc chan struct{}
	wg    sync.WaitGroup
}

const (
	progressTick = 200 * time.Millisecond
	plainEvery   = 5 * time.Second
)

// startProgress samples count until stop. total (messages) or limit
// (time) sizes the bar; with neither it is an open-ended counter.
func startProgress(w io.Writer, enabled bool, what string, total int64, limit time.Duration, count func() int64) *progress {
	p := &progress{stopc: make(chan struct{})}
	if !enabled {
		return p
	}
	var bar *progressbar.ProgressBar
	if isTerminal(w) {
		bar = newBar(w, total, limit)
	}
	start := time.Now()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(progressTick)
		defer tick.Stop()
		var lastN, plainN int64
		lastT, lastPlain := start, start
		for {
			select {
			case <-p.stopc:
				if bar != nil {
					_ = bar.Clear()
				}
				return
			case now := <-tick.C:
				n := count()
				rate := float64(n-lastN) / now.Sub(lastT).Seconds()
				lastN, lastT = n, now
				elapsed := now.Sub(start)
				if bar == nil {
					if now.Sub(lastPlain) >= plainEvery {
						fmt.Fprint(w, plainLine(what, n, elapsed, n-plainN, now.Sub(lastPlain)))
						lastPlain, plainN = now, n
					}
					continue
				}
				bar.Describe(fmt.Sprintf("%s now %8.0f msgs/s, avg %8.0f msgs/s %10d msgs %6s",
					what, rate, perSecond(n, elapsed), n, elapsed.Round(time.Second)))
				switch {
				case total > 0:
					_ = bar.Set64(min(n, total))
				case limit > 0:
					_ = bar.Set64(min(elapsed.Milliseconds(), limit.Milliseconds()))
				default:
					_ = bar.Set64(n)
				}
			}
		}
	}()
	return p
}

// plainLine is the non-terminal progress line: the rate over the last
// interval and the average since the start, each labelled, so a reader
// of a log does not take one for the other.
func plainLine(what string, n int64, elapsed time.Duration, lastN int64, last time.Duration) string {
	return fmt.Sprintf("%s: %d msgs in %s; last %s: %.0f msgs/s; average: %.0f msgs/s\n",
		what, n, elapsed.Round(time.Second), last.Round(time.Second), perSecond(lastN, last), perSecond(n, elapsed))
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func newBar(w io.Writer, total int64, limit time.Duration) *progressbar.ProgressBar {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(progressTick),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionClearOnFinish(),
		// No spinner goroutine of the bar's own: the sampler redraws it.
		progressbar.OptionSetSpinnerChangeInterval(0),
	}
	max := int64(-1)
	switch {
	case total > 0:
		max = total
	case limit > 0:
		max = limit.Milliseconds()
	}
	return progressbar.NewOptions64(max, opts...)
}

// stop ends the sampler and clears the bar. Idempotent.
func (p *progress) stop() {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	p.wg.Wait()
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
