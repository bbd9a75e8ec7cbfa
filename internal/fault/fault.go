//go:build rmqfault

package fault

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Fsync scopes (fsync-on) and step domains (Event kinds).
const (
	Log      = "log"      // the CommitLog's files
	FSM      = "fsm"      // the fsm's consume-queue and index files
	Snapshot = "snapshot" // a raft snapshot sink
)

// ErrInjected is wrapped by every injected fsync error (with EIO).
var ErrInjected = errors.New("rmqfault: injected fsync error")

// Config is one set of fault settings (see doc.go for the keys).
type Config struct {
	FsyncDelay      time.Duration
	FsyncErrorAfter int // -1: off
	FsyncOn         []string
	CrashAt         string
	CrashAfter      int
	CrashStep       int
	CrashOp         string
	CrashPath       string
}

func (c Config) String() string {
	var parts []string
	if c.FsyncDelay > 0 {
		parts = append(parts, "fsync-delay="+c.FsyncDelay.String())
	}
	if c.FsyncErrorAfter >= 0 {
		parts = append(parts, "fsync-error-after="+strconv.Itoa(c.FsyncErrorAfter))
	}
	if c.FsyncDelay > 0 || c.FsyncErrorAfter >= 0 {
		parts = append(parts, "fsync-on="+strings.Join(c.FsyncOn, ","))
	}
	if c.CrashAt != "" {
		parts = append(parts, fmt.Sprintf("crash-at=%s crash-after=%d crash-step=%d crash-op=%s crash-path=%s",
			c.CrashAt, c.CrashAfter, c.CrashStep, c.CrashOp, c.CrashPath))
	}
	if len(parts) == 0 {
		return "no faults"
	}
	return strings.Join(parts, " ")
}

func defaultConfig() Config { return Config{FsyncErrorAfter: -1, FsyncOn: []string{Log}} }

var keys = []string{"fsync-delay", "fsync-error-after", "fsync-on", "crash-at", "crash-after", "crash-step", "crash-op", "crash-path"}

// EnvName is the environment variable of a control-file key.
func EnvName(key string) string {
	return "RMQ_FAULT_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

func (c *Config) set(key, val string) error {
	val = strings.TrimSpace(val)
	atoi := func() (int, error) {
		n, err := strconv.Atoi(val)
		if err == nil && n < 0 {
			err = errors.New("negative")
		}
		return n, err
	}
	var err error
	switch key {
	case "fsync-delay":
		c.FsyncDelay, err = time.ParseDuration(val)
	case "fsync-error-after":
		c.FsyncErrorAfter, err = atoi()
	case "fsync-on":
		c.FsyncOn = nil
		for _, s := range strings.Split(val, ",") {
			switch s = strings.TrimSpace(s); s {
			case Log, FSM:
				c.FsyncOn = append(c.FsyncOn, s)
			default:
				err = fmt.Errorf("unknown scope %q", s)
			}
		}
	case "crash-at":
		c.CrashAt = val
	case "crash-after":
		c.CrashAfter, err = atoi()
	case "crash-step":
		c.CrashStep, err = atoi()
	case "crash-op":
		c.CrashOp = val
	case "crash-path":
		c.CrashPath = val
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	if err != nil {
		return fmt.Errorf("%s=%s: %w", key, val, err)
	}
	return nil
}

// Parse reads a control file's text. Bad lines are reported together;
// the good ones still apply.
func Parse(text string) (Config, error) {
	c := defaultConfig()
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: no '='", i+1))
			continue
		}
		if err := c.set(strings.TrimSpace(k), v); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
		}
	}
	return c, errors.Join(errs...)
}

func fromEnv(getenv func(string) string) (Config, bool, error) {
	c := defaultConfig()
	set := false
	var errs []error
	for _, k := range keys {
		if v := getenv(EnvName(k)); v != "" {
			set = true
			if err := c.set(k, v); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return c, set, errors.Join(errs...)
}

// Injector applies the current settings. See doc.go.
type Injector struct {
	file string
	env  Config
	out  io.Writer
	kill func()
	now  func() time.Time

	mu      sync.Mutex
	cfg     Config
	stamp   string    // the control file's identity when last read
	checked time.Time // when the control file was last looked at
	syncs   int       // fsyncs seen since cfg was loaded
	failed  bool      // an injected fsync error was reported
	occur   int       // occurrences of cfg.CrashAt since cfg was loaded
	armed   *scope    // the occurrence whose steps are counted
}

type scope struct {
	name  string
	n     int // occurrence number, from 1
	kinds []string
	steps int
}

// New returns an Injector reading getenv, or nil when no RMQ_FAULT_
// variable is set. Messages go to out; kill ends the process.
func New(getenv func(string) string, out io.Writer, kill func()) *Injector {
	env, set, err := fromEnv(getenv)
	file := getenv("RMQ_FAULT_FILE")
	if !set && file == "" {
		return nil
	}
	in := &Injector{file: file, env: env, cfg: env, out: out, kill: kill, now: time.Now}
	if err != nil {
		in.say("bad environment: %v", err)
	}
	in.say("active (control file %q): %s", file, env)
	in.mu.Lock()
	in.refreshLocked(true)
	in.mu.Unlock()
	return in
}

// Get returns the process's Injector, nil unless the environment asks for
// faults. It reads the environment once.
var Get = sync.OnceValue(func() *Injector { return New(os.Getenv, os.Stderr, killSelf) })

func killSelf() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal ends the process before this matters
}

func (in *Injector) say(format string, args ...any) {
	fmt.Fprintf(in.out, "rmqfault: "+format+"\n", args...)
}

// refreshLocked re-reads the control file if it changed. Caller holds mu.
func (in *Injector) refreshLocked(force bool) {
	if in.file == "" {
		return
	}
	now := in.now()
	if !force && now.Sub(in.checked) < 5*time.Millisecond {
		return
	}
	in.checked = now
	stamp := "missing"
	st, err := os.Stat(in.file)
	if err == nil {
		var ino uint64
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			ino = sys.Ino
		}
		stamp = fmt.Sprintf("%d/%d/%d", st.Size(), st.ModTime().UnixNano(), ino)
	}
	if stamp == in.stamp {
		return
	}
	in.stamp = stamp
	cfg := in.env
	if err == nil {
		b, rerr := os.ReadFile(in.file)
		if rerr != nil {
			in.say("read control file: %v", rerr)
			return
		}
		var perr error
		if cfg, perr = Parse(string(b)); perr != nil {
			in.say("bad control file: %v", perr)
		}
	}
	in.cfg, in.syncs, in.failed, in.occur, in.armed = cfg, 0, false, 0, nil
	in.say("loaded %s", cfg)
}

// Sync is called before a real fsync of path in scope (Log or FSM): it
// sleeps fsync-delay and returns an injected error (the fsync must then
// not happen) once fsync-error-after fsyncs have passed.
func (in *Injector) Sync(scope, path string) error {
	in.mu.Lock()
	in.refreshLocked(false)
	cfg := in.cfg
	if !slices.Contains(cfg.FsyncOn, scope) {
		in.mu.Unlock()
		return nil
	}
	var err error
	if cfg.FsyncErrorAfter >= 0 {
		in.syncs++
		if in.syncs > cfg.FsyncErrorAfter {
			err = fmt.Errorf("%w of %s: %w", ErrInjected, path, syscall.EIO)
			if !in.failed {
				in.failed = true
				in.say("failing fsync of %s (and every later one)", path)
			}
		}
	}
	in.mu.Unlock()
	if cfg.FsyncDelay > 0 {
		time.Sleep(cfg.FsyncDelay) // the injected slowness itself
	}
	return err
}

// Event marks the start of a storage event whose operations of the given
// kinds (Log, Snapshot) count as steps; end marks its end. With crash-step
// 0 and no crash-op or crash-path, a due occurrence crashes here.
func (in *Injector) Event(name string, kinds ...string) (end func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.refreshLocked(false)
	cfg := in.cfg
	if cfg.CrashAt != name || in.armed != nil {
		return func() {}
	}
	in.occur++
	if in.occur <= cfg.CrashAfter {
		return func() {}
	}
	if cfg.CrashStep == 0 && cfg.CrashOp == "" && cfg.CrashPath == "" {
		in.crashLocked(fmt.Sprintf("%s #%d step 0", name, in.occur))
		return func() {}
	}
	sc := &scope{name: name, n: in.occur, kinds: kinds}
	in.armed = sc
	return func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.armed == sc {
			in.armed = nil
			in.say("%s #%d ended after %d matching operations; step %d not reached", name, sc.n, sc.steps, max(1, cfg.CrashStep))
		}
	}
}

// Step is called before each mutating operation op on path of kind. It
// reports whether the armed crash is due now: the caller then performs a
// write halfway and calls Crash.
func (in *Injector) Step(kind, op, path string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	sc := in.armed
	if sc == nil || !slices.Contains(sc.kinds, kind) {
		return false
	}
	if c := in.cfg; (c.CrashOp != "" && c.CrashOp != op) || (c.CrashPath != "" && !strings.Contains(path, c.CrashPath)) {
		return false
	}
	sc.steps++
	return sc.steps >= max(1, in.cfg.CrashStep)
}

// Crash reports where the process dies and kills it. what describes the
// operation (op, path, how much of a write was done).
func (in *Injector) Crash(what string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	sc := in.armed
	if sc == nil {
		in.crashLocked(what)
		return
	}
	in.armed = nil
	in.crashLocked(fmt.Sprintf("%s #%d step %d: %s", sc.name, sc.n, sc.steps, what))
}

func (in *Injector) crashLocked(where string) {
	in.say("crash at %s", where)
	if f, ok := in.out.(*os.File); ok {
		_ = f.Sync()
	}
	in.kill()
}
