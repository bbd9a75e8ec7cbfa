package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

// nodeMemberCommands are the membership verbs of "rmq node": the broker
// group's Raft configuration, changed by its leader.
func nodeMemberCommands() []*cli.Command {
	groupFlag := &cli.StringFlag{Name: "broker-group", Aliases: []string{"g"}, Value: "broker-a", Usage: "broker group"}
	catchUp := []cli.Flag{
		&cli.Uint64Flag{Name: "max-lag", Value: 64, Usage: "promote once the node is at most this many log entries behind the leader (and has applied the history from before it joined)"},
		&cli.DurationFlag{Name: "wait", Value: 10 * time.Minute, Usage: "how long to wait for the node to catch up"},
	}
	return []*cli.Command{
		{
			Name:   "list",
			Usage:  "the broker group's voters and non-voters (its Raft configuration, from the leader)",
			Flags:  []cli.Flag{groupFlag},
			Action: nodeList,
		},
		{
			Name:  "add",
			Usage: "add a node started with 'rmq broker --join' as a non-voter, wait until it has caught up, and promote it to voter",
			Description: "ID is the new node's --id and RAFTADDR its Raft address (--raft-advertise, else --raft).\n" +
				"The node replicates the whole retained log (or a snapshot with it) before it is promoted;\n" +
				"with --no-promote it stays a non-voter ('rmq node promote' later). Progress goes to stderr.",
			ArgsUsage: "ID RAFTADDR",
			Flags:     append([]cli.Flag{groupFlag, &cli.BoolFlag{Name: "no-promote", Usage: "leave the node a non-voter"}}, catchUp...),
			Action:    nodeAdd,
		},
		{
			Name:      "promote",
			Usage:     "make a non-voter a voter once it has caught up",
			ArgsUsage: "ID",
			Flags:     append([]cli.Flag{groupFlag, &cli.BoolFlag{Name: "force", Usage: "do not wait for the node to catch up"}}, catchUp...),
			Action:    nodePromote,
		},
		{
			Name:      "remove",
			Usage:     "take a node out of the broker group (the leader hands over first if it is the one); then stop the node",
			ArgsUsage: "ID",
			Flags:     []cli.Flag{groupFlag},
			Action:    nodeRemove,
			Description: "The group stays writable. Removing a voter of a three-node group leaves two, which\n" +
				"tolerate no failure: add the replacement first, or use 'rmq node replace'.",
		},
		{
			Name:      "replace",
			Usage:     "add a new node (as for add), promote it once caught up, then remove the old one",
			ArgsUsage: "OLD NEW RAFTADDR",
			Flags:     append([]cli.Flag{groupFlag}, catchUp...),
			Action:    nodeReplace,
		},
	}
}

// memberRow is one server of a group's Raft configuration.
type memberRow struct {
	Node     string `json:"node"`
	RaftAddr string `json:"raft_addr"`
	Suffrage string `json:"suffrage"` // voter, nonvoter
	Leader   bool   `json:"leader"`
}

type membersView []memberRow

func (v membersView) table(w io.Writer) {
	row(w, "NODE", "SUFFRAGE", "LEADER", "RAFT ADDRESS")
	for _, m := range v {
		leader := ""
		if m.Leader {
			leader = "*"
		}
		row(w, m.Node, m.Suffrage, leader, m.RaftAddr)
	}
}

func newMembersView(ms []client.Member) membersView {
	v := membersView{}
	for _, m := range ms {
		s := "nonvoter"
		if m.Voter {
			s = "voter"
		}
		v = append(v, memberRow{Node: m.ID, RaftAddr: m.Addr, Suffrage: s, Leader: m.Leader})
	}
	return v
}

func nodeList(c *cli.Context) error {
	if _, err := wantArgs(c); err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		ms, err := a.Members(ctx, c.String("broker-group"))
		if err != nil {
			return err
		}
		return render(c, newMembersView(ms))
	})
}

func nodeAdd(c *cli.Context) error {
	args, err := wantArgs(c, "ID", "RAFTADDR")
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		ms, err := addAndPromote(c, a, args[0], args[1], !c.Bool("no-promote"))
		if err != nil {
			return err
		}
		return render(c, newMembersView(ms))
	})
}

// addAndPromote adds id as a non-voter and, if promote, waits for it to
// catch up and promotes it.
func addAndPromote(c *cli.Context, a *client.Admin, id, raftAddr string, promote bool) ([]client.Member, error) {
	group := c.String("broker-group")
	ctx, cancel := opContext(c)
	ms, err := a.AddNode(ctx, group, id, raftAddr)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("add %s to %s: %w", id, group, err)
	}
	fmt.Fprintf(c.App.ErrWriter, "added %s to %s as a non-voter\n", id, group)
	if !promote {
		return ms, nil
	}
	return waitAndPromote(c, a, id)
}

func waitAndPromote(c *cli.Context, a *client.Admin, id string) ([]client.Member, error) {
	group := c.String("broker-group")
	start := time.Now()
	wctx, cancel := context.WithTimeout(c.Context, c.Duration("wait"))
	st, err := a.WaitCaughtUp(wctx, group, id, c.Uint64("max-lag"))
	cancel()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.App.ErrWriter, "%s caught up in %s: applied %d, %d behind\n", id, time.Since(start).Round(time.Millisecond), st.AppliedIndex, st.Lag)
	ctx, cancel := opContext(c)
	defer cancel()
	ms, err := a.PromoteNode(ctx, group, id)
	if err != nil {
		return nil, fmt.Errorf("promote %s: %w", id, err)
	}
	fmt.Fprintf(c.App.ErrWriter, "promoted %s to voter\n", id)
	return ms, nil
}

func nodePromote(c *cli.Context) error {
	args, err := wantArgs(c, "ID")
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		var ms []client.Member
		if c.Bool("force") {
			ms, err = a.PromoteNode(ctx, c.String("broker-group"), args[0])
		} else {
			ms, err = waitAndPromote(c, a, args[0])
		}
		if err != nil {
			return err
		}
		return render(c, newMembersView(ms))
	})
}

func nodeRemove(c *cli.Context) error {
	args, err := wantArgs(c, "ID")
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		ms, err := a.RemoveNode(ctx, c.String("broker-group"), args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.ErrWriter, "removed %s; stop it now\n", args[0])
		return render(c, newMembersView(ms))
	})
}

func nodeReplace(c *cli.Context) error {
	args, err := wantArgs(c, "OLD", "NEW", "RAFTADDR")
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		if _, err := addAndPromote(c, a, args[1], args[2], true); err != nil {
			return err
		}
		rctx, cancel := opContext(c)
		defer cancel()
		ms, err := a.RemoveNode(rctx, c.String("broker-group"), args[0])
		if err != nil {
			return fmt.Errorf("remove %s (%s is a voter now): %w", args[0], args[1], err)
		}
		fmt.Fprintf(c.App.ErrWriter, "removed %s; stop it now\n", args[0])
		return render(c, newMembersView(ms))
	})
}
