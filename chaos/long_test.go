package chaos

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestChaosLong is the entry point of scripts/chaos.sh: one schedule for
// a long time or many faults, configured by the environment. Skipped
// unless RMQ_CHAOS_SCHEDULE is set.
//
//	RMQ_CHAOS_SCHEDULE      schedule name (Schedules)
//	RMQ_CHAOS_DURATION      fault phase length, e.g. 10m (soak: "none")
//	RMQ_CHAOS_FAULTS        at most this many faults (kills), 0: no bound
//	RMQ_CHAOS_MODE          workload mode, e.g. sync-keyed-orderly
//	RMQ_CHAOS_HOLD          fault duration (default: the schedule's)
//	RMQ_CHAOS_NODES         brokers (default: the schedule's)
//	RMQ_CHAOS_OUT           directory for outcome.json, history.json,
//	                        replicas.json, samples.csv and summary.md
//	RMQ_CHAOS_SAMPLE_EVERY  RSS/fd sampling period (default 5s)
//	RMQ_CHAOS_LOG           harness log level on stderr (default info)
func TestChaosLong(t *testing.T) {
	name := os.Getenv("RMQ_CHAOS_SCHEDULE")
	if name == "" {
		t.Skip("set RMQ_CHAOS_SCHEDULE (scripts/chaos.sh)")
	}
	s, err := ScheduleByName(name)
	if err != nil {
		t.Fatal(err)
	}
	mode, err := ParseMode(os.Getenv("RMQ_CHAOS_MODE"))
	if err != nil {
		t.Fatal(err)
	}
	dur := envDuration(t, "RMQ_CHAOS_DURATION", 0)
	hold := envDuration(t, "RMQ_CHAOS_HOLD", 0)
	every := envDuration(t, "RMQ_CHAOS_SAMPLE_EVERY", 5*time.Second)
	faults := envInt(t, "RMQ_CHAOS_FAULTS", 0)
	nodes := envInt(t, "RMQ_CHAOS_NODES", s.Nodes)
	out := os.Getenv("RMQ_CHAOS_OUT")
	if out == "" {
		out = t.TempDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	level := hclog.Info
	if l := os.Getenv("RMQ_CHAOS_LOG"); l != "" {
		level = hclog.LevelFromString(l)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "chaos", Level: level, Output: os.Stderr})

	needHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	c, err := Start(ctx, Config{Bin: testBin, Nodes: nodes, Storage: s.Storage, Logger: log, Dir: filepath.Join(out, "cluster")})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range append([]string{"namesrv"}, nodeNames(nodes)...) {
				t.Logf("last log lines of %s:\n%s", n, c.Tail(n, 20))
			}
		}
		// The logs outlive the cluster's directory (data is removed).
		if err := os.CopyFS(filepath.Join(out, "logs"), os.DirFS(filepath.Join(c.Dir(), "logs"))); err != nil {
			t.Logf("keep logs: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	samples, err := os.Create(filepath.Join(out, "samples.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer samples.Close()
	bound := dur + time.Duration(max(faults, 1))*2*time.Minute + 30*time.Minute
	ctx, cancel = context.WithTimeout(context.Background(), bound)
	defer cancel()
	o, err := Run(ctx, c, RunConfig{Schedule: name, Mode: mode, Duration: dur, Faults: faults, Hold: hold,
		Samples: samples, SampleEvery: every, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	summary := SummaryHeader + "\n" + o.Summary() + "\n"
	t.Logf("\n%s", summary)
	t.Logf("elapsed %s, redelivered %d, failed sends %d (stored anyway %d), orderly holds %d, offset samples %d, seed %d",
		o.Elapsed.Round(time.Second), o.Result.Deliveries-o.Result.Delivered, o.Result.Failed, o.Result.StoredFail,
		o.Result.Holds, o.Result.OffsetSamples, o.Seed)
	for _, d := range o.Detection() {
		t.Log(d)
	}
	for _, p := range o.Problems {
		t.Logf("problem: %s", p)
	}
	if err := o.Save(out); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(filepath.Join(out, "summary.md"), []byte(summary), 0o644); err != nil {
		t.Error(err)
	}
	if err := o.Err(); err != nil {
		t.Error(err)
	}
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, v)
	}
	return n
}

// TestRecheck checks a saved run again (RMQ_CHAOS_RECHECK: a directory
// with history.json and replicas.json, as scripts/chaos.sh leaves).
func TestRecheck(t *testing.T) {
	dir := os.Getenv("RMQ_CHAOS_RECHECK")
	if dir == "" {
		t.Skip("set RMQ_CHAOS_RECHECK to a run's output directory")
	}
	var h History
	var reps []Replica
	for name, v := range map[string]any{"history.json": &h, "replicas.json": &reps} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	o := &Outcome{Schedule: filepath.Base(dir), Mode: h.Mode.String(), Nodes: len(reps), History: &h, Replicas: reps,
		Result: Check(&h, reps), Faults: len(h.Faults)}
	t.Logf("\n%s\n%s", SummaryHeader, o.Summary())
	for _, d := range o.Detection() {
		t.Log(d)
	}
	if err := o.Err(); err != nil {
		t.Error(err)
	}
}
