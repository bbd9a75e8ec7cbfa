package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// RunConfig shapes one run: a schedule over a workload on a cluster.
type RunConfig struct {
	Schedule string
	Mode     Mode
	// The fault phase ends after Duration or Faults rounds, whichever
	// comes first (0: no bound of that kind; one must be set).
	Duration time.Duration
	Faults   int
	// Hold overrides the schedule's fault duration.
	Hold time.Duration
	// Calm is the quiet time between a recovery and the next fault.
	// Default 1s.
	Calm time.Duration
	// Warmup is the number of acknowledged sends before the first fault.
	// Default 100.
	Warmup int
	// Recover bounds the wait for the group to be whole again after a
	// heal; Drain the wait for consumers to receive every acknowledged
	// send at the end. Defaults 60s each.
	Recover time.Duration
	Drain   time.Duration
	// Workload's NameServers, Topic, Mode and Logger are filled in; its
	// Churn defaults to 4s here (negative: no churn).
	Workload WorkloadConfig
	// Samples, if set, receives a CSV of every process's RSS and open
	// file descriptors every SampleEvery (default 5s).
	Samples     io.Writer
	SampleEvery time.Duration
	// OffsetEvery is how often every replica's committed offsets are
	// sampled. Default 250ms.
	OffsetEvery time.Duration
	Seed        uint64 // for the schedule's choices; 0: random
	Logger      hclog.Logger
}

func (c RunConfig) withDefaults() RunConfig {
	if c.Calm == 0 {
		c.Calm = time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 100
	}
	if c.Recover == 0 {
		c.Recover = 60 * time.Second
	}
	if c.Drain == 0 {
		c.Drain = 60 * time.Second
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = 5 * time.Second
	}
	if c.OffsetEvery == 0 {
		c.OffsetEvery = 250 * time.Millisecond
	}
	if c.Workload.Churn == 0 {
		c.Workload.Churn = 4 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Outcome is what a run found.
type Outcome struct {
	Schedule string        `json:"schedule"`
	Mode     string        `json:"mode"`
	Nodes    int           `json:"nodes"`
	Seed     uint64        `json:"seed"`
	Phase    time.Duration `json:"fault_phase_ns"` // the fault phase's length
	Elapsed  time.Duration `json:"elapsed_ns"`     // workload start to check
	Faults   int           `json:"faults"`
	// Unrecovered counts faults after which the group was not whole
	// again within Recover; Stalls heals after which no send was
	// acknowledged within 30s.
	Unrecovered int `json:"unrecovered"`
	Stalls      int `json:"stalls"`
	// Misfired counts faults that did not happen as armed (a storage
	// crash that never fired): the run did not test what it claims.
	Misfired int       `json:"misfired"`
	Problems []string  `json:"problems,omitempty"` // the harness's own findings (drain, convergence)
	Result   Result    `json:"result"`
	History  *History  `json:"-"`
	Replicas []Replica `json:"-"`
}

// Err is nil if the run kept every guarantee and the group recovered
// from every fault.
func (o *Outcome) Err() error {
	var errs []error
	if err := o.Result.Err(); err != nil {
		errs = append(errs, err)
	}
	if o.Unrecovered > 0 || o.Stalls > 0 {
		errs = append(errs, fmt.Errorf("chaos: %d faults without recovery, %d stalls after a heal", o.Unrecovered, o.Stalls))
	}
	if o.Misfired > 0 {
		errs = append(errs, fmt.Errorf("chaos: %d faults did not take effect as armed", o.Misfired))
	}
	return errors.Join(errs...)
}

// runner is one Run in progress.
type runner struct {
	c    *Cluster
	cfg  RunConfig
	s    Schedule
	hold time.Duration
	log  hclog.Logger
	w    *Workload
	o    *Outcome
}

// Run starts the workload, runs the schedule's faults, heals everything,
// drains the consumers, reads the replicas and checks the history. An
// error means the harness itself could not go on; violations are in the
// Outcome.
func Run(ctx context.Context, c *Cluster, cfg RunConfig) (*Outcome, error) {
	cfg = cfg.withDefaults()
	s, err := ScheduleByName(cfg.Schedule)
	if err != nil {
		return nil, err
	}
	if s.Storage != StorageDefault {
		if !c.FaultHooks() {
			return nil, fmt.Errorf("chaos: schedule %s: %w", s.Name, ErrNoFaultHooks)
		}
		if c.cfg.Storage != s.Storage {
			return nil, fmt.Errorf("chaos: schedule %s needs a cluster started with Storage %d, this one has %d", s.Name, s.Storage, c.cfg.Storage)
		}
	}
	if cfg.Duration <= 0 && (cfg.Faults <= 0 || s.Idle) {
		return nil, errors.New("chaos: RunConfig needs a Duration (or, with faults, a number of Faults)")
	}
	r := &runner{c: c, cfg: cfg, s: s, hold: s.Hold, log: cfg.Logger.With("schedule", s.Name, "mode", cfg.Mode.String()),
		o: &Outcome{Schedule: s.Name, Mode: cfg.Mode.String(), Nodes: c.Nodes(), Seed: cfg.Seed}}
	if cfg.Hold > 0 {
		r.hold = cfg.Hold
	}
	wc := cfg.Workload
	wc.NameServers = []string{c.NameServer()}
	wc.Topic = fmt.Sprintf("chaos-%s-%d", s.Name, time.Now().UnixNano()%1e9)
	wc.Mode = cfg.Mode
	wc.Logger = r.log.Named("workload")
	started := time.Now()
	if r.w, err = StartWorkload(ctx, wc); err != nil {
		return nil, err
	}
	defer r.closeClients(ctx)
	if err := r.w.waitFor(ctx, 90*time.Second, cfg.Warmup); err != nil {
		return nil, fmt.Errorf("chaos: warm-up: %w", err)
	}
	stop := r.startSamplers(ctx)
	defer stop()
	phase := time.Now()
	if err := r.faults(ctx); err != nil {
		return nil, err
	}
	r.o.Phase = time.Since(phase)
	if err := r.finish(ctx, stop); err != nil {
		return nil, err
	}
	r.o.Elapsed = time.Since(started)
	r.log.Info("run checked", "faults", r.o.Faults, "acked", r.o.Result.Acked, "violations", fmt.Sprint(r.o.Result.Counts), "problems", len(r.o.Problems))
	return r.o, nil
}

func (r *runner) closeClients(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	return r.w.Close(cctx)
}

// startSamplers starts the committed-offset sampler and, if asked, the
// process sampler; the returned func stops them and waits (idempotent).
func (r *runner) startSamplers(ctx context.Context) func() {
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // stopped by the returned func
		defer wg.Done()
		sampleOffsetsEvery(sctx, r.c, r.w, r.w.cfg.Group, r.w.cfg.Topic, r.cfg.OffsetEvery)
	}()
	if r.cfg.Samples != nil {
		wg.Add(1)
		go func() { // stopped by the returned func
			defer wg.Done()
			if err := SampleProcs(sctx, r.c, r.cfg.Samples, r.cfg.SampleEvery); err != nil && !errors.Is(err, context.Canceled) {
				r.log.Error("process sampler stopped", "error", err)
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
}

// faults runs rounds until Faults or Duration; an idle schedule waits
// out Duration.
func (r *runner) faults(ctx context.Context) error {
	if r.s.Idle {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.cfg.Duration): // the soak's length
			return nil
		}
	}
	phase := time.Now()
	rng := rand.New(rand.NewPCG(r.cfg.Seed, 0x636861))
	for round := 0; ; round++ {
		if r.cfg.Faults > 0 && round >= r.cfg.Faults || r.cfg.Duration > 0 && time.Since(phase) >= r.cfg.Duration {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.round(ctx, &env{c: r.c, rng: rng, round: round}); err != nil {
			return err
		}
	}
}

// finish heals whatever is left, stops the workload once every
// acknowledged send was received (or Drain passed), waits for the
// replicas to converge, reads them and checks the history.
func (r *runner) finish(ctx context.Context, stopSamplers func()) error {
	o, w := r.o, r.w
	if err := r.c.healAll(ctx); err != nil {
		return err
	}
	if err := w.waitFor(ctx, r.cfg.Recover, w.Acked()+50); err != nil {
		o.Problems = append(o.Problems, fmt.Sprintf("after the final heal: %v", err))
	}
	w.StopProducing()
	if err := w.waitDrain(ctx, r.cfg.Drain); err != nil {
		o.Problems = append(o.Problems, fmt.Sprintf("drain: %v", err))
	}
	if err := r.closeClients(ctx); err != nil {
		o.Problems = append(o.Problems, fmt.Sprintf("close clients: %v", err))
	}
	stopSamplers()
	w.AddOffsets(r.c.sampleOffsets(ctx, w.cfg.Group, w.cfg.Topic)) // after the consumers' last commits
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	if err := r.c.WaitConverged(cctx, w.cfg.Topic, w.cfg.Queues); err != nil {
		o.Problems = append(o.Problems, fmt.Sprintf("replicas did not converge: %v", err))
	}
	cancel()
	o.Replicas = r.c.ReadReplicas(ctx, w.cfg.Topic, w.cfg.Queues)
	o.History = w.History()
	o.Result = Check(o.History, o.Replicas)
	o.Faults = len(o.History.Faults)
	return nil
}

// round injects one fault, holds it, heals it and waits for the group
// to recover and take writes again.
func (r *runner) round(ctx context.Context, e *env) error {
	c, w, log := r.c, r.w, r.log
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	leader, err := c.Leader(lctx)
	cancel()
	if err != nil {
		return fmt.Errorf("chaos: round %d: %w", e.round, err)
	}
	e.leader = leader
	start := time.Now()
	f, err := r.s.inject(ctx, e)
	if err != nil {
		return fmt.Errorf("chaos: round %d: inject: %w", e.round, err)
	}
	idx := w.AddFault(FaultRecord{Name: f.name, Start: start})
	log.Info("fault injected", "round", e.round, "fault", f.name)
	if err := r.holdFault(ctx, f, leader); err != nil {
		return err
	}
	if err := f.heal(ctx); err != nil {
		return fmt.Errorf("chaos: round %d: heal %s: %w", e.round, f.name, err)
	}
	healed := time.Now()
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Recover)
	rerr := c.WaitHealthy(rctx)
	cancel()
	w.FaultDone(idx, healed, time.Now(), rerr)
	if rerr != nil {
		r.o.Unrecovered++
		log.Error("group did not recover", "fault", f.name, "error", rerr)
		if err := c.healAll(ctx); err != nil {
			return err
		}
	}
	if err := w.waitFor(ctx, 30*time.Second, w.Acked()+20); err != nil {
		r.o.Stalls++
		log.Error("no writes after heal", "fault", f.name, "error", err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.cfg.Calm): // quiet time between faults: a time-based condition
	}
	return nil
}

// holdFault keeps f in force: until another node than leader leads
// (kill), for the hold time, or not at all.
func (r *runner) holdFault(ctx context.Context, f fault, leader int) error {
	switch {
	case f.hold != nil:
		if err := f.hold(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.o.Misfired++
			r.log.Error("fault did not take effect", "fault", f.name, "error", err)
		}
	case f.awaitNewLeader:
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := poll(wctx, 50*time.Millisecond, func() error {
			l, err := r.c.Leader(wctx)
			if err == nil && l == leader {
				return fmt.Errorf("%s still leads", NodeID(leader))
			}
			return err
		})
		if err != nil {
			r.log.Error("no new leader", "error", err)
		}
	case !f.noHold:
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.hold): // the fault's duration: a time-based condition
		}
	}
	return nil
}

// healAll removes every rule, resumes paused brokers, starts stopped
// ones and waits until the group is whole.
func (c *Cluster) healAll(ctx context.Context) error {
	if err := c.net.Heal(ctx); err != nil {
		return err
	}
	for i := 0; i < c.Nodes(); i++ {
		if c.faultHooks {
			if err := c.SetFaults(i, ""); err != nil {
				return err
			}
		}
		if c.Paused(i) {
			if err := c.Resume(i); err != nil {
				return err
			}
		}
		if !c.Running(i) {
			if err := c.Restart(i); err != nil {
				return err
			}
		}
	}
	hctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := c.WaitHealthy(hctx); err != nil {
		return fmt.Errorf("chaos: group not whole after healing everything: %w", err)
	}
	return nil
}

func (w *Workload) waitFor(ctx context.Context, d time.Duration, acked int) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return w.WaitAcked(ctx, acked)
}

func (w *Workload) waitDrain(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return w.Drain(ctx)
}

func sampleOffsetsEvery(ctx context.Context, c *Cluster, w *Workload, group, topic string, every time.Duration) {
	for {
		w.AddOffsets(c.sampleOffsets(ctx, group, topic))
		select {
		case <-ctx.Done():
			return
		case <-time.After(every): // sampling period
		}
	}
}

// Detection says, for each kind of damage with an acknowledgement time
// (lost, misplaced), when the first one was acknowledged: its offset
// from the workload's start and from the start of the fault it fell in.
func (o *Outcome) Detection() []string {
	var out []string
	for _, k := range AllKinds {
		t, ok := o.Result.FirstAcked[k]
		if !ok || o.History == nil {
			continue
		}
		line := fmt.Sprintf("first %s send acknowledged %s after the workload started", k, t.Sub(o.History.Start).Round(time.Millisecond))
		// The fault it fell in, or the one that began within a second
		// after it (an acknowledgement just before a kill is its victim).
		for i := len(o.History.Faults) - 1; i >= 0; i-- {
			f := o.History.Faults[i]
			if f.Start.After(t.Add(time.Second)) {
				continue
			}
			if end := f.Recovered; !end.IsZero() && t.After(end) {
				break
			}
			if d := t.Sub(f.Start); d >= 0 {
				line += fmt.Sprintf(", %s into fault %d (%s)", d.Round(time.Millisecond), i+1, f.Name)
			} else {
				line += fmt.Sprintf(", %s before fault %d (%s)", (-d).Round(time.Millisecond), i+1, f.Name)
			}
			break
		}
		out = append(out, line)
	}
	return out
}

// Save writes the outcome (outcome.json), the history (history.json) and
// the replicas (replicas.json) into dir.
func (o *Outcome) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, v := range map[string]any{"outcome.json": o, "history.json": o.History, "replicas.json": o.Replicas} {
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// SummaryHeader and Summary render an outcome as a Markdown table row,
// the shape RELIABILITY.md uses.
const SummaryHeader = "| schedule | mode | nodes | fault phase | sends | receives | faults | acknowledged | lost | duplicates | order violations | lock overlaps | other violations | replicas identical | unavailable p50 / max |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"

// Summary is one row under SummaryHeader.
func (o *Outcome) Summary() string {
	r := o.Result
	other := 0
	var names []string
	for _, k := range AllKinds {
		switch k {
		case KindLost, KindDuplicate, KindOrder, KindLockOverlap, KindReplicaDiverged:
			continue
		}
		if r.Counts[k] > 0 {
			other += r.Counts[k]
			names = append(names, fmt.Sprintf("%s %d", k, r.Counts[k]))
		}
	}
	otherS := "0"
	if other > 0 {
		otherS = strings.Join(names, ", ")
	}
	if o.Unrecovered+o.Stalls > 0 {
		otherS += fmt.Sprintf("; unrecovered %d, stalls %d", o.Unrecovered, o.Stalls)
	}
	lock := "n/a"
	if o.History != nil && o.History.Mode.Orderly {
		lock = fmt.Sprint(r.Counts[KindLockOverlap])
	}
	order := "n/a"
	if o.History != nil && o.History.Mode.Keyed {
		order = fmt.Sprint(r.Counts[KindOrder])
	}
	ident := "yes"
	if !r.ReplicasIdentical {
		ident = fmt.Sprintf("no (%d queues differ)", r.Counts[KindReplicaDiverged])
	}
	return fmt.Sprintf("| %s | %s | %d | %s | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s / %s |",
		o.Schedule, o.Mode, o.Nodes, o.Phase.Round(time.Second), r.Attempts, r.Deliveries, o.Faults, r.Acked,
		r.Counts[KindLost], r.Counts[KindDuplicate], order, lock, otherS, ident,
		r.UnavailableP50.Round(time.Millisecond), r.UnavailableMax.Round(time.Millisecond))
}
