package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// TestClusterRoutesToNewLeader: the NameServer routes to the leader, and
// after the leader is killed it routes to the new one.
func TestClusterRoutesToNewLeader(t *testing.T) {
	c := StartCluster(t, Options{})
	ctx := context.Background()
	leader := c.Leader(10 * time.Second)
	if _, err := leader.CreateTopic(ctx, brokerTopic("routed")); err != nil {
		t.Fatal(err)
	}
	conn, err := wire.Dial(ctx, c.NamesrvAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	routeLeader := func() (string, error) {
		var ri wire.RouteInfo
		if err := conn.Call(ctx, wire.CodeGetRoute, &wire.RouteRequest{Topic: "routed"}, &ri); err != nil {
			return "", err
		}
		if len(ri.Groups) != 1 || ri.Groups[0].Leader == nil {
			return "", errorf("route %+v has no leader", ri)
		}
		return ri.Groups[0].Leader.NodeID, nil
	}
	old := c.LeaderID(time.Second)
	Eventually(t, 10*time.Second, func() error {
		id, err := routeLeader()
		if err == nil && id != old {
			err = errorf("route leader %s, want %s", id, old)
		}
		return err
	})
	c.Kill(old)
	start := time.Now()
	newID := c.LeaderID(10 * time.Second)
	Eventually(t, 10*time.Second, func() error {
		id, err := routeLeader()
		if err == nil && id != newID {
			err = errorf("route leader %s, want %s", id, newID)
		}
		return err
	})
	t.Logf("NameServer routes to new leader %s %s after the kill", newID, time.Since(start))
}

// TestFollowerAnswersNotLeaderForUnknownTopic: a follower must redirect a
// send even for a topic it has not heard of, never answer "not found".
func TestFollowerAnswersNotLeaderForUnknownTopic(t *testing.T) {
	c := StartCluster(t, Options{})
	leader := c.LeaderID(10 * time.Second)
	var follower string
	for _, id := range c.NodeIDs() {
		if id != leader {
			follower = id
		}
	}
	ctx := context.Background()
	conn, err := wire.Dial(ctx, c.ClientAddr(follower), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var we *wire.Error
	Eventually(t, 10*time.Second, func() error {
		err := conn.Call(ctx, wire.CodeSend, &wire.SendRequest{Messages: []wire.Message{{Topic: "never-created", Body: []byte("x")}}}, nil)
		if !errors.As(err, &we) || we.Code != wire.CodeNotLeader {
			return errorf("got %v, want CodeNotLeader", err)
		}
		if we.Leader != c.ClientAddr(leader) {
			return errorf("leader hint %q, want %q", we.Leader, c.ClientAddr(leader))
		}
		return nil
	})
}
