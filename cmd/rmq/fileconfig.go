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

	Flush              string  `toml:"flush"`
	FlushInterval      string  `toml:"flush_interval"`
	SegmentSize        string  `toml:"segment_size"`
	HeartbeatTimeout   string  `toml:"heartbeat_timeout"`
	ElectionTimeout    string  `toml:"election_timeout"`
	LeaderLeaseTimeout string  `toml:"leader_lease_timeout"`
	SnapshotInterval   string  `toml:"snapshot_interval"`
	SnapshotThreshold  uint64  `toml:"snapshot_threshold"`
	MaxMessageSize     string  `toml:"max_message_size"`
	MaxBatchBytes      string  `toml:"max_batch_bytes"`
	AutoCreateTopics   *bool   `toml:"auto_create_topics"`
	RegisterInterval   string  `toml:"register_interval"`
	MemberTimeout      string  `toml:"member_timeout"`
	RetentionMaxAge    string  `toml:"retention_max_age"`
	RetentionMaxBytes  string  `toml:"retention_max_bytes"`
	RetentionDiskRatio float64 `toml:"retention_disk_ratio"`
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
	}
	for _, d := range durations {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			bad("%s: %v", d.name, err)
		}
		*d.out = v
	}
	sizes := []struct {
		name string
		in   string
		out  *int64
	}{
		{"segment_size", fc.SegmentSize, &cfg.SegmentSize},
		{"retention_max_bytes", fc.RetentionMaxBytes, &cfg.Retention.MaxBytes},
	}
	for _, s := range sizes {
		if s.in == "" {
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
	if fc.RetentionDiskRatio != 0 {
		cfg.Retention.DiskUsageRatio = fc.RetentionDiskRatio
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("broker config: %s", strings.Join(errs, "; "))
	}
	return cfg, nil
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
