package main

import (
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// rmq dev with several broker groups and NameServers (--groups,
// --namesrvs). Group g (0 for broker-a) node i serves clients on
// broker-port+100*g+10*i and Raft one port above; NameServer j listens on
// namesrv-port+j. broker-a keeps its data in DIR/n<i> as with one group,
// the others in DIR/<group>/n<i>.

// devGroupFlags are rmq dev's flags for the cluster's shape.
func devGroupFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "groups", Value: 1, Usage: "broker groups of three nodes (broker-a, broker-b, ...); group g uses --broker-port+100*g"},
		&cli.IntFlag{Name: "namesrvs", Usage: "NameServers on --namesrv-port, +1, ... (default 1, or 2 with --groups 2 or more)"},
	}
}

// devNode is one broker of rmq dev's cluster.
type devNode struct {
	group, id, dir string
	client, raft   int // ports
	peers          []string
}

// devLayout places groups of three nodes.
func devLayout(dir string, base, groups int) ([]devNode, error) {
	if groups < 1 || groups > 26 {
		return nil, fmt.Errorf("--groups %d: want 1 to 26", groups)
	}
	var out []devNode
	for g := 0; g < groups; g++ {
		group := fmt.Sprintf("broker-%c", 'a'+g)
		gdir := dir
		if g > 0 {
			gdir = filepath.Join(dir, group)
		}
		var peers []string
		first := len(out)
		for i := 0; i < 3; i++ {
			port := base + 100*g + 10*i
			n := devNode{group: group, id: fmt.Sprintf("n%d", i), dir: filepath.Join(gdir, fmt.Sprintf("n%d", i)), client: port, raft: port + 1}
			peers = append(peers, fmt.Sprintf("%s=127.0.0.1:%d", n.id, n.raft))
			out = append(out, n)
		}
		for i := first; i < len(out); i++ {
			out[i].peers = peers
		}
	}
	return out, nil
}

// devNamesrvs is the number of NameServers to run.
func devNamesrvs(c *cli.Context) (int, error) {
	n := c.Int("namesrvs")
	if !c.IsSet("namesrvs") {
		n = 1
		if c.Int("groups") > 1 {
			n = 2
		}
	}
	if n < 1 || n > 9 {
		return 0, fmt.Errorf("--namesrvs %d: want 1 to 9", n)
	}
	return n, nil
}
