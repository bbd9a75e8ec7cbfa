package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/drill"
	"github.com/rmq-dev/rmq/wire"
)

func failoverCommand() *cli.Command {
	groupFlag := &cli.StringFlag{Name: "broker-group", Aliases: []string{"g"}, Value: "broker-a", Usage: "broker group"}
	return nounCommand("failover", "move leadership and measure what clients see",
		&cli.Command{
			Name:  "transfer",
			Usage: "hand leadership to another node gracefully and report how long writes paused",
			Flags: []cli.Flag{groupFlag,
				&cli.StringFlag{Name: "to", Usage: "target node id (default: the most up-to-date follower)"},
				&cli.StringFlag{Name: "topic", Value: "rmq-drill", Usage: "topic the write probe uses (created if missing)"},
			},
			Action: failoverTransfer,
		},
		&cli.Command{
			Name:  "drill",
			Usage: "run a producer and a consumer while forcing leader changes, then report lost, duplicated and unavailability",
			Description: "Leader changes are graceful transfers. For hard kills of local processes or compose\n" +
				"containers use scripts/failover-drill.sh, which runs this drill with --changes 0 alongside\n" +
				"and sends it SIGUSR1 just before each kill: the report then gives every kill's unavailability.",
			Flags: []cli.Flag{groupFlag,
				&cli.IntFlag{Name: "changes", Value: 5, Usage: "leader changes to force (0: none, just measure)"},
				&cli.DurationFlag{Name: "interval", Value: 2 * time.Second, Usage: "time between changes"},
				&cli.DurationFlag{Name: "duration", Usage: "with --changes 0: how long to run (default: until Ctrl-C); each SIGUSR1 marks an outside disruption"},
				&cli.IntFlag{Name: "producers", Value: 4, Usage: "producer goroutines"},
				&cli.StringFlag{Name: "topic", Value: "rmq-drill", Usage: "drill topic (created if missing)"},
			},
			Action: failoverDrill,
		},
	)
}

func startProbe(c *cli.Context, topic string, producers int) (*drill.Workload, error) {
	ns, err := nameServers(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	w, err := drill.Start(ctx, drill.Config{NameServers: ns, TLS: clientTLS(c), Topic: topic, Group: topic + "-drill", Producers: producers,
		Interval: time.Millisecond, Logger: clientLogger(c)})
	if err != nil {
		return nil, err
	}
	if err := w.WaitAcked(ctx, 50); err != nil {
		w.Stop(context.Background(), 0)
		return nil, fmt.Errorf("no writes are being acknowledged before the first change: %w", err)
	}
	return w, nil
}

// transferOnce moves leadership and waits until another node serves.
func transferOnce(c *cli.Context, a *client.Admin, w *drill.Workload, group, to string) error {
	ctx, cancel := opContext(c)
	defer cancel()
	before, err := groupLeader(ctx, a, group)
	if err != nil {
		return err
	}
	w.Mark(fmt.Sprintf("transfer from %s", before))
	if err := a.TransferLeadership(ctx, group, to); err != nil {
		return fmt.Errorf("transfer leadership of %s: %w", group, err)
	}
	for {
		now, err := groupLeader(ctx, a, group)
		if err == nil && now != before {
			fmt.Fprintf(c.App.ErrWriter, "leadership of %s moved %s -> %s\n", group, before, now)
			return w.WaitAcked(ctx, w.Acked()+20)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still leads %s after the transfer: %w", before, group, ctx.Err())
		case <-time.After(20 * time.Millisecond): // polling the NameServer
		}
	}
}

func groupLeader(ctx context.Context, a *client.Admin, group string) (string, error) {
	gs, err := a.ClusterStatus(ctx)
	if err != nil {
		return "", err
	}
	for _, g := range gs {
		if g.Group == group {
			if g.Leader == "" {
				return "", fmt.Errorf("broker group %q has no leader right now", group)
			}
			return g.Leader, nil
		}
	}
	return "", fmt.Errorf("broker group %q is not registered with the NameServer", group)
}

func failoverTransfer(c *cli.Context) error {
	if _, err := wantArgs(c); err != nil {
		return err
	}
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	defer a.Close()
	w, err := startProbe(c, c.String("topic"), 1)
	if err != nil {
		return err
	}
	terr := transferOnce(c, a, w, c.String("broker-group"), c.String("to"))
	r, serr := w.Stop(context.Background(), 10*time.Second)
	if terr != nil {
		return terr
	}
	if err := render(c, drillView(r)); err != nil {
		return err
	}
	return serr
}

func failoverDrill(c *cli.Context) error {
	if _, err := wantArgs(c); err != nil {
		return err
	}
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	defer a.Close()
	w, err := startProbe(c, c.String("topic"), c.Int("producers"))
	if err != nil {
		return err
	}
	var runErr error
	if n := c.Int("changes"); n > 0 {
		for i := 0; i < n && runErr == nil; i++ {
			select {
			case <-c.Context.Done():
				runErr = c.Context.Err()
				continue
			case <-time.After(c.Duration("interval")):
			}
			runErr = transferOnce(c, a, w, c.String("broker-group"), "")
		}
	} else {
		var limit <-chan time.Time
		if d := c.Duration("duration"); d > 0 {
			limit = time.After(d)
		}
		// Whoever disrupts the group from outside (scripts/failover-drill.sh
		// before each SIGKILL) marks the moment with SIGUSR1, so the report
		// gives each disruption's unavailability.
		marks := make(chan os.Signal, 8)
		signal.Notify(marks, syscall.SIGUSR1)
		defer signal.Stop(marks)
		for done := false; !done; {
			select {
			case <-c.Context.Done():
				done = true
			case <-limit:
				done = true
			case <-marks:
				w.Mark(fmt.Sprintf("external disruption %d", w.Marks()+1))
			}
		}
	}
	r, serr := w.Stop(context.Background(), 30*time.Second)
	if err := render(c, drillView(r)); err != nil {
		return err
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	if r.Lost > 0 {
		return fmt.Errorf("%d acknowledged messages were lost", r.Lost)
	}
	return serr
}

// drillView renders a drill.Report.
type drillView drill.Report

func (v drillView) table(w io.Writer) { drill.Report(v).Print(w) }

func nodeCommand() *cli.Command {
	status := &cli.Command{
		Name:   "status",
		Usage:  "a broker node's Raft and storage state (exit 0 if it answers: a health check)",
		Flags:  []cli.Flag{&cli.StringFlag{Name: "addr", Value: "127.0.0.1:10911", Usage: "the node's client address"}},
		Action: nodeStatus,
	}
	return nounCommand("node", "talk to one broker node directly, or change a broker group's membership",
		append([]*cli.Command{status}, nodeMemberCommands()...)...) // node.go
}

type nodeStatusView wire.NodeStatus

func (v nodeStatusView) table(w io.Writer) {
	disk := "-"
	if v.DiskTotal > 0 {
		disk = fmt.Sprintf("%.1f%%", 100*float64(v.DiskUsed)/float64(v.DiskTotal))
	}
	row(w, "NODE", "GROUP", "ROLE", "SERVING", "TERM", "COMMIT", "APPLIED", "FIRST", "LAST", "LOG BYTES", "DATA BYTES", "DISK", "ADDRESS")
	commit := "-" // not learned yet (CommitIndex 0 is raft's value before it learns one)
	if !v.CommitUnknown && v.CommitIndex != 0 {
		commit = strconv.FormatUint(v.CommitIndex, 10)
	}
	role := v.Role
	if v.Suffrage == "nonvoter" {
		role += " (non-voter)"
	}
	row(w, v.NodeID, v.Group, role, v.Serving, v.Term, commit, v.AppliedIndex, v.FirstIndex, v.LastIndex, v.LogBytes, v.DataBytes, disk, v.Addr)
	if p := v.LastPurge; p != nil {
		fmt.Fprintf(w, "last purge: %s: %d segments, %d bytes, entries %d-%d: %s\n", timeCell(time.UnixMilli(p.AtMillis)),
			p.Segments, p.Bytes, p.FromIndex, p.ToIndex, textCell(p.Reason))
	}
	if v.DiskFull != "" {
		fmt.Fprintf(w, "sends refused (disk full): %s\n", textCell(v.DiskFull))
	}
}

func nodeStatus(c *cli.Context) error {
	if _, err := wantArgs(c); err != nil {
		return err
	}
	ctx, cancel := opContext(c)
	defer cancel()
	conn, err := wire.DialTLS(ctx, c.String("addr"), 0, clientTLS(c))
	if err != nil {
		return fmt.Errorf("broker at %s: %w", c.String("addr"), err)
	}
	defer conn.Close()
	var st wire.NodeStatus
	if err := conn.Call(ctx, wire.CodeNodeStatus, wire.Empty{}, &st); err != nil {
		return fmt.Errorf("broker at %s: %w", c.String("addr"), err)
	}
	return render(c, nodeStatusView(st))
}
