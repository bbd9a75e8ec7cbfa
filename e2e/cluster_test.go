package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client/wire"
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
