package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/namesrv"
)

// rootLogger is the one root logger of a server process; packages name
// their sub-loggers (rmq.namesrv, rmq.raft, rmq.fsm, ...).
func rootLogger(c *cli.Context) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "rmq",
		Level:  hclog.LevelFromString(c.String("log-level")),
		Output: c.App.ErrWriter,
	})
}

func namesrvCommand() *cli.Command {
	return &cli.Command{
		Name:  "namesrv",
		Usage: "run a NameServer (route registry)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9876", Usage: "address to serve on"},
			metricsFlag,
		}, serverTLSFlags(false)...), // tls.go
		Action: func(c *cli.Context) error {
			cfg := namesrv.DefaultConfig()
			cfg.Listen = c.String("listen")
			cfg.MetricsListen = c.String("metrics")
			cfg.Logger = rootLogger(c)
			if err := setNamesrvTLS(c, &cfg); err != nil {
				return err
			}
			s, err := namesrv.New(cfg)
			if err != nil {
				return err
			}
			cfg.Logger.Info("namesrv serving", "addr", s.Addr(), "metrics", s.MetricsAddr())
			return s.Run(c.Context)
		},
	}
}

func brokerCommand() *cli.Command {
	return &cli.Command{
		Name:  "broker",
		Usage: "run a broker node (one member of a Raft group)",
		Description: "Settings come from --config (TOML, see README) and are overridden by flags.\n" +
			"Example: rmq broker --id n0 --data data/n0 --listen 127.0.0.1:10911 --raft 127.0.0.1:10912 \\\n" +
			"  --peers n0=127.0.0.1:10912,n1=127.0.0.1:10922,n2=127.0.0.1:10932 --bootstrap",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML config file"},
			&cli.StringFlag{Name: "id", Usage: "node ID (Raft server ID)"},
			&cli.StringFlag{Name: "cluster", Usage: "cluster name (default rmq)"},
			&cli.StringFlag{Name: "group", Usage: "broker group name (default broker-a)"},
			&cli.StringFlag{Name: "data", Usage: "data directory"},
			&cli.StringFlag{Name: "listen", Usage: "client address (default 127.0.0.1:10911)"},
			&cli.StringFlag{Name: "advertise", Usage: "client address published to clients (default: --listen)"},
			&cli.StringFlag{Name: "raft", Usage: "Raft address (default 127.0.0.1:10912)"},
			&cli.StringFlag{Name: "raft-advertise", Usage: "Raft address peers dial (default: --raft)"},
			&cli.StringFlag{Name: "peers", Usage: "the group's voters id=raftaddr,..., this node included"},
			&cli.BoolFlag{Name: "bootstrap", Usage: "may create a brand-new group: only if this node and every peer have no Raft state (safe on every start)"},
			&cli.BoolFlag{Name: "join", Usage: "join an existing group (then run 'rmq node add' for this node): never bootstrap; --peers, if given, are the group's current members"},
			&cli.StringFlag{Name: "preferred-leader", Usage: "node ID leadership returns to when it is a healthy, caught-up voter (same on every node of the group)"},
			&cli.StringFlag{Name: "flush", Usage: "CommitLog flush mode: sync or async (default sync)"},
			&cli.StringFlag{Name: "namesrv", Usage: "NameServer address(es) to register with, comma-separated (also accepted before the command)"},
			&cli.StringFlag{Name: "retention-max-age", Usage: `delete sealed segments older than this (default 72h; "off")`},
			&cli.StringFlag{Name: "retention-max-disk-bytes", Usage: `budget for rmq's files under --data, e.g. 100GiB (default: none; "off")`},
			&cli.StringFlag{Name: "retention-disk-ratio", Usage: `file-system fullness that deletes unexpired segments (default 0.85; "off")`},
			&cli.StringFlag{Name: "retention-check-interval", Usage: `how often the leader applies retention (default 10s; "off" disables retention)`},
			&cli.StringFlag{Name: "disk-high-water", Usage: `refuse sends once any node's file system is this full, e.g. 0.9 or 90% (default 0.90; "off")`},
			&cli.StringFlag{Name: "disk-low-water", Usage: `take sends again once every node is at or below this (default 0.85)`},
			&cli.StringFlag{Name: "disk-check-interval", Usage: `how often the leader reads the group's disks for the high-water mark (default 1s)`},
			delayLevelsFlag(),
			&cli.StringFlag{Name: "max-delay", Usage: "longest delay a timer message may ask for (default 72h; delay levels are not bound by it)"},
			&cli.StringFlag{Name: "timer-poll", Usage: "how often the leader delivers due delayed messages (default 100ms)"},
			txFlags[0], txFlags[1], txFlags[2],
			&cli.StringFlag{Name: "dedup-window", Usage: `producer dedup: a resent message whose ID was stored on its topic within this long is not stored again (default 2m; "0" or "off" turns dedup off; the leader's setting is the group's)`},
			&cli.StringFlag{Name: "acl", Usage: "access control: the rules file (RocketMQ plain_acl.yml shape, YAML or .toml), reloaded on change (default: off)"},
			&cli.StringFlag{Name: "acl-time-window", Usage: "how far a signed request's time may be from the broker's before it is refused as a replay (default 2m)"},
			&cli.BoolFlag{Name: "dedup-all", Usage: "producer dedup for every message with an id (RocketMQ producers too), not only producers that ask for it (costs about 14 % of produce throughput)"},
			&cli.Int64Flag{Name: "dedup-max-entries", Usage: "producer dedup: most message IDs the group remembers, oldest dropped first (default 1000000, about 76 bytes each on every node)"},
			&cli.StringFlag{Name: "log-cache-size", Usage: `memory for the CommitLog's newest entries, which Raft reads back (default 32MiB; "off")`},
			&cli.StringFlag{Name: "memory-limit", Usage: `Go's soft memory limit for the process (debug.SetMemoryLimit), e.g. 512MiB (default: GOMEMLIMIT's, else none; "off")`},
			pprofFlag,
			traceDirFlag,
			metricsFlag,
		}, serverTLSFlags(true)...), // tls.go
		Action: func(c *cli.Context) error {
			fc := defaultFileConfig()
			if path := c.String("config"); path != "" {
				var err error
				if fc, err = loadFileConfig(path); err != nil {
					return err
				}
			}
			applyBrokerFlags(c, &fc)
			if fc.DataDir == "" {
				return errors.New("--data is required: the directory for this node's CommitLog and state (or data = \"...\" in --config)")
			}
			cfg, err := fc.brokerConfig()
			if err != nil {
				return err
			}
			if cfg.NameServers == nil {
				cfg.NameServers = splitList(namesrvFlag(c))
			}
			cfg.Logger = rootLogger(c).Named("broker")
			limit, _ := fc.memoryLimit() // brokerConfig reported a bad one
			return runBroker(c, cfg, limit, fc.TraceDir)
		},
	}
}

// applyBrokerFlags overrides the file's settings with the flags given,
// noting which, so that a bad value's error names its flag.
func applyBrokerFlags(c *cli.Context, fc *fileConfig) {
	if fc.fromFlags == nil {
		fc.fromFlags = map[string]bool{}
	}
	set := func(name string, dst *string) {
		if c.IsSet(name) {
			*dst = c.String(name)
			fc.fromFlags[strings.ReplaceAll(name, "-", "_")] = true
		}
	}
	set("id", &fc.NodeID)
	set("cluster", &fc.Cluster)
	set("group", &fc.Group)
	set("data", &fc.DataDir)
	set("listen", &fc.Listen)
	set("advertise", &fc.Advertise)
	set("raft", &fc.RaftListen)
	set("raft-advertise", &fc.RaftAdvertise)
	set("flush", &fc.Flush)
	set("metrics", &fc.Metrics)
	set("log-cache-size", &fc.LogCacheSize)
	set("memory-limit", &fc.MemoryLimit)
	set("trace-dir", &fc.TraceDir)
	set("retention-max-age", &fc.RetentionMaxAge)
	set("retention-max-disk-bytes", &fc.RetentionMaxDiskBytes)
	if c.IsSet("retention-max-disk-bytes") {
		fc.RetentionMaxBytes = "" // the flag overrides the file's old name too
	}
	set("retention-check-interval", &fc.RetentionCheckInterval)
	if c.IsSet("retention-disk-ratio") {
		fc.RetentionDiskRatio = c.String("retention-disk-ratio")
		fc.fromFlags["retention_disk_ratio"] = true
	}
	for _, name := range []string{"disk-high-water", "disk-low-water"} {
		if c.IsSet(name) {
			key := strings.ReplaceAll(name, "-", "_")
			if name == "disk-high-water" {
				fc.DiskHighWater = c.String(name)
			} else {
				fc.DiskLowWater = c.String(name)
			}
			fc.fromFlags[key] = true
		}
	}
	set("disk-check-interval", &fc.DiskCheckInterval)
	set("delay-levels", &fc.DelayLevels)
	set("max-delay", &fc.MaxDelay)
	set("timer-poll", &fc.TimerPoll)
	set("transaction-timeout", &fc.TransactionTimeout)
	set("transaction-check-interval", &fc.TransactionCheckInterval)
	if c.IsSet("transaction-check-max") {
		fc.TransactionCheckMax = c.Int("transaction-check-max")
		fc.fromFlags["transaction_check_max"] = true
	}
	set("dedup-window", &fc.DedupWindow)
	set("acl", &fc.ACL)
	set("acl-time-window", &fc.ACLTimeWindow)
	if c.IsSet("dedup-all") {
		fc.DedupAll = c.Bool("dedup-all")
	}
	if c.IsSet("dedup-max-entries") {
		fc.DedupMaxEntries = c.Int64("dedup-max-entries")
		fc.fromFlags["dedup_max_entries"] = true
	}
	if c.IsSet("peers") {
		fc.Peers = splitList(c.String("peers"))
	}
	if c.IsSet("bootstrap") {
		fc.Bootstrap = c.Bool("bootstrap")
	}
	if c.IsSet("join") {
		fc.Join = c.Bool("join")
	}
	set("preferred-leader", &fc.PreferredLeader)
	if c.IsSet("namesrv") {
		fc.NameServers = splitList(namesrvFlag(c))
	}
	applyTLSFlags(c, &fc.TLS) // tls.go
}

// namesrvFlag is --namesrv given after the command, else the global one.
func namesrvFlag(c *cli.Context) string {
	if v := c.String("namesrv"); v != "" {
		return v
	}
	if l := c.Lineage(); len(l) > 1 {
		return l[1].String("namesrv")
	}
	return ""
}

// runBroker runs one node until Ctrl-C. memLimit > 0 becomes the process's
// soft memory limit (debug.SetMemoryLimit); 0 leaves GOMEMLIMIT's. A
// traceDir starts the flight recorder (--trace-dir).
func runBroker(c *cli.Context, cfg broker.Config, memLimit int64, traceDir string) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if memLimit > 0 {
		debug.SetMemoryLimit(memLimit)
		cfg.Logger.Info("memory limit set", "bytes", memLimit)
	}
	rec, err := startFlightRecorder(traceDir, cfg.Logger)
	if err != nil {
		return err
	}
	defer rec.Close() // after the node, so its last incidents can still trigger
	if rec != nil {
		cfg.OnIncident = rec.Trigger
	}
	n, err := broker.New(cfg)
	if err != nil {
		return err
	}
	pctx, stopPprof := context.WithCancel(context.Background())
	waitPprof, err := startPprof(pctx, c.String("pprof"), cfg.Logger)
	if err != nil {
		stopPprof()
		return errors.Join(fmt.Errorf("pprof: %w", err), n.Shutdown())
	}
	defer func() { stopPprof(); waitPprof() }()
	cfg.Logger.Info("broker serving", "node", cfg.NodeID, "group", cfg.Group, "addr", n.ClientAddr(), "data", cfg.DataDir, "metrics", n.MetricsAddr())
	runErr := n.Run(c.Context) // until Ctrl-C (or a listener fails)
	cfg.Logger.Info("shutting down: transferring leadership first")
	ctx, cancel := contextWithTimeout(c.Duration("timeout"))
	defer cancel()
	return errors.Join(runErr, n.Close(ctx))
}

// metricsFlag is --metrics of rmq broker and rmq namesrv.
var metricsFlag = &cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics on http://ADDR/metrics, e.g. 127.0.0.1:9100 (default: off)"}

// delayLevelsFlag is --delay-levels of rmq broker and rmq dev.
func delayLevelsFlag() cli.Flag {
	return &cli.StringFlag{Name: "delay-levels",
		Usage: `delay of each level 1..N, e.g. "1s 5s 10s" (default RocketMQ's 18 levels, "1s 5s 10s 30s 1m 2m ... 10m 20m 30m 1h 2h")`}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// txFlags are the transaction check-back settings of rmq broker and rmq dev.
var txFlags = []cli.Flag{
	&cli.StringFlag{Name: "transaction-timeout", Usage: "age of an open transactional message before its first check-back (default 6s)"},
	&cli.StringFlag{Name: "transaction-check-interval", Usage: "time between check-backs of an open transaction (default 60s)"},
	&cli.IntFlag{Name: "transaction-check-max", Usage: "check-backs before the broker rolls an open transaction back (default 15)"},
}
