package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/broker"
)

// brokerConfigFrom loads a TOML file with the given body, applies the
// broker flags in args and converts the result, as `rmq broker` does.
func brokerConfigFrom(t *testing.T, toml string, args ...string) (broker.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	var cfg broker.Config
	var cerr error
	app := &cli.App{Flags: brokerCommand().Flags, Action: func(c *cli.Context) error {
		fc, err := loadFileConfig(path)
		if err != nil {
			return err
		}
		applyBrokerFlags(c, &fc)
		cfg, cerr = fc.brokerConfig()
		return nil
	}}
	if err := app.Run(append([]string{"rmq"}, args...)); err != nil {
		t.Fatalf("flags %v: %v", args, err)
	}
	return cfg, cerr
}

func TestBrokerConfigRetention(t *testing.T) {
	def := broker.DefaultConfig().Retention
	off := broker.RetentionConfig{MaxAge: -1, MaxDiskBytes: -1, ForceDiskRatio: -1, CheckInterval: -1}
	tests := []struct {
		name string
		toml string
		args []string
		want broker.RetentionConfig
	}{
		{"defaults", "", nil, def},
		// A zero duration stays zero here; broker.New reads zero as the default.
		{"explicit zero is the default", "retention_max_age = \"0s\"\nretention_disk_ratio = 0\nretention_max_disk_bytes = \"0\"", nil,
			broker.RetentionConfig{ForceDiskRatio: def.ForceDiskRatio, CheckInterval: def.CheckInterval}},
		{"values", "retention_max_age = \"24h\"\nretention_max_disk_bytes = \"100GiB\"\nretention_disk_ratio = 0.9\nretention_check_interval = \"30s\"", nil,
			broker.RetentionConfig{MaxAge: 24 * time.Hour, MaxDiskBytes: 100 << 30, ForceDiskRatio: 0.9, CheckInterval: 30 * time.Second}},
		{"percent", "retention_disk_ratio = \"90%\"", nil, broker.RetentionConfig{MaxAge: def.MaxAge, ForceDiskRatio: 0.9, CheckInterval: def.CheckInterval}},
		{"all off", "retention_max_age = \"off\"\nretention_max_disk_bytes = \"off\"\nretention_disk_ratio = \"off\"\nretention_check_interval = \"off\"", nil, off},
		{"all -1", "retention_max_age = \"-1\"\nretention_max_disk_bytes = \"-1\"\nretention_disk_ratio = -1\nretention_check_interval = \"-1\"", nil, off},
		{"old name of the budget", "retention_max_bytes = \"1GiB\"", nil, broker.RetentionConfig{MaxAge: def.MaxAge, MaxDiskBytes: 1 << 30, ForceDiskRatio: def.ForceDiskRatio, CheckInterval: def.CheckInterval}},
		{"flags override the file", "retention_disk_ratio = 0.9\nretention_max_bytes = \"1GiB\"",
			[]string{"--retention-max-age", "off", "--retention-max-disk-bytes", "2GiB", "--retention-disk-ratio", "off", "--retention-check-interval", "5s"},
			broker.RetentionConfig{MaxAge: -1, MaxDiskBytes: 2 << 30, ForceDiskRatio: -1, CheckInterval: 5 * time.Second}},
		{"flag percent", "", []string{"--retention-disk-ratio", "95%"}, broker.RetentionConfig{MaxAge: def.MaxAge, ForceDiskRatio: 0.95, CheckInterval: def.CheckInterval}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := brokerConfigFrom(t, tc.toml, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, cfg.Retention); diff != "" {
				t.Fatalf("retention (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBrokerConfigRetentionErrors(t *testing.T) {
	tests := []struct{ toml, want string }{
		{"retention_disk_ratio = 1.5", "retention_disk_ratio: 1.5 is not in (0, 1]"},
		{"retention_disk_ratio = \"lots\"", `retention_disk_ratio: "lots": want a fraction`},
		{"retention_disk_ratio = true", "retention_disk_ratio: true: want a fraction"},
		{"retention_max_age = \"forever\"", "retention_max_age:"},
		{"retention_max_disk_bytes = \"big\"", "retention_max_disk_bytes:"},
		{"retention_max_bytes = \"1GiB\"\nretention_max_disk_bytes = \"1GiB\"", "set only one"},
	}
	for _, tc := range tests {
		_, err := brokerConfigFrom(t, tc.toml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.toml, err, tc.want)
		}
	}
}

func TestBrokerConfigDiskLimit(t *testing.T) {
	def := broker.DefaultConfig().DiskLimit
	tests := []struct {
		name string
		toml string
		args []string
		want broker.DiskLimitConfig
	}{
		{"defaults", "", nil, def},
		{"values", "disk_high_water = 0.95\ndisk_low_water = \"80%\"\ndisk_check_interval = \"250ms\"", nil,
			broker.DiskLimitConfig{HighWater: 0.95, LowWater: 0.8, CheckInterval: 250 * time.Millisecond}},
		{"off", "disk_high_water = \"off\"", nil, broker.DiskLimitConfig{HighWater: -1, LowWater: def.LowWater, CheckInterval: def.CheckInterval}},
		{"flags override the file", "disk_high_water = 0.95", []string{"--disk-high-water", "97%", "--disk-low-water", "0.9", "--disk-check-interval", "2s"},
			broker.DiskLimitConfig{HighWater: 0.97, LowWater: 0.9, CheckInterval: 2 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := brokerConfigFrom(t, tc.toml, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, cfg.DiskLimit); diff != "" {
				t.Fatalf("disk limit (-want +got):\n%s", diff)
			}
		})
	}
	for _, tc := range []struct {
		toml string
		args []string
		want string
	}{
		{"disk_high_water = 1.5", nil, "disk_high_water: 1.5 is not in (0, 1]"},
		{"disk_low_water = \"off\"", nil, "disk_low_water: cannot be off"},
		{"", []string{"--disk-check-interval", "0s"}, "--disk-check-interval: 0s: want a positive duration"},
		{"", []string{"--disk-low-water", "lots"}, `--disk-low-water: "lots": want a fraction`},
	} {
		if _, err := brokerConfigFrom(t, tc.toml, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: got %v, want an error containing %q", tc.toml, tc.args, err, tc.want)
		}
	}
}

func TestBrokerConfigDelay(t *testing.T) {
	def := broker.DefaultConfig()
	type delay struct {
		Levels    []time.Duration
		MaxDelay  time.Duration
		TimerPoll time.Duration
	}
	tests := []struct {
		name string
		toml string
		args []string
		want delay
	}{
		{"defaults", "", nil, delay{def.DelayLevels, def.MaxDelay, def.TimerPoll}},
		{"file", "delay_levels = \"1s 5s 1m 2h 1d\"\nmax_delay = \"24h\"\ntimer_poll = \"20ms\"", nil,
			delay{[]time.Duration{time.Second, 5 * time.Second, time.Minute, 2 * time.Hour, 24 * time.Hour}, 24 * time.Hour, 20 * time.Millisecond}},
		{"commas and spaces", "delay_levels = \" 100ms, 200ms,300ms \"", nil,
			delay{[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}, def.MaxDelay, def.TimerPoll}},
		{"flags override the file", "delay_levels = \"1s 5s\"\nmax_delay = \"24h\"\ntimer_poll = \"20ms\"",
			[]string{"--delay-levels", "2s 3s 4s", "--max-delay", "1h", "--timer-poll", "50ms"},
			delay{[]time.Duration{2 * time.Second, 3 * time.Second, 4 * time.Second}, time.Hour, 50 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := brokerConfigFrom(t, tc.toml, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			got := delay{cfg.DelayLevels, cfg.MaxDelay, cfg.TimerPoll}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("delay settings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBrokerConfigDelayErrors(t *testing.T) {
	tests := []struct {
		toml string
		args []string
		want string
	}{
		{"delay_levels = \"1s soon\"", nil, `delay_levels: level 2 "soon": want a positive duration`},
		{"delay_levels = \"1s -5s\"", nil, `delay_levels: level 2 "-5s"`},
		{"delay_levels = \"0s\"", nil, `delay_levels: level 1 "0s"`},
		{"delay_levels = \" , \"", nil, `delay_levels: " , ": want durations`},
		{"delay_levels = [\"1s\"]", nil, "delay_levels"}, // a string, not an array
		{"max_delay = \"3 days\"", nil, "max_delay: time: "},
		{"max_delay = \"-1h\"", nil, "max_delay: -1h: want a positive duration"},
		{"timer_poll = \"fast\"", nil, "timer_poll: time: "},
		{"", []string{"--delay-levels", "1s x"}, `--delay-levels: level 2 "x"`},
		{"", []string{"--max-delay", "forever"}, "--max-delay: time: "},
		{"", []string{"--timer-poll", "-1s"}, "--timer-poll: -1s: want a positive duration"},
		{"", []string{"--retention-max-age", "forever"}, "--retention-max-age: time: "},
	}
	for _, tc := range tests {
		_, err := brokerConfigFromFile(t, tc.toml, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: got %v, want an error containing %q", tc.toml, tc.args, err, tc.want)
		}
	}
}

// brokerConfigFromFile is brokerConfigFrom that also returns the file's
// own errors (a value of the wrong TOML type).
func brokerConfigFromFile(t *testing.T, toml string, args ...string) (broker.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadFileConfig(path); err != nil {
		return broker.Config{}, err
	}
	return brokerConfigFrom(t, toml, args...)
}

func TestDevRejectsBadDelayLevels(t *testing.T) {
	// Checked before anything starts: no port is bound, no directory made.
	dir := filepath.Join(t.TempDir(), "dev")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"rmq", "dev", "--dir", dir, "--namesrv-port", "1", "--delay-levels", "1s 2x"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `--delay-levels: level 2 "2x"`) {
		t.Fatalf("got %v, want a --delay-levels error naming level 2", err)
	}
	if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
		t.Errorf("rmq dev created %s before rejecting its flags", dir)
	}
}

func TestBrokerConfigDedup(t *testing.T) {
	def := broker.DefaultConfig()
	type dedup struct {
		Window time.Duration
		Max    int
	}
	tests := []struct {
		name string
		toml string
		args []string
		want dedup
	}{
		{"defaults", "", nil, dedup{def.DedupWindow, def.DedupMaxEntries}},
		{"file", "dedup_window = \"5m\"\ndedup_max_entries = 5000", nil, dedup{5 * time.Minute, 5000}},
		{"off", "dedup_window = \"off\"", nil, dedup{-1, def.DedupMaxEntries}},
		{"zero is off", "dedup_window = \"0\"", nil, dedup{-1, def.DedupMaxEntries}},
		{"flags override the file", "dedup_window = \"5m\"\ndedup_max_entries = 5000",
			[]string{"--dedup-window", "30s", "--dedup-max-entries", "100"}, dedup{30 * time.Second, 100}},
		{"flag off", "", []string{"--dedup-window", "0s"}, dedup{-1, def.DedupMaxEntries}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := brokerConfigFrom(t, tc.toml, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, dedup{cfg.DedupWindow, cfg.DedupMaxEntries}); diff != "" {
				t.Fatalf("dedup settings (-want +got):\n%s", diff)
			}
		})
	}
	for _, tc := range []struct {
		toml string
		args []string
		want string
	}{
		{"dedup_window = \"soon\"", nil, "dedup_window: time: "},
		{"dedup_window = \"-1m\"", nil, "dedup_window: -1m: want a positive duration"},
		{"dedup_max_entries = -3", nil, "dedup_max_entries: -3: want a positive number"},
		{"", []string{"--dedup-window", "forever"}, "--dedup-window: time: "},
		{"", []string{"--dedup-max-entries", "-1"}, "--dedup-max-entries: -1"},
	} {
		_, err := brokerConfigFromFile(t, tc.toml, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: got %v, want an error containing %q", tc.toml, tc.args, err, tc.want)
		}
	}
}

func TestBrokerConfigACL(t *testing.T) {
	type aclCfg struct {
		File   string
		Window time.Duration
	}
	for _, tc := range []struct {
		name string
		toml string
		args []string
		want aclCfg
	}{
		{"off", "", nil, aclCfg{}},
		{"file", "acl = \"/etc/rmq/plain_acl.yml\"\nacl_time_window = \"30s\"", nil, aclCfg{"/etc/rmq/plain_acl.yml", 30 * time.Second}},
		{"flags override the file", "acl = \"a.yml\"", []string{"--acl", "b.yml", "--acl-time-window", "5m"}, aclCfg{"b.yml", 5 * time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := brokerConfigFrom(t, tc.toml, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := (aclCfg{cfg.ACLFile, cfg.ACL.TimeWindow}); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := brokerConfigFrom(t, "acl_time_window = \"-1s\""); err == nil || !strings.Contains(err.Error(), "acl_time_window") {
		t.Fatalf("negative window: %v, want an error naming acl_time_window", err)
	}
}

func TestBrokerConfigMetrics(t *testing.T) {
	tests := []struct {
		name, toml string
		args       []string
		want       string
	}{
		{"off by default", "", nil, ""},
		{"file", `metrics = "127.0.0.1:9100"`, nil, "127.0.0.1:9100"},
		{"flag overrides the file", `metrics = "127.0.0.1:9100"`, []string{"--metrics", "127.0.0.1:9200"}, "127.0.0.1:9200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := brokerConfigFrom(t, tc.toml, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MetricsListen != tc.want {
				t.Fatalf("MetricsListen: got %q, want %q", cfg.MetricsListen, tc.want)
			}
		})
	}
}

// TestMetricsFlagBadAddress: a --metrics address that cannot be bound
// stops rmq namesrv and rmq broker with an error naming it.
func TestMetricsFlagBadAddress(t *testing.T) {
	for _, args := range [][]string{
		{"rmq", "namesrv", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:notaport"},
		{"rmq", "broker", "--id", "n0", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--raft", "127.0.0.1:0",
			"--peers", "n0=127.0.0.1:1", "--metrics", "127.0.0.1:notaport"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "metrics listen 127.0.0.1:notaport") {
			t.Errorf("%v: got %v, want an error naming the metrics address", args[1], err)
		}
	}
}

func TestBrokerConfigMemory(t *testing.T) {
	def := broker.DefaultConfig().LogCacheBytes
	tests := []struct {
		name      string
		toml      string
		args      []string
		wantCache int64
		wantLimit int64
		wantErr   string
	}{
		{"defaults", "", nil, def, 0, ""},
		{"file", "log_cache_size = \"8MiB\"\nmemory_limit = \"512MiB\"", nil, 8 << 20, 512 << 20, ""},
		{"flags override the file", "log_cache_size = \"8MiB\"\nmemory_limit = \"512MiB\"",
			[]string{"--log-cache-size", "off", "--memory-limit", "1GiB"}, -1, 1 << 30, ""},
		// A zero size stays zero here; broker.New reads zero as the default.
		{"zero cache is the default", "log_cache_size = \"0\"", nil, 0, 0, ""},
		{"limit off", "memory_limit = \"off\"", nil, def, math.MaxInt64, ""},
		{"bare bytes are too small", "memory_limit = \"512\"", nil, 0, 0, "memory_limit: 512 is below the smallest limit, 64MiB"},
		{"bad flag size", "", []string{"--memory-limit", "lots"}, 0, 0, `--memory-limit: size "lots"`},
		{"bad cache size", "log_cache_size = \"-3\"", nil, 0, 0, "log_cache_size: size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := brokerConfigFrom(t, tc.toml, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error got %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.LogCacheBytes != tc.wantCache {
				t.Fatalf("LogCacheBytes got %d, want %d", cfg.LogCacheBytes, tc.wantCache)
			}
			fc := fileConfig{MemoryLimit: memoryLimitOf(t, tc.toml, tc.args)}
			if got, err := fc.memoryLimit(); err != nil || got != tc.wantLimit {
				t.Fatalf("memoryLimit got %d, %v; want %d", got, err, tc.wantLimit)
			}
		})
	}
}

// memoryLimitOf is memory_limit after the file and the flags.
func memoryLimitOf(t *testing.T, toml string, args []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	var got string
	app := &cli.App{Flags: brokerCommand().Flags, Action: func(c *cli.Context) error {
		fc, err := loadFileConfig(path)
		if err != nil {
			return err
		}
		applyBrokerFlags(c, &fc)
		got = fc.MemoryLimit
		return nil
	}}
	if err := app.Run(append([]string{"rmq"}, args...)); err != nil {
		t.Fatalf("flags %v: %v", args, err)
	}
	return got
}

func TestBrokerConfigCrashDetection(t *testing.T) {
	for _, tc := range []struct {
		toml    string
		disable bool
	}{{"", false}, {"crash_detection = true", false}, {"crash_detection = false", true}} {
		cfg, err := brokerConfigFrom(t, tc.toml)
		if err != nil {
			t.Fatalf("%q: %v", tc.toml, err)
		}
		if cfg.DisableCrashDetection != tc.disable {
			t.Errorf("%q: DisableCrashDetection = %v, want %v", tc.toml, cfg.DisableCrashDetection, tc.disable)
		}
	}
	path := filepath.Join(t.TempDir(), "broker.toml")
	if err := os.WriteFile(path, []byte(`crash_detection = "yes"`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadFileConfig(path); err == nil || !strings.Contains(err.Error(), "crash_detection") {
		t.Errorf(`crash_detection = "yes": error %v, want one naming the setting`, err)
	}
}
