package namesrv

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rmq-dev/rmq/wire"
)

func inCluster(cl string, st wire.NodeStatus) wire.NodeStatus {
	st.Cluster = cl
	return st
}

func routeIn(t *testing.T, c *wire.Conn, topic, cluster string, def bool) (wire.RouteInfo, error) {
	t.Helper()
	var ri wire.RouteInfo
	err := c.Call(callCtx(t), wire.CodeGetRoute, wire.RouteRequest{Topic: topic, Default: def, Cluster: cluster}, &ri)
	return ri, err
}

func routedGroups(ri wire.RouteInfo) []string {
	var gs []string
	for _, g := range ri.Groups {
		gs = append(gs, g.Cluster+"/"+g.Group)
	}
	return gs
}

// TestClusterNames: a NameServer shared by two clusters keeps them apart.
// A group belongs to the cluster its nodes registered with: a node of
// another cluster using the same group name is refused, not merged into
// the group (where its term would decide the other cluster's leader).
// Routes and cluster queries can be limited to one cluster, and the
// cluster query groups broker groups by cluster (RocketMQ's
// GET_BROKER_CLUSTER_INFO clusterAddrTable).
func TestClusterNames(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s)
	orders := topic("orders", 4)
	register(t, c, regReq(inCluster("east", status("ga", "n0", "leader", 1)), orders))
	register(t, c, regReq(inCluster("east", status("ga", "n1", "follower", 1)), orders))
	register(t, c, regReq(inCluster("west", status("gb", "n0", "leader", 5)), orders))

	// Same group name, other cluster, higher term: refused.
	err := c.Call(callCtx(t), wire.CodeRegisterBroker, regReq(inCluster("west", status("ga", "n9", "leader", 7)), orders), nil)
	wantCode(t, err, wire.CodeInvalidArgument)
	if !strings.Contains(err.Error(), `"east"`) || !strings.Contains(err.Error(), `"west"`) {
		t.Errorf("refusal %q does not name both clusters", err)
	}
	ri := mustRoute(t, c, "orders")
	if len(ri.Groups) != 2 || ri.Groups[0].Leader == nil || ri.Groups[0].Leader.NodeID != "n0" || ri.Groups[0].Term != 1 {
		t.Fatalf("route of ga after the foreign registration: got %+v, want leader n0 at term 1", ri.Groups)
	}
	if diff := cmp.Diff([]string{"east/ga", "west/gb"}, routedGroups(ri)); diff != "" {
		t.Errorf("route, every cluster (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		cluster string
		def     bool
		topic   string
		want    []string
	}{
		{"east", false, "orders", []string{"east/ga"}},
		{"west", false, "orders", []string{"west/gb"}},
		{"west", true, "fresh", []string{"west/gb"}},
		{"", true, "fresh", []string{"east/ga", "west/gb"}},
	} {
		ri, err := routeIn(t, c, tc.topic, tc.cluster, tc.def)
		if err != nil {
			t.Fatalf("route %s in %q: %v", tc.topic, tc.cluster, err)
		}
		if diff := cmp.Diff(tc.want, routedGroups(ri)); diff != "" {
			t.Errorf("route %s in %q (default %v) (-want +got):\n%s", tc.topic, tc.cluster, tc.def, diff)
		}
	}
	_, err = routeIn(t, c, "orders", "north", false)
	wantCode(t, err, wire.CodeTopicNotFound)

	var all, east wire.ClusterInfo
	if err := c.Call(callCtx(t), wire.CodeGetCluster, wire.ClusterRequest{}, &all); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(callCtx(t), wire.CodeGetCluster, wire.ClusterRequest{Cluster: "east"}, &east); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"east": {"ga"}, "west": {"gb"}}, all.Clusters); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ga/n0", "ga/n1", "gb/n0"}, nodeIDs(all)); diff != "" {
		t.Errorf("nodes, every cluster (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ga/n0", "ga/n1"}, nodeIDs(east)); diff != "" {
		t.Errorf("nodes of east (-want +got):\n%s", diff)
	}

	// A registration must name its cluster.
	err = c.Call(callCtx(t), wire.CodeRegisterBroker, regReq(inCluster("", status("gc", "n0", "leader", 1))), nil)
	wantCode(t, err, wire.CodeInvalidArgument)

	// A group whose only node re-registers with another cluster moves.
	register(t, c, regReq(inCluster("north", status("gb", "n0", "leader", 5)), orders))
	if ri, err := routeIn(t, c, "orders", "north", false); err != nil || len(ri.Groups) != 1 || ri.Groups[0].Group != "gb" {
		t.Errorf("route in north after gb moved: got %+v, %v; want gb", ri, err)
	}
}
