package main

import (
	"context"
	"errors"
	"fmt"
	"os"
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
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9876", Usage: "address to serve on"},
		},
		Action: func(c *cli.Context) error {
			cfg := namesrv.DefaultConfig()
			cfg.Listen = c.String("listen")
			cfg.Logger = rootLogger(c)
			s, err := namesrv.New(cfg)
			if err != nil {
				return err
			}
			cfg.Logger.Info("namesrv serving", "addr", s.Addr())
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
		Flags: []cli.Flag{
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
			&cli.StringFlag{Name: "flush", Usage: "CommitLog flush mode: sync or async (default sync)"},
			&cli.StringFlag{Name: "namesrv", Usage: "NameServer address(es) to register with, comma-separated (also accepted before the command)"},
			&cli.StringFlag{Name: "retention-max-age", Usage: `delete sealed segments older than this (default 72h; "off")`},
			&cli.StringFlag{Name: "retention-max-disk-bytes", Usage: `budget for rmq's files under --data, e.g. 100GiB (default: none; "off")`},
			&cli.StringFlag{Name: "retention-disk-ratio", Usage: `file-system fullness that deletes unexpired segments (default 0.85; "off")`},
			&cli.StringFlag{Name: "retention-check-interval", Usage: `how often the leader applies retention (default 10s; "off" disables retention)`},
			delayLevelsFlag(),
			&cli.StringFlag{Name: "max-delay", Usage: "longest delay a timer message may ask for (default 72h; delay levels are not bound by it)"},
			&cli.StringFlag{Name: "timer-poll", Usage: "how often the leader delivers due delayed messages (default 100ms)"},
			txFlags[0], txFlags[1], txFlags[2],
			&cli.StringFlag{Name: "dedup-window", Usage: `producer dedup: a resent message whose ID was stored on its topic within this long is not stored again (default 2m; "0" or "off" turns dedup off; the leader's setting is the group's)`},
			&cli.BoolFlag{Name: "dedup-all", Usage: "producer dedup for every message with an id (RocketMQ producers too), not only producers that ask for it (costs about 14 % of produce throughput)"},
			&cli.Int64Flag{Name: "dedup-max-entries", Usage: "producer dedup: most message IDs the group remembers, oldest dropped first (default 1000000, about 76 bytes each on every node)"},
			pprofFlag,
		},
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
			return runBroker(c, cfg)
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
	if c.IsSet("namesrv") {
		fc.NameServers = splitList(namesrvFlag(c))
	}
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

func runBroker(c *cli.Context, cfg broker.Config) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
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
	cfg.Logger.Info("broker serving", "node", cfg.NodeID, "group", cfg.Group, "addr", n.ClientAddr(), "data", cfg.DataDir)
	runErr := n.Run(c.Context) // until Ctrl-C (or a listener fails)
	cfg.Logger.Info("shutting down: transferring leadership first")
	ctx, cancel := contextWithTimeout(c.Duration("timeout"))
	defer cancel()
	return errors.Join(runErr, n.Close(ctx))
}

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
