package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/namesrv"
)

// devCommand runs a NameServer and a three-node group in this process:
// the fastest way to a working cluster on one machine.
func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a local NameServer and a three-node broker group on 127.0.0.1 (Ctrl-C stops it)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: filepath.Join("data", "dev"), Usage: "data directory (reused by the next run)"},
			&cli.IntFlag{Name: "namesrv-port", Value: 9876, Usage: "NameServer port"},
			&cli.IntFlag{Name: "broker-port", Value: 10911, Usage: "first broker's client port; node i uses port+10*i, Raft port+10*i+1"},
			&cli.StringFlag{Name: "flush", Value: "sync", Usage: "CommitLog flush mode: sync or async"},
			delayLevelsFlag(),
			txFlags[0], txFlags[1], txFlags[2],
			pprofFlag,
		},
		Action: runDev,
	}
}

func runDev(c *cli.Context) error {
	if v := c.String("delay-levels"); c.IsSet("delay-levels") {
		if _, err := parseDelayLevels(v); err != nil {
			return fmt.Errorf("--delay-levels: %w", err)
		}
	}
	log := rootLogger(c)
	ncfg := namesrv.DefaultConfig()
	ncfg.Listen = fmt.Sprintf("127.0.0.1:%d", c.Int("namesrv-port"))
	ncfg.Logger = log
	ns, err := namesrv.New(ncfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	nsDone := make(chan error, 1)
	go func() { nsDone <- ns.Run(ctx) }() // stopped by cancel below

	base := c.Int("broker-port")
	var peers []string
	for i := 0; i < 3; i++ {
		peers = append(peers, fmt.Sprintf("n%d=127.0.0.1:%d", i, base+10*i+1))
	}
	var nodes []*broker.Node
	var runs []chan error // each node's Run, which returns once the node stops
	// The whole group stops together, so no node hands leadership over.
	stopAll := func() error {
		var errs []error
		for _, n := range nodes {
			errs = append(errs, n.Shutdown())
		}
		for _, done := range runs {
			if err := <-done; !errors.Is(err, broker.ErrClosed) {
				errs = append(errs, err)
			}
		}
		cancel()
		errs = append(errs, <-nsDone)
		return errors.Join(errs...)
	}
	for i := 0; i < 3; i++ {
		fc := fileConfig{
			NodeID:      fmt.Sprintf("n%d", i),
			DataDir:     filepath.Join(c.String("dir"), fmt.Sprintf("n%d", i)),
			Listen:      fmt.Sprintf("127.0.0.1:%d", base+10*i),
			RaftListen:  fmt.Sprintf("127.0.0.1:%d", base+10*i+1),
			Peers:       peers,
			Bootstrap:   true,
			NameServers: []string{ns.Addr()},
			Flush:       c.String("flush"),
			DelayLevels: c.String("delay-levels"),

			TransactionTimeout:       c.String("transaction-timeout"),
			TransactionCheckInterval: c.String("transaction-check-interval"),
			TransactionCheckMax:      c.Int("transaction-check-max"),
		}
		cfg, err := fc.brokerConfig()
		if err == nil {
			cfg.Logger = log.Named(fc.NodeID)
			var n *broker.Node
			if n, err = broker.New(cfg); err == nil {
				nodes = append(nodes, n)
				done := make(chan error, 1)
				go func() { done <- n.Run(ctx) }() // ends when stopAll shuts n down
				runs = append(runs, done)
				continue
			}
		}
		return errors.Join(fmt.Errorf("start %s: %w", fc.NodeID, err), stopAll())
	}
	waitPprof, err := startPprof(ctx, c.String("pprof"), log)
	if err != nil {
		return errors.Join(fmt.Errorf("pprof: %w", err), stopAll())
	}
	defer waitPprof()
	w := c.App.Writer
	fmt.Fprintf(w, "rmq dev cluster running (data in %s)\n", c.String("dir"))
	fmt.Fprintf(w, "  namesrv  %s\n", ns.Addr())
	for i, n := range nodes {
		fmt.Fprintf(w, "  broker   n%d  client %s  raft 127.0.0.1:%d\n", i, n.ClientAddr(), base+10*i+1)
	}
	fmt.Fprintf(w, "\nTry, in another terminal:\n")
	fmt.Fprintf(w, "  rmq --namesrv %s send demo 'hello rmq'\n", ns.Addr())
	fmt.Fprintf(w, "  rmq --namesrv %s consume demo --group g1 --from first --count 1\n", ns.Addr())
	fmt.Fprintf(w, "  rmq --namesrv %s cluster status\n", ns.Addr())
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
	<-c.Context.Done()
	fmt.Fprintln(c.App.ErrWriter, "stopping the cluster")
	return stopAll()
}
