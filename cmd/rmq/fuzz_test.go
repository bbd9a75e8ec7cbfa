package main

import (
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzLoadFileConfig reads an arbitrary broker config file and converts
// it to a broker.Config: it loads or fails with an error naming the
// file, and the conversion reports bad values as errors (never panics);
// sizes and durations it accepts are not negative.
func FuzzLoadFileConfig(f *testing.F) {
	for _, s := range []string{
		"id = \"n1\"\ndata = \"/var/lib/rmq\"\npeers = [\"n1=127.0.0.1:10912\"]\nbootstrap = true\nnamesrv = [\"127.0.0.1:9876\"]\n",
		"segment_size = \"64MiB\"\nmax_message_size = \"4MiB\"\nflush = \"async\"\nflush_interval = \"50ms\"\n",
		"retention_max_age = \"72h\"\nretention_max_disk_bytes = \"10GiB\"\nretention_disk_ratio = \"85%\"\ndisk_high_water = 0.9\ndisk_low_water = \"off\"\n",
		"delay_levels = \"1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h 1d\"\nmax_delay = \"30d\"\n",
		"dedup_window = \"off\"\ndedup_max_entries = 100\ntransaction_check_max = 15\n",
		"[tls]\ncert = \"a\"\nkey = \"b\"\n[tls.client]\nca = \"c\"\n",
		"unknown_setting = 1\n",
		"segment_size = \"8589934592GiB\"\n",
		"delay_levels = \"-200000d\"\n",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "broker.toml")
	f.Fuzz(func(t *testing.T, file []byte) {
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		fc, err := loadFileConfig(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		cfg, err := fc.brokerConfig()
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if cfg.SegmentSize < 0 || cfg.MaxMessageSize < 0 || cfg.MaxDelay < 0 {
			t.Fatalf("negative setting accepted: segment %d, max message %d, max delay %v", cfg.SegmentSize, cfg.MaxMessageSize, cfg.MaxDelay)
		}
		for i, d := range cfg.DelayLevels {
			if d <= 0 {
				t.Fatalf("delay level %d is %v", i+1, d)
			}
		}
	})
}

// FuzzParseSize: a size that parses is the number times its unit,
// exactly (no overflow), and never negative.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1048576", "512KiB", "64 MiB", "1GiB", "10GB", "7B", "-1", "8589934592GiB", "9223372036854775807", "x"} {
		f.Add(s)
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseSize(s)
		if err != nil {
			return
		}
		num, mult := strings.TrimSpace(s), int64(1)
		for _, u := range units {
			if strings.HasSuffix(num, u.suffix) {
				num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
				break
			}
		}
		n, ok := new(big.Int).SetString(num, 10)
		if !ok {
			t.Fatalf("%q parsed to %d, but %q is not a number", s, v, num)
		}
		want := n.Mul(n, big.NewInt(mult))
		if !want.IsInt64() || want.Int64() != v || v < 0 {
			t.Fatalf("%q parsed to %d, want %s", s, v, want)
		}
	})
}

// FuzzParseDelayLevels: levels that parse are positive and each is what
// its field says, exactly (a day count that overflows is refused).
func FuzzParseDelayLevels(f *testing.F) {
	for _, s := range []string{"1s 5s 10s 30s 1m 2m 1h 2h", "1d,2d", "0s", "-200000d", "106751d", "106752d", "1.5h\t90m", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		levels, err := parseDelayLevels(s)
		if err != nil {
			return
		}
		fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
		if len(fields) != len(levels) {
			t.Fatalf("%q: %d levels from %d fields", s, len(levels), len(fields))
		}
		for i, fl := range fields {
			var want *big.Int
			if days, ok := strings.CutSuffix(fl, "d"); ok {
				n, err := strconv.ParseInt(days, 10, 64)
				if err != nil {
					t.Fatalf("%q: level %q accepted", s, fl)
				}
				want = new(big.Int).Mul(big.NewInt(n), big.NewInt(int64(24*time.Hour)))
			} else {
				d, err := time.ParseDuration(fl)
				if err != nil {
					t.Fatalf("%q: level %q accepted", s, fl)
				}
				want = big.NewInt(int64(d))
			}
			if levels[i] <= 0 || !want.IsInt64() || want.Int64() != int64(levels[i]) || want.Cmp(big.NewInt(math.MaxInt64)) > 0 {
				t.Fatalf("%q: level %d %q is %v, want %s ns", s, i+1, fl, levels[i], want)
			}
		}
	})
}
