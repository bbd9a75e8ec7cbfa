package main

import (
	"context"
	"fmt"
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
	NameServers   []string `toml:"namesrv"`

	Flush              string `toml:"flush"`
	FlushInterval      string `toml:"flush_interval"`
	SegmentSize        string `toml:"segment_size"`
	HeartbeatTimeout   string `toml:"heartbeat_timeout"`
	ElectionTimeout    string `toml:"election_timeout"`
	LeaderLeaseTimeout string `toml:"leader_lease_timeout"`
	SnapshotInterval   string `toml:"snapshot_interval"`
	SnapshotThreshold  uint64 `toml:"snapshot_threshold"`
	MaxMessageSize     string `toml:"max_message_size"`
	MaxBatchBytes      string `toml:"max_batch_bytes"`
	AutoCreateTopics   *bool  `toml:"auto_create_topics"`
	RegisterInterval   string `toml:"register_interval"`
	MemberTimeout      string `toml:"member_timeout"`
	// Retention knobs; "off" (or -1) turns each off, empty takes the default.
	RetentionMaxAge        string `toml:"retention_max_age"`        // duration
	RetentionMaxDiskBytes  string `toml:"retention_max_disk_bytes"` // size
	RetentionMaxBytes      string `toml:"retention_max_bytes"`      // old name of retention_max_disk_bytes
	RetentionDiskRatio     any    `toml:"retention_disk_ratio"`     // 0.85, "85%"
	RetentionCheckInterval string `toml:"retention_check_interval"` // duration
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
			bad("flush: %v", err)
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
		if err != nil {
			bad("%s: %v", d.name, err)
		}
		*d.out = v
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
			bad("%s: %v", s.name, err)
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
	if fc.SnapshotThreshold > 0 {
		cfg.SnapshotThreshold = fc.SnapshotThreshold
	}
	if fc.AutoCreateTopics != nil {
		cfg.DisableAutoCreate = !*fc.AutoCreateTopics
	}
	if fc.RetentionDiskRatio != nil {
		r, err := parseRatio(fc.RetentionDiskRatio)
		if err != nil {
			bad("retention_disk_ratio: %v", err)
		}
		if r != 0 {
			cfg.Retention.ForceDiskRatio = r
		}
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("broker config: %s", strings.Join(errs, "; "))
	}
	return cfg, nil
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
	return v * mult, nil
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
