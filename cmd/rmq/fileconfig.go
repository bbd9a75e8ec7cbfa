package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/raftlog"
)

// fileConfig is the broker's TOML file. Durations are Go durations
// ("400ms", "72h"); sizes accept KiB/MiB/GiB suffixes. Empty values take
// broker.DefaultConfig's defaults.
type fileConfig struct {
	NodeID        string   `toml:"id"`
	Cluster       string   `toml:"cluster"`
	Group         string   `toml:"group"`
	DataDir       string   `toml:"data"`
	Listen        string   `toml:"listen"`
	Advertise     string   `toml:"advertise"`
	RaftListen    string   `toml:"raft"`
	RaftAdvertise string   `toml:"raft_advertise"`
	Peers         []string `toml:"peers"` // id=raftaddr
	Bootstrap     bool     `toml:"bootstrap"`
	Join          bool     `toml:"join"` // joins an existing group (rmq node add); never bootstraps
	// PreferredLeader is the node ID leadership returns to when healthy.
	PreferredLeader string   `toml:"preferred_leader"`
	NameServers     []string `toml:"namesrv"`
	Metrics         string   `toml:"metrics"` // Prometheus /metrics address; empty: off

	Flush              string `toml:"flush"`
	FlushInterval      string `toml:"flush_interval"`
	SegmentSize        string `toml:"segment_size"`
	HeartbeatTimeout   string `toml:"heartbeat_timeout"`
	ElectionTimeout    string `toml:"election_timeout"`
	LeaderLeaseTimeout string `toml:"leader_lease_timeout"`
	// CrashDetection: followers elect at once when the leader's process
	// died (broker/crashwatch.go); default on.
	CrashDetection    *bool  `toml:"crash_detection"`
	SnapshotInterval  string `toml:"snapshot_interval"`
	SnapshotThreshold uint64 `toml:"snapshot_threshold"`
	MaxMessageSize    string `toml:"max_message_size"`
	MaxBatchBytes     string `toml:"max_batch_bytes"`
	AutoCreateTopics  *bool  `toml:"auto_create_topics"`
	RegisterInterval  string `toml:"register_interval"`
	MemberTimeout     string `toml:"member_timeout"`
	// Retention knobs; "off" (or -1) turns each off, empty takes the default.
	RetentionMaxAge        string `toml:"retention_max_age"`        // duration
	RetentionMaxDiskBytes  string `toml:"retention_max_disk_bytes"` // size
	RetentionMaxBytes      string `toml:"retention_max_bytes"`      // old name of retention_max_disk_bytes
	RetentionDiskRatio     any    `toml:"retention_disk_ratio"`     // 0.85, "85%"
	RetentionCheckInterval string `toml:"retention_check_interval"` // duration
	// Disk limits: sends are refused once a node's file system is this
	// full and taken again at the low-water mark; "off" turns it off.
	DiskHighWater     any    `toml:"disk_high_water"`     // 0.90, "90%", "off"
	DiskLowWater      any    `toml:"disk_low_water"`      // 0.85, "85%"
	DiskCheckInterval string `toml:"disk_check_interval"` // duration
	// Delayed messages: the delay levels, space-separated durations in
	// RocketMQ's messageDelayLevel form ("1s 5s 10s 30s 1m ... 2h"; a "d"
	// unit is a day), the longest timer delay, and the scheduler's poll.
	DelayLevels string `toml:"delay_levels"`
	MaxDelay    string `toml:"max_delay"` // duration
	TimerPoll   string `toml:"timer_poll"`
	// Transactions: when a half message is first checked back, how often
	// again, and how many checks before the broker rolls it back.
	TransactionTimeout       string `toml:"transaction_timeout"`
	TransactionCheckInterval string `toml:"transaction_check_interval"`
	TransactionCheckMax      int    `toml:"transaction_check_max"`
	// Producer dedup: how long a stored message ID is remembered (a
	// duration; "0" or "off" turns dedup off) and how many IDs at most.
	DedupWindow     string `toml:"dedup_window"`
	DedupMaxEntries int64  `toml:"dedup_max_entries"`
	DedupAll        bool   `toml:"dedup_all"` // every message, not only producers asking (Idempotent)
	// Memory: the CommitLog's cache of the newest entries (a size; "off"
	// turns it off), and the Go runtime's soft memory limit for the
	// process (debug.SetMemoryLimit; a size, or "off" for none even if the
	// GOMEMLIMIT environment variable sets one; empty: GOMEMLIMIT's).
	LogCacheSize string `toml:"log_cache_size"`
	MemoryLimit  string `toml:"memory_limit"`
	// TraceDir turns on the flight recorder (rmq broker --trace-dir): a
	// trace of the last seconds is written there on every election,
	// lost leadership or process stall. Empty: off.
	TraceDir string `toml:"trace_dir"`
	// Access control: the rules file (plain_acl.yml shape; empty: off) and
	// how far a signed request's time may be from the broker's (duration).
	ACL           string `toml:"acl"`
	ACLTimeWindow string `toml:"acl_time_window"`

	TLS fileTLS `toml:"tls"` // [tls] and [tls.client|raft|http|namesrv], see tls.go

	// fromFlags holds the keys a flag set, so that an error names the
	// flag the value came from.
	fromFlags map[string]bool
}

// label names a setting in an error: its flag if a flag set it (a key's
// flag is the key with dashes: max_delay, --max-delay), else its key.
func (fc fileConfig) label(key string) string {
	if fc.fromFlags[key] {
		return "--" + strings.ReplaceAll(key, "_", "-")
	}
	return key
}

func defaultFileConfig() fileConfig {
	return fileConfig{Listen: "127.0.0.1:10911", RaftListen: "127.0.0.1:10912"}
}

func loadFileConfig(path string) (fileConfig, error) {
	fc := defaultFileConfig()
	md, err := toml.DecodeFile(path, &fc)
	if err != nil {
		return fc, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return fc, fmt.Errorf("config %s: unknown setting %q", path, und[0].String())
	}
	return fc, nil
}

// brokerConfig converts the file form, reporting every bad value.
func (fc fileConfig) brokerConfig() (broker.Config, error) {
	cfg := broker.DefaultConfig()
	cfg.NodeID, cfg.DataDir = fc.NodeID, fc.DataDir
	cfg.ClientListen, cfg.ClientAdvertise = fc.Listen, fc.Advertise
	cfg.RaftBind, cfg.RaftAdvertise = fc.RaftListen, fc.RaftAdvertise
	cfg.Bootstrap, cfg.NameServers = fc.Bootstrap, fc.NameServers
	cfg.Join, cfg.PreferredLeader = fc.Join, fc.PreferredLeader
	cfg.ACLFile = fc.ACL
	cfg.MetricsListen = fc.Metrics
	if fc.Cluster != "" {
		cfg.Cluster = fc.Cluster
	}
	if fc.Group != "" {
		cfg.Group = fc.Group
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for _, p := range fc.Peers {
		id, addr, ok := strings.Cut(p, "=")
		if !ok || id == "" || addr == "" {
			bad("peer %q: want id=host:port", p)
			continue
		}
		cfg.Peers = append(cfg.Peers, broker.Peer{ID: id, Addr: addr})
	}
	if fc.Flush != "" {
		m, err := raftlog.ParseFlushMode(fc.Flush)
		if err != nil {
			bad("%s: %v", fc.label("flush"), err)
		}
		cfg.FlushMode = m
	}
	durations := []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"flush_interval", fc.FlushInterval, &cfg.FlushInterval},
		{"heartbeat_timeout", fc.HeartbeatTimeout, &cfg.HeartbeatTimeout},
		{"election_timeout", fc.ElectionTimeout, &cfg.ElectionTimeout},
		{"leader_lease_timeout", fc.LeaderLeaseTimeout, &cfg.LeaderLeaseTimeout},
		{"snapshot_interval", fc.SnapshotInterval, &cfg.SnapshotInterval},
		{"register_interval", fc.RegisterInterval, &cfg.RegisterInterval},
		{"member_timeout", fc.MemberTimeout, &cfg.MemberTimeout},
		{"retention_max_age", fc.RetentionMaxAge, &cfg.Retention.MaxAge},
		{"retention_check_interval", fc.RetentionCheckInterval, &cfg.Retention.CheckInterval},
		{"max_delay", fc.MaxDelay, &cfg.MaxDelay},
		{"timer_poll", fc.TimerPoll, &cfg.TimerPoll},
		{"transaction_timeout", fc.TransactionTimeout, &cfg.TransactionTimeout},
		{"transaction_check_interval", fc.TransactionCheckInterval, &cfg.TransactionCheckInterval},
		{"acl_time_window", fc.ACLTimeWindow, &cfg.ACL.TimeWindow},
		{"disk_check_interval", fc.DiskCheckInterval, &cfg.DiskLimit.CheckInterval},
	}
	for _, d := range durations {
		if d.in == "" {
			continue
		}
		if strings.HasPrefix(d.name, "retention_") && isOff(d.in) {
			*d.out = -1
			continue
		}
		v, err := time.ParseDuration(d.in)
		switch {
		case err != nil:
			bad("%s: %v", fc.label(d.name), err)
		case v <= 0 && (d.name == "max_delay" || d.name == "timer_poll" || d.name == "acl_time_window" || d.name == "disk_check_interval" ||
			strings.HasPrefix(d.name, "transaction_")):
			bad("%s: %s: want a positive duration", fc.label(d.name), d.in)
		}
		*d.out = v
	}
	if fc.TransactionCheckMax < 0 || fc.TransactionCheckMax > 1000 {
		bad("%s: %d: want 1..1000 (0: the default 15)", fc.label("transaction_check_max"), fc.TransactionCheckMax)
	}
	cfg.TransactionCheckMax = fc.TransactionCheckMax
	if fc.DedupWindow != "" {
		v, err := time.ParseDuration(fc.DedupWindow)
		switch {
		case isOff(fc.DedupWindow) || err == nil && v == 0:
			cfg.DedupWindow = -1
		case err != nil:
			bad("%s: %v", fc.label("dedup_window"), err)
		case v < 0:
			bad("%s: %s: want a positive duration, or 0 or \"off\" to turn dedup off", fc.label("dedup_window"), fc.DedupWindow)
		default:
			cfg.DedupWindow = v
		}
	}
	cfg.DedupAll = fc.DedupAll
	if fc.DedupMaxEntries < 0 {
		bad("%s: %d: want a positive number of message IDs", fc.label("dedup_max_entries"), fc.DedupMaxEntries)
	} else if fc.DedupMaxEntries > 0 {
		cfg.DedupMaxEntries = int(min(fc.DedupMaxEntries, math.MaxInt32))
	}
	if fc.DelayLevels != "" {
		levels, err := parseDelayLevels(fc.DelayLevels)
		if err != nil {
			bad("%s: %v", fc.label("delay_levels"), err)
		}
		cfg.DelayLevels = levels
	}
	if fc.RetentionMaxDiskBytes != "" && fc.RetentionMaxBytes != "" {
		bad("retention_max_bytes is the old name of retention_max_disk_bytes: set only one")
	}
	sizes := []struct {
		name string
		in   string
		out  *int64
	}{
		{"segment_size", fc.SegmentSize, &cfg.SegmentSize},
		{"retention_max_disk_bytes", fc.RetentionMaxDiskBytes + fc.RetentionMaxBytes, &cfg.Retention.MaxDiskBytes},
	}
	for _, s := range sizes {
		if s.in == "" {
			continue
		}
		if strings.HasPrefix(s.name, "retention_") && isOff(s.in) {
			*s.out = -1
			continue
		}
		v, err := parseSize(s.in)
		if err != nil {
			bad("%s: %v", fc.label(s.name), err)
		}
		*s.out = v
	}
	for _, s := range []struct {
		name string
		in   string
		out  *int
	}{{"max_message_size", fc.MaxMessageSize, &cfg.MaxMessageSize}, {"max_batch_bytes", fc.MaxBatchBytes, &cfg.MaxBatchBytes}} {
		if s.in == "" {
			continue
		}
		v, err := parseSize(s.in)
		if err != nil {
			bad("%s: %v", s.name, err)
		}
		*s.out = int(v)
	}
	if fc.LogCacheSize != "" {
		v, err := parseSize(fc.LogCacheSize)
		switch {
		case isOff(fc.LogCacheSize):
			cfg.LogCacheBytes = -1
		case err != nil:
			bad("%s: %v (or \"off\")", fc.label("log_cache_size"), err)
		default:
			cfg.LogCacheBytes = v
		}
	}
	if _, err := fc.memoryLimit(); err != nil {
		bad("%s: %v", fc.label("memory_limit"), err)
	}
	if fc.SnapshotThreshold > 0 {
		cfg.SnapshotThreshold = fc.SnapshotThreshold
	}
	if fc.CrashDetection != nil {
		cfg.DisableCrashDetection = !*fc.CrashDetection
	}
	if fc.AutoCreateTopics != nil {
		cfg.DisableAutoCreate = !*fc.AutoCreateTopics
	}
	if fc.RetentionDiskRatio != nil {
		r, err := parseRatio(fc.RetentionDiskRatio)
		if err != nil {
			bad("%s: %v", fc.label("retention_disk_ratio"), err)
		}
		if r != 0 {
			cfg.Retention.ForceDiskRatio = r
		}
	}
	errs = append(errs, fc.TLS.apply(&cfg)...) // tls.go
	for _, r := range []struct {
		name string
		in   any
		out  *float64
	}{{"disk_high_water", fc.DiskHighWater, &cfg.DiskLimit.HighWater}, {"disk_low_water", fc.DiskLowWater, &cfg.DiskLimit.LowWater}} {
		if r.in == nil {
			continue
		}
		v, err := parseRatio(r.in)
		switch {
		case err != nil:
			bad("%s: %v", fc.label(r.name), err)
		case v < 0 && r.name == "disk_low_water":
			bad("%s: cannot be off (turn disk_high_water off instead)", fc.label(r.name))
		case v != 0:
			*r.out = v
		}
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("broker config: %s", strings.Join(errs, "; "))
	}
	return cfg, nil
}

// minMemoryLimit is the smallest memory_limit accepted: below it the
// collector would run nearly all the time, and a bare number is bytes, so
// "512" is far more likely a typo for "512MiB" than a wish.
const minMemoryLimit = 64 << 20

// memoryLimit returns memory_limit in bytes: 0 when unset (GOMEMLIMIT, if
// set, applies), math.MaxInt64 for "off".
func (fc fileConfig) memoryLimit() (int64, error) {
	if fc.MemoryLimit == "" {
		return 0, nil
	}
	if isOff(fc.MemoryLimit) {
		return math.MaxInt64, nil
	}
	v, err := parseSize(fc.MemoryLimit)
	if err != nil {
		return 0, fmt.Errorf("%w (or \"off\")", err)
	}
	if v < minMemoryLimit {
		return 0, fmt.Errorf("%s is below the smallest limit, 64MiB", fc.MemoryLimit)
	}
	return v, nil
}

// parseDelayLevels parses RocketMQ's messageDelayLevel form: durations
// separated by spaces (or commas), level 1 first, each a Go duration or a
// number of days ("1d"), e.g. "1s 5s 10s 30s 1m 2m 1h 2h".
func parseDelayLevels(s string) ([]time.Duration, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("%q: want durations such as \"1s 5s 10s\"", s)
	}
	levels := make([]time.Duration, 0, len(fields))
	for i, f := range fields {
		d, err := parseLevel(f)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("level %d %q: want a positive duration such as 5s, 1m, 2h or 1d", i+1, f)
		}
		levels = append(levels, d)
	}
	return levels, nil
}

func parseLevel(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		// Both bounds: "-200000d" overflowed to a 37-year delay (found by FuzzParseDelayLevels).
		if err != nil || n > int64(math.MaxInt64/(24*time.Hour)) || n < int64(math.MinInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("bad days %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// isOff reports whether a retention setting says "off" (or -1).
func isOff(s string) bool {
	s = strings.TrimSpace(s)
	return strings.EqualFold(s, "off") || s == "-1"
}

// parseRatio parses a fraction of the disk: 0.85, "0.85", "85%", or "off"
// / -1 (returned as -1). 0 means the default.
func parseRatio(v any) (float64, error) {
	var r float64
	switch x := v.(type) {
	case float64:
		r = x
	case int64:
		r = float64(x)
	case string:
		s := strings.TrimSpace(x)
		if isOff(s) {
			return -1, nil
		}
		pct := strings.HasSuffix(s, "%")
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil {
			return 0, fmt.Errorf("%q: want a fraction like 0.85, a percentage like \"85%%\", or \"off\"", x)
		}
		if r = f; pct {
			r = f / 100
		}
	default:
		return 0, fmt.Errorf("%v: want a fraction like 0.85, a percentage like \"85%%\", or \"off\"", v)
	}
	if r == -1 {
		return -1, nil
	}
	if r < 0 || r > 1 {
		return 0, fmt.Errorf("%v is not in (0, 1]; use \"off\" to turn it off", v)
	}
	return r, nil
}

// parseSize parses "1048576", "512KiB", "64MiB", "1GiB" (also KB/MB/GB as
// binary units).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional KiB/MiB/GiB suffix", s)
	}
	if v > math.MaxInt64/mult { // "8589934592GiB" overflowed to a negative size (found by FuzzParseSize)
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return v * mult, nil
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
