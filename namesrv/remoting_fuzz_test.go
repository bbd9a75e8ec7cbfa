package namesrv

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

// FuzzRemoting registers an arbitrary broker (a fuzzed registration
// body, as FuzzHandle sends) and then serves an arbitrary RocketMQ
// remoting request (code, header fields key NUL value NUL ...). Every
// request gets a response; a successful one has a JSON body of the type
// RocketMQ clients expect, and a route never has a null or missing list
// or brokerAddrs (rocketmq-client-go panics on those).
func FuzzRemoting(f *testing.F) {
	reg := func(r *wire.RegisterBrokerRequest) []byte {
		b, err := msgpack.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	leader := reg(regReq(status("ga", "n0", "leader", 1), topic("t", 4)))
	follower := reg(regReq(status("ga", "n1", "follower", 1), topic("t", 4)))
	for _, s := range []struct {
		code int32
		ext  string
	}{
		{compat.ReqGetRouteInfoByTopic, "topic\x00t"},
		{compat.ReqGetRouteInfoByTopic, "topic\x00TBW102"},
		{compat.ReqGetRouteInfoByTopic, "topic\x00%RETRY%g"},
		{compat.ReqGetRouteInfoByTopic, "topic\x00"},
		{compat.ReqGetBrokerClusterInfo, ""},
		{compat.ReqGetAllTopicListFromNameServer, ""},
		{compat.ReqGetTopicsByCluster, "cluster\x00c1"},
		{compat.ReqGetKVConfig, "namespace\x00ORDER_TOPIC_CONFIG\x00key\x00t"},
		{compat.ReqRegisterBroker, ""},
		{999, ""},
	} {
		f.Add(leader, s.code, []byte(s.ext))
		f.Add(follower, s.code, []byte(s.ext))
	}
	cfg := DefaultConfig().withDefaults()
	clk := newFakeClock()
	cfg.Now = clk.Now
	s := &Server{cfg: cfg, log: hclog.NewNullLogger(), reg: newRegistry(hclog.NewNullLogger(), cfg.ExpiryFactor, cfg.MinExpiry, cfg.DownRetention)}
	f.Fuzz(func(t *testing.T, regBody []byte, code int32, ext []byte) {
		clk.Advance(time.Second)
		_, _ = s.handle(context.Background(), &wire.Request{Code: wire.CodeRegisterBroker, Body: regBody})
		fields := map[string]string{}
		parts := bytes.Split(ext, []byte{0})
		for i := 0; i+1 < len(parts); i += 2 {
			fields[string(parts[i])] = string(parts[i+1])
		}
		req := compat.NewRequest(code, fields, nil)
		resp := s.serveRemotingRequest(context.Background(), nil, req)
		if resp == nil || !resp.IsResponse() {
			t.Fatalf("code %d: no response (%+v)", code, resp)
		}
		if resp.Code != compat.RespSuccess {
			if resp.Remark == "" {
				t.Fatalf("code %d: refusal %d without a remark", code, resp.Code)
			}
			return
		}
		var v any
		switch code {
		case compat.ReqGetRouteInfoByTopic:
			var rd compat.TopicRouteData
			if err := compat.DecodeJSON(resp.Body, &rd); err != nil {
				t.Fatalf("route body %s: %v", resp.Body, err)
			}
			body := string(resp.Body)
			if !strings.Contains(body, `"queueDatas":[`) || !strings.Contains(body, `"brokerDatas":[`) ||
				strings.Count(body, `"brokerAddrs":{`) != len(rd.BrokerDatas) || len(rd.QueueDatas) != len(rd.BrokerDatas) {
				t.Fatalf("route body %s has a null or missing list", body)
			}
			return
		case compat.ReqGetBrokerClusterInfo:
			v = new(compat.ClusterInfo)
		case compat.ReqGetAllTopicListFromNameServer, compat.ReqGetTopicsByCluster:
			v = new(compat.TopicList)
		default:
			t.Fatalf("code %d answered with success", code)
		}
		if err := json.Unmarshal(resp.Body, v); err != nil {
			t.Fatalf("code %d: body %s: %v", code, resp.Body, err)
		}
	})
}
