package namesrv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

func remotingCall(t *testing.T, s *Server, code int32, ext map[string]string) *compat.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := compat.Dial(ctx, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Call(ctx, compat.NewRequest(code, ext, nil))
	if err != nil {
		t.Fatalf("%s: %v", compat.RequestName(code), err)
	}
	return resp
}

// TestRemotingRoute: RocketMQ clients get a group's leader as brokerId 0
// and its followers as 1..n on the rmq port, and a leader change moves
// brokerId 0 as a master switch would.
func TestRemotingRoute(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s)
	topic := wire.TopicInfo{Name: "orders", Queues: 4, Perm: 6}
	register(t, c, regReq(status("g1", "n0", RoleLeader, 3), topic))
	register(t, c, regReq(status("g1", "n1", RoleFollower, 3), topic))
	register(t, c, regReq(status("g1", "n2", RoleFollower, 3), topic))

	resp := remotingCall(t, s, compat.ReqGetRouteInfoByTopic, map[string]string{"topic": "orders"})
	if resp.Code != compat.RespSuccess {
		t.Fatalf("route: %d %s", resp.Code, resp.Remark)
	}
	var rd compat.TopicRouteData
	if err := compat.DecodeJSON(resp.Body, &rd); err != nil {
		t.Fatal(err)
	}
	if len(rd.QueueDatas) != 1 || rd.QueueDatas[0].BrokerName != "g1" || rd.QueueDatas[0].WriteQueueNums != 4 ||
		rd.QueueDatas[0].ReadQueueNums != 4 || rd.QueueDatas[0].Perm != 6 {
		t.Fatalf("queue data %+v", rd.QueueDatas)
	}
	addrs := rd.BrokerDatas[0].BrokerAddrs
	if len(addrs) != 3 || addrs[0] != status("g1", "n0", "", 0).Addr || addrs[1] != status("g1", "n1", "", 0).Addr {
		t.Fatalf("broker addrs %v", addrs)
	}

	// n1 wins a new term: it is brokerId 0 now.
	register(t, c, regReq(status("g1", "n1", RoleLeader, 4), topic))
	register(t, c, regReq(status("g1", "n0", RoleFollower, 4), topic))
	resp = remotingCall(t, s, compat.ReqGetRouteInfoByTopic, map[string]string{"topic": "orders"})
	rd = compat.TopicRouteData{}
	if err := compat.DecodeJSON(resp.Body, &rd); err != nil {
		t.Fatal(err)
	}
	if got := rd.BrokerDatas[0].BrokerAddrs[0]; got != status("g1", "n1", "", 0).Addr {
		t.Fatalf("brokerId 0 after failover: %s, want n1's address", got)
	}

	// A missing topic is TOPIC_NOT_EXIST; TBW102 lists writable groups for
	// auto-creation.
	resp = remotingCall(t, s, compat.ReqGetRouteInfoByTopic, map[string]string{"topic": "nope"})
	if resp.Code != compat.RespTopicNotExist || !strings.Contains(resp.Remark, "nope") {
		t.Fatalf("missing topic: %d %q", resp.Code, resp.Remark)
	}
	resp = remotingCall(t, s, compat.ReqGetRouteInfoByTopic, map[string]string{"topic": "TBW102"})
	rd = compat.TopicRouteData{}
	if err := compat.DecodeJSON(resp.Body, &rd); err != nil || resp.Code != compat.RespSuccess {
		t.Fatalf("TBW102: %d %v", resp.Code, err)
	}
	if len(rd.QueueDatas) != 1 || rd.QueueDatas[0].WriteQueueNums != defaultTopicQueues || rd.QueueDatas[0].Perm&compat.PermWrite == 0 {
		t.Fatalf("TBW102 route %+v", rd.QueueDatas)
	}
	// A group's retry topic before its first heartbeat created it: one
	// queue on every group with a leader.
	resp = remotingCall(t, s, compat.ReqGetRouteInfoByTopic, map[string]string{"topic": "%RETRY%billing"})
	rd = compat.TopicRouteData{}
	if err := compat.DecodeJSON(resp.Body, &rd); err != nil || resp.Code != compat.RespSuccess {
		t.Fatalf("retry topic route: %d %v", resp.Code, err)
	}
	if len(rd.QueueDatas) != 1 || rd.QueueDatas[0].ReadQueueNums != 1 {
		t.Fatalf("retry topic route %+v, want one queue", rd.QueueDatas)
	}
}

// TestRemotingClusterAndTopics: cluster info and topic lists.
func TestRemotingClusterAndTopics(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s)
	register(t, c, regReq(status("g1", "n0", RoleLeader, 1), wire.TopicInfo{Name: "a", Queues: 1, Perm: 6},
		wire.TopicInfo{Name: "b", Queues: 1, Perm: 6}))
	resp := remotingCall(t, s, compat.ReqGetBrokerClusterInfo, nil)
	var ci compat.ClusterInfo
	if err := compat.DecodeJSON(resp.Body, &ci); err != nil || resp.Code != compat.RespSuccess {
		t.Fatalf("cluster info: %d %v", resp.Code, err)
	}
	if bd, ok := ci.BrokerAddrTable["g1"]; !ok || bd.BrokerAddrs[0] == "" {
		t.Fatalf("cluster info %+v", ci)
	}
	resp = remotingCall(t, s, compat.ReqGetAllTopicListFromNameServer, nil)
	var tl compat.TopicList
	if err := compat.DecodeJSON(resp.Body, &tl); err != nil || strings.Join(tl.TopicList, ",") != "a,b" {
		t.Fatalf("topic list %+v %v", tl, err)
	}
	if resp := remotingCall(t, s, compat.ReqRegisterBroker, nil); resp.Code != compat.RespRequestCodeNotSupported {
		t.Fatalf("REGISTER_BROKER from a RocketMQ broker: %d", resp.Code)
	}
	if resp := remotingCall(t, s, 4242, nil); resp.Code != compat.RespRequestCodeNotSupported || !strings.Contains(resp.Remark, "4242") {
		t.Fatalf("unknown code: %d %q", resp.Code, resp.Remark)
	}
	// rmq's own protocol still works on the same port.
	if ci := cluster(t, c); len(ci.Nodes) != 1 {
		t.Fatalf("rmq cluster query: %+v", ci)
	}
}
