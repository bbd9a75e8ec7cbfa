package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/dashboard"
	"github.com/rmq-dev/rmq/namesrv"
)

// devCommand runs a NameServer and a three-node group in this process
// (or several of each: dev_groups.go): the fastest way to a working
// cluster on one machine.
func devCommand() *cli.Command {
	cmd := &cli.Command{
		Name:  "dev",
		Usage: "run a local NameServer and a three-node broker group on 127.0.0.1 (Ctrl-C stops it)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: filepath.Join("data", "dev"), Usage: "data directory (reused by the next run)"},
			&cli.IntFlag{Name: "namesrv-port", Value: 9876, Usage: "NameServer port (NameServer j: port+j); Prometheus metrics after them (port+1 with one NameServer)"},
			&cli.IntFlag{Name: "broker-port", Value: 10911, Usage: "first broker's client port; node i uses port+10*i, Raft port+10*i+1, metrics port+10*i+2"},
			&cli.StringFlag{Name: "flush", Value: "sync", Usage: "CommitLog flush mode: sync or async"},
			&cli.BoolFlag{Name: "tls", Usage: "TLS everywhere (client ports, NameServer, Raft with mutual auth), with a throwaway CA made in --dir/tls"},
			delayLevelsFlag(),
			txFlags[0], txFlags[1], txFlags[2],
			&cli.StringFlag{Name: "acl", Usage: "access control rules file for every node (see rmq broker --acl; default: off)"},
			pprofFlag,
			traceDirFlag,
			&cli.StringFlag{Name: "dashboard", Value: "127.0.0.1:8080", Usage: "web dashboard and HTTP admin API address (\"\" turns it off)"},
		},
		Action: runDev,
	}
	cmd.Flags = append(cmd.Flags, devGroupFlags()...)
	return cmd
}

func runDev(c *cli.Context) error {
	if v := c.String("delay-levels"); c.IsSet("delay-levels") {
		if _, err := parseDelayLevels(v); err != nil {
			return fmt.Errorf("--delay-levels: %w", err)
		}
	}
	log := rootLogger(c)
	base := c.Int("broker-port")
	layout, err := devLayout(c.String("dir"), base, c.Int("groups"))
	if err != nil {
		return err
	}
	nsCount, err := devNamesrvs(c)
	if err != nil {
		return err
	}
	rec, err := startFlightRecorder(c.String("trace-dir"), log) // one for all nodes of the process
	if err != nil {
		return err
	}
	defer rec.Close() // after every node stopped
	ctx, cancel := context.WithCancel(context.Background())
	var nsAddrs []string
	var nsDones []chan error
	var devTLS devTLS
	var nsTLS, nsHTTPTLS *tls.Config
	var nss []*namesrv.Server
	for i := 0; i < nsCount; i++ {
		ncfg := namesrv.DefaultConfig()
		ncfg.Listen = fmt.Sprintf("127.0.0.1:%d", c.Int("namesrv-port")+i)
		// Metrics after the NameServers' ports: port+1 with one.
		ncfg.MetricsListen = fmt.Sprintf("127.0.0.1:%d", c.Int("namesrv-port")+nsCount+i)
		ncfg.Logger = log
		if i == 0 {
			devTLS, err = setupDevTLS(c, &ncfg) // dev_tls.go; zero without --tls
			nsTLS, nsHTTPTLS = ncfg.TLS, ncfg.HTTPTLS
		} else {
			ncfg.TLS, ncfg.HTTPTLS = nsTLS, nsHTTPTLS // the same CA and certificate
		}
		var ns *namesrv.Server
		if err == nil {
			ns, err = namesrv.New(ncfg)
		}
		if err != nil {
			cancel()
			for _, done := range nsDones {
				<-done
			}
			return err
		}
		nsAddrs = append(nsAddrs, ns.Addr())
		nss = append(nss, ns)
		done := make(chan error, 1)
		go func() { done <- ns.Run(ctx) }() // stopped by cancel below
		nsDones = append(nsDones, done)
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
		for _, done := range nsDones {
			errs = append(errs, <-done)
		}
		return errors.Join(errs...)
	}
	for _, dn := range layout {
		fc := fileConfig{
			NodeID:      dn.id,
			Group:       dn.group,
			DataDir:     dn.dir,
			Listen:      fmt.Sprintf("127.0.0.1:%d", dn.client),
			RaftListen:  fmt.Sprintf("127.0.0.1:%d", dn.raft),
			Peers:       dn.peers,
			Bootstrap:   true,
			NameServers: nsAddrs,
			Metrics:     fmt.Sprintf("127.0.0.1:%d", dn.client+2),
			Flush:       c.String("flush"),
			DelayLevels: c.String("delay-levels"),
			ACL:         c.String("acl"),

			TransactionTimeout:       c.String("transaction-timeout"),
			TransactionCheckInterval: c.String("transaction-check-interval"),
			TransactionCheckMax:      c.Int("transaction-check-max"),

			TLS: devTLS.file,
		}
		cfg, err := fc.brokerConfig()
		if err == nil {
			if rec != nil {
				cfg.OnIncident = rec.Trigger
			}
			cfg.Logger = log.Named(fc.NodeID)
			if len(layout) > 3 {
				cfg.Logger = log.Named(dn.group + "." + fc.NodeID)
			}
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
	dashDone := make(chan error, 1)
	dashURL := ""
	if addr := c.String("dashboard"); addr != "" {
		cTLS, sTLS, err := devTLS.dashboardTLS()
		var srv *dashboard.Server
		if err == nil {
			srv, err = newDashboard(nsAddrs, addr, 10*time.Second, log.Named("dashboard"), cTLS, sTLS)
		}
		if err != nil {
			return errors.Join(fmt.Errorf("%w (--dashboard ADDR moves it, --dashboard \"\" turns it off)", err), stopAll())
		}
		dashURL = srv.URL()
		go func() { dashDone <- runDashboard(ctx, srv) }() // ends with cancel in stopAll
	} else {
		dashDone <- nil
	}
	w := c.App.Writer
	fmt.Fprintf(w, "rmq dev cluster running (data in %s)\n", c.String("dir"))
	web := "http" // the metrics listeners' scheme
	if devTLS.files.CA != "" {
		web = "https"
	}
	for _, ns := range nss {
		fmt.Fprintf(w, "  namesrv  %s  metrics %s://%s/metrics\n", ns.Addr(), web, ns.MetricsAddr())
	}
	if dashURL != "" {
		fmt.Fprintf(w, "  dashboard %s\n", dashURL)
	}
	for i, n := range nodes {
		if len(layout) > 3 {
			fmt.Fprintf(w, "  broker   %s %s  client %s  raft 127.0.0.1:%d  metrics %s://%s/metrics\n", layout[i].group, layout[i].id,
				n.ClientAddr(), layout[i].raft, web, n.MetricsAddr())
			continue
		}
		fmt.Fprintf(w, "  broker   n%d  client %s  raft 127.0.0.1:%d  metrics %s://%s/metrics\n", i, n.ClientAddr(), layout[i].raft, web, n.MetricsAddr())
	}
	devTLS.print(w)
	nsList := strings.Join(nsAddrs, ",")
	fmt.Fprintf(w, "\nTry, in another terminal:\n")
	fmt.Fprintf(w, "  rmq --namesrv %s send demo 'hello rmq'\n", nsList)
	fmt.Fprintf(w, "  rmq --namesrv %s consume demo --group g1 --from first --count 1\n", nsList)
	fmt.Fprintf(w, "  rmq --namesrv %s cluster status\n", nsList)
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
	<-c.Context.Done()
	fmt.Fprintln(c.App.ErrWriter, "stopping the cluster")
	err = stopAll()
	return errors.Join(err, <-dashDone)
}
