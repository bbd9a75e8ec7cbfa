package broker

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

// remotingRequester is a remoting client that answers every
// PUSH_REPLY_MESSAGE_TO_CLIENT with SUCCESS and collects it.
func remotingRequester(t *testing.T, n *Node) (*compat.Client, chan *compat.Command) {
	t.Helper()
	c, err := compat.Dial(t.Context(), n.ClientAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got := make(chan *compat.Command, 8)
	c.OnRequest(func(req *compat.Command) *compat.Command {
		if req.Code != compat.ReqPushReplyMessageToClient {
			return compat.NewResponse(req, compat.RespRequestCodeNotSupported, "")
		}
		got <- req
		return compat.NewResponse(req, compat.RespSuccess, "")
	})
	return c, got
}

func nextPush(t *testing.T, got chan *compat.Command) *compat.Command {
	t.Helper()
	select {
	case p := <-got:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no PUSH_REPLY_MESSAGE_TO_CLIENT")
		return nil
	}
}

// sendReplyV1 sends SEND_REPLY_MESSAGE as rocketmq-client-go does: the
// V1 send header of a message to the reply topic.
func sendReplyV1(t *testing.T, c *compat.Client, props map[string]string, body []byte, sysFlag int) *compat.Command {
	t.Helper()
	return call(t, c, compat.ReqSendReplyMessage, map[string]string{
		"producerGroup": "responders", "topic": "rmq_REPLY_TOPIC", "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": "3", "sysFlag": strconv.Itoa(sysFlag), "bornTimestamp": "1700000000000", "flag": "0",
		"properties": compat.EncodeProperties(props), "reconsumeTimes": "0",
	}, body)
}

func replyProps(corr, to string) map[string]string {
	return map[string]string{compat.PropCorrelationID: corr, compat.PropReplyTo: to, compat.PropMessageTTL: "3",
		compat.PropMessageType: "reply", compat.PropUniqKey: "0A0B0C0D00002A9F0000000000000001"}
}

// TestRemotingRequestReply: a RocketMQ requester's request (an ordinary
// send naming it in REPLY_TO_CLIENT) is stored with its properties and
// CLUSTER, and makes its connection the requester's; a responder's
// SEND_REPLY_MESSAGE (V1) and _V2 are pushed to it as
// PUSH_REPLY_MESSAGE_TO_CLIENT with RocketMQ's header and answered
// SUCCESS with msgId "0"; a reply to nobody known is SYSTEM_ERROR.
func TestRemotingRequestReply(t *testing.T) {
	n, responder := remotingNode(t)
	requester, got := remotingRequester(t, n)
	wantCode(t, call(t, requester, compat.ReqSendMessage, map[string]string{
		"producerGroup": "pg", "topic": "rpc", "defaultTopic": "TBW102", "defaultTopicQueueNums": "1", "queueId": "0",
		"sysFlag": "0", "bornTimestamp": "1700000000000", "flag": "0", "reconsumeTimes": "0",
		"properties": compat.EncodeProperties(map[string]string{compat.PropCorrelationID: "c1", compat.PropReplyTo: "go-req@1",
			compat.PropMessageTTL: "3", "biz": "x"}),
	}, []byte("question")), compat.RespSuccess)
	_, msgs := pull(t, responder, "g", "rpc", 0, 0, 0)
	if len(msgs) != 1 {
		t.Fatalf("pulled %d requests", len(msgs))
	}
	if p := msgs[0].Properties; p[compat.PropCluster] != "rmq" || p[compat.PropCorrelationID] != "c1" ||
		p[compat.PropReplyTo] != "go-req@1" || p[compat.PropMessageTTL] != "3" || p["biz"] != "x" {
		t.Fatalf("request properties as pulled: %v", p)
	}

	resp := sendReplyV1(t, responder, replyProps("c1", "go-req@1"), []byte("answer"), 0)
	wantCode(t, resp, compat.RespSuccess)
	if resp.Ext["msgId"] != "0" || resp.Ext["queueOffset"] != "0" || resp.Ext["queueId"] != "3" {
		t.Fatalf("reply answered %v, want msgId 0, queueOffset 0, queueId 3", resp.Ext)
	}
	push := nextPush(t, got)
	h := push.Ext
	props := compat.DecodeProperties(h["properties"])
	if string(push.Body) != "answer" || h["topic"] != "rmq_REPLY_TOPIC" || h["queueId"] != "3" || h["sysFlag"] != "0" ||
		h["bornTimestamp"] != "1700000000000" || h["producerGroup"] != "responders" || h["storeHost"] != n.storeHost().String() ||
		h["bornHost"] == "" || h["storeTimestamp"] == "" {
		t.Fatalf("push header %v body %q", h, push.Body)
	}
	if props[compat.PropCorrelationID] != "c1" || props[compat.PropPushReplyTime] == "" || props[compat.PropMessageType] != "reply" ||
		props[compat.PropUniqKey] == "" {
		t.Fatalf("push properties %v", props)
	}

	v2 := call(t, responder, compat.ReqSendReplyMessageV2, map[string]string{
		"a": "responders", "b": "rmq_REPLY_TOPIC", "e": "1", "f": "0", "g": "1700000000001", "h": "0",
		"i": compat.EncodeProperties(replyProps("c2", "go-req@1")), "j": "0",
	}, []byte("answer 2"))
	wantCode(t, v2, compat.RespSuccess)
	if push := nextPush(t, got); string(push.Body) != "answer 2" || push.Ext["bornTimestamp"] != "1700000000001" {
		t.Fatalf("V2 push %v %q", push.Ext, push.Body)
	}

	nobody := sendReplyV1(t, responder, replyProps("c3", "nobody"), []byte("x"), 0)
	if nobody.Code != compat.RespSystemError || !strings.Contains(nobody.Remark, "nobody") {
		t.Fatalf("reply to an unknown requester: %s %q, want SYSTEM_ERROR naming it", compat.ResponseName(nobody.Code), nobody.Remark)
	}
}

// TestRemotingReplyByHeartbeat: a client known only from its producer
// heartbeat gets replies; compressed reply bodies are pushed inflated,
// and a body marked compressed that is not (rocketmq-client-go v2.1.2
// does that to replies over 4 KiB) is pushed as sent.
func TestRemotingReplyByHeartbeat(t *testing.T) {
	n, responder := remotingNode(t)
	requester, got := remotingRequester(t, n)
	hb, err := json.Marshal(compat.HeartbeatData{ClientID: "hb-req", ProducerDataSet: []compat.ProducerData{{GroupName: "pg"}}})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, call(t, requester, compat.ReqHeartBeat, nil, hb), compat.RespSuccess)

	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	big := bytes.Repeat([]byte("r"), 5000)
	if _, err := zw.Write(big); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	wantCode(t, sendReplyV1(t, responder, replyProps("c1", "hb-req"), z.Bytes(), int(compat.SysFlagCompressed)), compat.RespSuccess)
	if push := nextPush(t, got); !bytes.Equal(push.Body, big) || push.Ext["sysFlag"] != "0" {
		t.Fatalf("compressed reply pushed as %d bytes, sysFlag %s", len(push.Body), push.Ext["sysFlag"])
	}
	wantCode(t, sendReplyV1(t, responder, replyProps("c2", "hb-req"), big, int(compat.SysFlagCompressed)), compat.RespSuccess)
	if push := nextPush(t, got); !bytes.Equal(push.Body, big) {
		t.Fatalf("falsely compressed reply pushed as %d bytes", len(push.Body))
	}

	requester.Close()
	eventually(t, 10*time.Second, func() error {
		if r := sendReplyV1(t, responder, replyProps("c3", "hb-req"), []byte("x"), 0); r.Code == compat.RespSuccess {
			return errors.New("a reply to a closed requester is still pushed")
		}
		return nil
	})
}

// TestReplyCrossProtocol: an rmq requester answered by a RocketMQ
// responder (SEND_REPLY_MESSAGE) and a RocketMQ requester answered by
// an rmq responder (CodeSendReply).
func TestReplyCrossProtocol(t *testing.T) {
	n, rocketResponder := remotingNode(t)
	_, rmqGot := rmqRequester(t, n, "rmq-req")
	wantCode(t, sendReplyV1(t, rocketResponder, replyProps("c1", "rmq-req"), []byte("from rocketmq"), 0), compat.RespSuccess)
	pr := rmqGot.next(t)
	if string(pr.Message.Body) != "from rocketmq" || pr.Message.Properties[compat.PropCorrelationID] != "c1" || pr.Message.Topic != "rmq_REPLY_TOPIC" {
		t.Fatalf("rmq requester got %+v", pr.Message)
	}

	requester, got := remotingRequester(t, n)
	wantCode(t, sendV1(t, requester, "rpc", 0, map[string]string{compat.PropCorrelationID: "c2", compat.PropReplyTo: "go-req"},
		[]byte("q"), 0), compat.RespSuccess)
	rmqResponder, err := wire.Dial(t.Context(), n.ClientAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rmqResponder.Close()
	if err := rmqResponder.Call(t.Context(), wire.CodeSendReply, wire.ReplyRequest{Message: wire.Message{Tags: "tg", Body: []byte("from rmq"),
		Properties: map[string]string{compat.PropCorrelationID: "c2", compat.PropReplyTo: "go-req"}}}, nil); err != nil {
		t.Fatal(err)
	}
	push := nextPush(t, got)
	props := compat.DecodeProperties(push.Ext["properties"])
	if string(push.Body) != "from rmq" || props[compat.PropCorrelationID] != "c2" || props[compat.PropTags] != "tg" ||
		push.Ext["topic"] != "rmq_REPLY_TOPIC" {
		t.Fatalf("RocketMQ requester got %v %q", push.Ext, push.Body)
	}
}
