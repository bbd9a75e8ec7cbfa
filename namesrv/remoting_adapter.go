package namesrv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/internal/metrics"
	"github.com/rmq-dev/rmq/wire"
)

// This file is the NameServer's RocketMQ remoting adapter: RocketMQ
// clients ask it for routes on the same port as rmq's own protocol
// (compat.Mux tells them apart). A broker group is a RocketMQ broker
// (brokerName = the group name) whose current Raft leader is brokerId 0
// and whose other live nodes are 1..n, in node-ID order: clients write to
// the leader, read from it and fall back to followers, and a failover
// changes brokerId 0's address as a master switch would. RocketMQ brokers
// cannot register here: rmq's brokers register over rmq's protocol.

// defaultTopic is RocketMQ's auto-create template topic: a client that
// finds no route for its topic asks for this one and sends with it as the
// default topic, and the broker creates the topic on the first send.
const defaultTopic = "TBW102"

// defaultTopicQueues is the queue count advertised for defaultTopic
// (RocketMQ's defaultTopicQueueNums).
const defaultTopicQueues = 8

// serveRemoting serves RocketMQ remoting on ln until ctx ends.
func (s *Server) serveRemoting(ctx context.Context, ln net.Listener) error {
	return compat.Serve(ctx, ln, s.handleRemoting, compat.ServerConfig{
		MaxFrame: s.cfg.MaxFrame,
		Logf:     s.log.Named("remoting").Warn,
	})
}

func (s *Server) handleRemoting(ctx context.Context, c *compat.ServerConn, req *compat.Command) *compat.Command {
	start := s.metrics.start()
	resp := s.serveRemotingRequest(ctx, c, req)
	s.metrics.served(metrics.ProtocolRemoting, req.Code, resp.Code, start)
	return resp
}

func (s *Server) serveRemotingRequest(_ context.Context, _ *compat.ServerConn, req *compat.Command) *compat.Command {
	var (
		body any
		err  *remotingErr
	)
	switch req.Code {
	case compat.ReqGetRouteInfoByTopic:
		body, err = s.remotingRoute(req)
	case compat.ReqGetBrokerClusterInfo:
		body = s.remotingClusterInfo()
	case compat.ReqGetAllTopicListFromNameServer:
		body = compat.TopicList{TopicList: s.reg.topicNames("", s.cfg.Now())}
	case compat.ReqGetTopicsByCluster:
		cluster, e := req.ExtString("cluster")
		if e != nil {
			err = &remotingErr{compat.RespInvalidParameter, "GET_TOPICS_BY_CLUSTER: " + e.Error()}
			break
		}
		body = compat.TopicList{TopicList: s.reg.topicNames(cluster, s.cfg.Now())}
	case compat.ReqGetKVConfig:
		// rmq keeps no KV config (RocketMQ's ORDER_TOPIC_CONFIG and the
		// like): the answer RocketMQ gives for an unset key.
		err = &remotingErr{compat.RespQueryNotFound, fmt.Sprintf("no config item, Namespace: %s Key: %s", req.Ext["namespace"], req.Ext["key"])}
	case compat.ReqRegisterBroker, compat.ReqUnregisterBroker:
		err = &remotingErr{compat.RespRequestCodeNotSupported,
			"this is an rmq NameServer: RocketMQ brokers cannot register with it (rmq brokers register over rmq's protocol)"}
	default:
		err = &remotingErr{compat.RespRequestCodeNotSupported,
			fmt.Sprintf("request code %d (%s) is not supported by the rmq NameServer", req.Code, compat.RequestName(req.Code))}
	}
	if err != nil {
		return compat.NewResponse(req, err.code, err.remark)
	}
	resp := compat.NewResponse(req, compat.RespSuccess, "")
	b, merr := json.Marshal(body)
	if merr != nil {
		return compat.NewResponse(req, compat.RespSystemError, "encode response: "+merr.Error())
	}
	resp.Body = b
	return resp
}

type remotingErr struct {
	code   int32
	remark string
}

// remotingRoute answers GET_ROUTEINFO_BY_TOPIC.
func (s *Server) remotingRoute(req *compat.Command) (any, *remotingErr) {
	topic, err := req.ExtString("topic")
	if err != nil || topic == "" {
		return nil, &remotingErr{compat.RespInvalidParameter, "GET_ROUTEINFO_BY_TOPIC: header field \"topic\" is required"}
	}
	// A consumer group's retry topic is created by its first heartbeat,
	// which RocketMQ clients send only after their first route lookup;
	// answering it as the default route (one queue) spares them the 30 s
	// until their next lookup: their pulls find the topic moments later.
	retry := strings.HasPrefix(topic, "%RETRY%")
	info, rerr := s.reg.route(&wire.RouteRequest{Topic: topic, Default: topic == defaultTopic || retry}, s.cfg.Now())
	if rerr != nil {
		return nil, &remotingErr{compat.RespTopicNotExist, "No topic route info in name server for the topic: " + topic}
	}
	out := compat.TopicRouteData{QueueDatas: []compat.QueueData{}, BrokerDatas: []compat.BrokerData{}}
	for _, g := range info.Groups {
		queues := int(g.Queues)
		switch {
		case queues == 0 && retry:
			queues = 1 // RocketMQ's retryQueueNums
		case queues == 0: // the default route: a group that would auto-create the topic
			queues = defaultTopicQueues
		}
		perm := int(g.Perm)
		if topic == defaultTopic {
			perm |= compat.PermInherit
		}
		out.QueueDatas = append(out.QueueDatas, compat.QueueData{
			BrokerName: g.Group, ReadQueueNums: queues, WriteQueueNums: queues, Perm: perm,
		})
		out.BrokerDatas = append(out.BrokerDatas, brokerData(g))
	}
	return out, nil
}

// brokerData is a group as a RocketMQ broker: leader 0, followers 1..n.
func brokerData(g wire.GroupRoute) compat.BrokerData {
	bd := compat.BrokerData{Cluster: g.Cluster, BrokerName: g.Group, BrokerAddrs: map[int64]string{}}
	if g.Leader != nil {
		bd.BrokerAddrs[0] = g.Leader.Addr
	}
	for i, f := range g.Followers {
		bd.BrokerAddrs[int64(i+1)] = f.Addr
	}
	return bd
}

// remotingClusterInfo answers GET_BROKER_CLUSTER_INFO.
func (s *Server) remotingClusterInfo() compat.ClusterInfo {
	ci := compat.ClusterInfo{BrokerAddrTable: map[string]compat.BrokerData{}, ClusterAddrTable: map[string][]string{}}
	for _, g := range s.reg.groupRoutes("", s.cfg.Now()) {
		ci.BrokerAddrTable[g.Group] = brokerData(g)
		ci.ClusterAddrTable[g.Cluster] = append(ci.ClusterAddrTable[g.Cluster], g.Group)
	}
	return ci
}
