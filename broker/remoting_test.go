package broker

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

// remotingNode runs one serving node and returns it with a remoting
// client connected to its client port.
func remotingNode(t *testing.T) (*Node, *compat.Client) {
	t.Helper()
	return remotingNodeWith(t, nil)
}

// remotingNodeWith is remotingNode with a config change.
func remotingNodeWith(t *testing.T, mutate func(*Config)) (*Node, *compat.Client) {
	t.Helper()
	cfg := singleNodeConfig(t)
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	go n.Run(t.Context()) //nolint:errcheck // ends with the node
	eventually(t, 10*time.Second, func() error {
		if !n.Status().Serving {
			return errors.New("not serving yet")
		}
		return nil
	})
	c, err := compat.Dial(t.Context(), n.ClientAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return n, c
}

func call(t *testing.T, c *compat.Client, code int32, ext map[string]string, body []byte) *compat.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.Call(ctx, compat.NewRequest(code, ext, body))
	if err != nil {
		t.Fatalf("%s: %v", compat.RequestName(code), err)
	}
	return resp
}

func wantCode(t *testing.T, resp *compat.Command, code int32) {
	t.Helper()
	if resp.Code != code {
		t.Fatalf("response %s (%d) %q, want %s", compat.ResponseName(resp.Code), resp.Code, resp.Remark, compat.ResponseName(code))
	}
}

func sendV1(t *testing.T, c *compat.Client, topic string, queue int, props map[string]string, body []byte, sysFlag int) *compat.Command {
	t.Helper()
	return call(t, c, compat.ReqSendMessage, map[string]string{
		"producerGroup": "pg", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": strconv.Itoa(queue), "sysFlag": strconv.Itoa(sysFlag), "bornTimestamp": "1700000000000",
		"flag": "7", "properties": compat.EncodeProperties(props), "reconsumeTimes": "0",
	}, body)
}

func pull(t *testing.T, c *compat.Client, group, topic string, queue int, offset uint64, wait time.Duration) (*compat.Command, []*compat.MessageExt) {
	t.Helper()
	ext := map[string]string{"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queue),
		"queueOffset": strconv.FormatUint(offset, 10), "maxMsgNums": "32", "sysFlag": "0", "commitOffset": "0",
		"suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0"}
	if wait > 0 {
		ext["sysFlag"] = strconv.Itoa(int(compat.PullFlagSuspend))
		ext["suspendTimeoutMillis"] = strconv.FormatInt(wait.Milliseconds(), 10)
	}
	resp := call(t, c, compat.ReqPullMessage, ext, nil)
	var msgs []*compat.MessageExt
	for b := resp.Body; len(b) > 0; {
		m, used, err := compat.DecodeMessageExt(b)
		if err != nil {
			t.Fatalf("decode pulled message: %v", err)
		}
		msgs = append(msgs, m)
		b = b[used:]
	}
	return resp, msgs
}

// TestRemotingSendPull: a RocketMQ V1 send auto-creates the topic and is
// pulled back as RocketMQ's stored-message record with every field, and
// its offset message id names the record's CommitLog position.
func TestRemotingSendPull(t *testing.T) {
	n, c := remotingNode(t)
	uniq := "0A0B0C0D000000000000000000000001"
	resp := sendV1(t, c, "orders", 1, map[string]string{
		compat.PropTags: "paid", compat.PropKeys: "k1 k2", compat.PropUniqKey: uniq, "color": "blue",
		compat.PropWaitStoreMsgOK: "true",
	}, []byte("hello"), 0)
	wantCode(t, resp, compat.RespSuccess)
	if resp.Ext["queueId"] != "1" || resp.Ext["queueOffset"] != "0" {
		t.Fatalf("send response ext %v, want queueId 1 queueOffset 0", resp.Ext)
	}
	top, ok := n.Topic("orders")
	if !ok || top.Queues != 4 {
		t.Fatalf("auto-created topic: %+v %v, want 4 queues", top, ok)
	}
	host, phys, err := compat.ParseOffsetMsgID(resp.Ext["msgId"])
	if err != nil {
		t.Fatal(err)
	}
	units, err := n.fsm.Units("orders", 1, 0, 1, nil)
	if err != nil || len(units) != 1 {
		t.Fatal(units, err)
	}
	if want := physicalOffset(units[0].Index, units[0].Pos); phys != want || host.String() != n.ClientAddr() {
		t.Fatalf("msgId %s decodes to %s/%d; want %s/%d", resp.Ext["msgId"], host, phys, n.ClientAddr(), want)
	}

	// The same message through rmq's own API.
	res, err := n.Read(t.Context(), ReadRequest{Topic: "orders", QueueID: 1})
	if err != nil || len(res.Messages) != 1 {
		t.Fatalf("read: %v %d", err, len(res.Messages))
	}
	sm := res.Messages[0]
	if sm.Tags != "paid" || sm.Keys != "k1 k2" || fmt.Sprintf("%X", sm.ID) != uniq || sm.Properties["color"] != "blue" ||
		sm.Properties[compat.PropUniqKey] != "" || sm.Flag != 7 || sm.BornTimestamp != 1700000000000 {
		t.Fatalf("stored as %+v", sm)
	}

	presp, msgs := pull(t, c, "g1", "orders", 1, 0, 0)
	wantCode(t, presp, compat.RespSuccess)
	if len(msgs) != 1 {
		t.Fatalf("pulled %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Topic != "orders" || m.QueueID != 1 || m.QueueOffset != 0 || m.Flag != 7 || string(m.Body) != "hello" ||
		m.PhysicalOffset != phys || m.BornTimestamp != 1700000000000 || m.StoreTimestamp != sm.StoreTime ||
		m.StoreHost.String() != n.ClientAddr() {
		t.Fatalf("pulled %+v", m)
	}
	want := map[string]string{compat.PropTags: "paid", compat.PropKeys: "k1 k2", compat.PropUniqKey: uniq, "color": "blue"}
	for k, v := range want {
		if m.Properties[k] != v {
			t.Fatalf("pulled properties %v, want %v", m.Properties, want)
		}
	}
	if presp.Ext["nextBeginOffset"] != "1" || presp.Ext["minOffset"] != "0" || presp.Ext["maxOffset"] != "1" {
		t.Fatalf("pull ext %v", presp.Ext)
	}

	// rocketmq-client-go's ids are partly lower case: stored as the ID and
	// handed back exactly as sent.
	goID := "C00002021E470000000002707f180001"
	wantCode(t, sendV1(t, c, "orders", 3, map[string]string{compat.PropUniqKey: goID}, []byte("go"), 0), compat.RespSuccess)
	if res, err := n.Read(t.Context(), ReadRequest{Topic: "orders", QueueID: 3}); err != nil || len(res.Messages) != 1 ||
		!strings.EqualFold(fmt.Sprintf("%X", res.Messages[0].ID), goID) {
		t.Fatalf("read of the Go client's message: %v %+v", err, res.Messages)
	}
	if _, msgs := pull(t, c, "g1", "orders", 3, 0, 0); len(msgs) != 1 || msgs[0].Properties[compat.PropUniqKey] != goID {
		t.Fatalf("pulled the Go client's message as %+v", msgs)
	}

	// At the end: PULL_NOT_FOUND after the long poll; past it: moved.
	presp, _ = pull(t, c, "g1", "orders", 1, 1, 50*time.Millisecond)
	wantCode(t, presp, compat.RespPullNotFound)
	presp, _ = pull(t, c, "g1", "orders", 1, 9, 0)
	wantCode(t, presp, compat.RespPullOffsetMoved)
	if presp.Ext["nextBeginOffset"] != "1" {
		t.Fatalf("offset moved to %q, want 1", presp.Ext["nextBeginOffset"])
	}
}

// TestRemotingLongPollWakes: a suspended pull returns as soon as a
// message is stored.
func TestRemotingLongPollWakes(t *testing.T) {
	_, c := remotingNode(t)
	wantCode(t, sendV1(t, c, "lp", 0, nil, []byte("a"), 0), compat.RespSuccess)
	got := make(chan []*compat.MessageExt, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := c.Call(ctx, compat.NewRequest(compat.ReqPullMessage, map[string]string{
			"consumerGroup": "g", "topic": "lp", "queueId": "0", "queueOffset": "1", "maxMsgNums": "32",
			"sysFlag": strconv.Itoa(int(compat.PullFlagSuspend)), "suspendTimeoutMillis": "20000",
		}, nil))
		if err != nil || resp.Code != compat.RespSuccess {
			got <- nil
			return
		}
		m, _, _ := compat.DecodeMessageExt(resp.Body)
		got <- []*compat.MessageExt{m}
	}()
	wantCode(t, sendV1(t, c, "lp", 0, nil, []byte("b"), 0), compat.RespSuccess)
	select {
	case ms := <-got:
		if len(ms) != 1 || ms[0] == nil || string(ms[0].Body) != "b" {
			t.Fatalf("long poll returned %v", ms)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the long poll did not return after a message arrived")
	}
}

// TestRemotingBatchAndCompression: SEND_BATCH_MESSAGE stores the batch in
// order with consecutive offsets; a zlib-compressed body is stored plain.
func TestRemotingBatchAndCompression(t *testing.T) {
	_, c := remotingNode(t)
	var body []byte
	for i := range 3 {
		body = compat.AppendBatchEntry(body, compat.BatchEntry{Body: []byte(fmt.Sprintf("m%d", i)),
			Properties: map[string]string{compat.PropTags: "t", compat.PropUniqKey: fmt.Sprintf("%032X", i)}})
	}
	resp := call(t, c, compat.ReqSendBatchMessage, map[string]string{
		"a": "pg", "b": "batch", "c": "TBW102", "d": "4", "e": "2", "f": "0", "g": "1", "h": "0", "i": "", "j": "0", "m": "true",
	}, body)
	wantCode(t, resp, compat.RespSuccess)
	if ids := strings.Split(resp.Ext["msgId"], ","); len(ids) != 3 || resp.Ext["queueOffset"] != "0" {
		t.Fatalf("batch response %v", resp.Ext)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	big := bytes.Repeat([]byte("compressible "), 1000)
	zw.Write(big)
	zw.Close()
	wantCode(t, sendV1(t, c, "batch", 2, nil, z.Bytes(), int(compat.SysFlagCompressed)), compat.RespSuccess)
	_, msgs := pull(t, c, "g", "batch", 2, 0, 0)
	if len(msgs) != 4 {
		t.Fatalf("pulled %d, want 4", len(msgs))
	}
	for i := range 3 {
		if string(msgs[i].Body) != fmt.Sprintf("m%d", i) || msgs[i].QueueOffset != int64(i) ||
			msgs[i].Properties[compat.PropUniqKey] != fmt.Sprintf("%032X", i) {
			t.Fatalf("batch message %d: %+v", i, msgs[i])
		}
	}
	if !bytes.Equal(msgs[3].Body, big) || msgs[3].SysFlag&compat.SysFlagCompressed != 0 {
		t.Fatalf("compressed message came back with %d bytes, sysFlag %#x", len(msgs[3].Body), msgs[3].SysFlag)
	}
}

// TestRemotingRefusals: bad or unsupported requests get RocketMQ's codes
// with a remark that names the problem, and store nothing.
func TestRemotingRefusals(t *testing.T) {
	n, c := remotingNode(t)
	cases := []struct {
		name   string
		resp   *compat.Command
		code   int32
		remark string
	}{
		{"bad delay level", sendV1(t, c, "r", 0, map[string]string{compat.PropDelayLevel: "x"}, []byte("x"), 0),
			compat.RespInvalidParameter, "DELAY"},
		{"delayed half message", sendV1(t, c, "r", 0, map[string]string{compat.PropTransactionPrepared: "true", compat.PropDelayLevel: "2"}, []byte("x"), 0),
			compat.RespInvalidParameter, "cannot also be delayed"},
		{"missing queueId", call(t, c, compat.ReqSendMessage, map[string]string{"topic": "r"}, []byte("x")),
			compat.RespInvalidParameter, `"queueId"`},
		{"unknown code", call(t, c, 9999, nil, nil), compat.RespRequestCodeNotSupported, "9999"},
		{"end transaction without a group", call(t, c, compat.ReqEndTransaction, nil, nil), compat.RespInvalidParameter, "producerGroup"},
		{"pull unknown topic", call(t, c, compat.ReqPullMessage, map[string]string{"consumerGroup": "g", "topic": "nope",
			"queueId": "0", "queueOffset": "0"}, nil), compat.RespTopicNotExist, "nope"},
		{"sql92", call(t, c, compat.ReqPullMessage, map[string]string{"consumerGroup": "g", "topic": "r", "queueId": "0",
			"queueOffset": "0", "sysFlag": strconv.Itoa(int(compat.PullFlagSubscription)), "subscription": "a > ",
			"expressionType": "SQL92"}, nil), compat.RespSubscriptionParseFailed, "at 4"},
		{"filter type", call(t, c, compat.ReqPullMessage, map[string]string{"consumerGroup": "g", "topic": "r", "queueId": "0",
			"queueOffset": "0", "sysFlag": strconv.Itoa(int(compat.PullFlagSubscription)), "subscription": "x",
			"expressionType": "CEL"}, nil), compat.RespSubscriptionParseFailed, "CEL"},
		{"bad heartbeat", call(t, c, compat.ReqHeartBeat, nil, []byte("{not json")), compat.RespInvalidParameter, "heartbeat"},
	}
	for _, tc := range cases {
		if tc.resp.Code != tc.code || !strings.Contains(tc.resp.Remark, tc.remark) {
			t.Errorf("%s: %s (%d) %q; want %s with %q", tc.name, compat.ResponseName(tc.resp.Code), tc.resp.Code,
				tc.resp.Remark, compat.ResponseName(tc.code), tc.remark)
		}
	}
	if _, ok := n.Topic("r"); ok {
		st, _ := n.TopicStatus("r")
		for _, q := range st.Queues {
			if q.MaxOffset != 0 {
				t.Fatalf("refused sends stored something: %+v", st)
			}
		}
	}
}

func heartbeat(t *testing.T, c *compat.Client, client, group string, topics ...string) {
	t.Helper()
	cd := compat.ConsumerData{GroupName: group, ConsumeType: "CONSUME_PASSIVELY", MessageModel: "Clustering",
		ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET"}
	for _, tp := range topics {
		cd.SubscriptionDataSet = append(cd.SubscriptionDataSet, compat.SubscriptionData{Topic: tp, SubString: "*", ExpressionType: "TAG"})
	}
	body, err := json.Marshal(compat.HeartbeatData{ClientID: client, ConsumerDataSet: []compat.ConsumerData{cd}})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, call(t, c, compat.ReqHeartBeat, nil, body), compat.RespSuccess)
}

func consumerList(t *testing.T, c *compat.Client, group string) []string {
	t.Helper()
	resp := call(t, c, compat.ReqGetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil)
	if resp.Code != compat.RespSuccess {
		return nil
	}
	var cl compat.ConsumerList
	if err := compat.DecodeJSON(resp.Body, &cl); err != nil {
		t.Fatal(err)
	}
	return cl.ConsumerIDList
}

// TestRemotingGroupMembership: heartbeats register members (and the
// group's retry topic), a join is pushed to the other member as
// NOTIFY_CONSUMER_IDS_CHANGED, and a closed connection removes its member
// at once.
func TestRemotingGroupMembership(t *testing.T) {
	n, c1 := remotingNode(t)
	notified := make(chan string, 8)
	c1.OnRequest(func(req *compat.Command) *compat.Command {
		if req.Code == compat.ReqNotifyConsumerIDsChanged {
			notified <- req.Ext["consumerGroup"]
		}
		return nil
	})
	if got := consumerList(t, c1, "grp"); got != nil {
		t.Fatalf("members before any heartbeat: %v", got)
	}
	heartbeat(t, c1, "c1", "grp", "orders")
	if _, ok := n.Topic("%RETRY%grp"); !ok {
		t.Fatal("no retry topic after the first heartbeat")
	}
	<-notified // its own join
	c2, err := compat.Dial(t.Context(), n.ClientAddr())
	if err != nil {
		t.Fatal(err)
	}
	heartbeat(t, c2, "c2", "grp", "orders")
	select {
	case g := <-notified:
		if g != "grp" {
			t.Fatalf("notified for group %q", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no NOTIFY_CONSUMER_IDS_CHANGED after a second member joined")
	}
	if got := consumerList(t, c1, "grp"); strings.Join(got, ",") != "c1,c2" {
		t.Fatalf("members %v, want c1,c2", got)
	}
	c2.Close()
	eventually(t, 10*time.Second, func() error {
		if got := consumerList(t, c1, "grp"); strings.Join(got, ",") != "c1" {
			return fmt.Errorf("members %v after c2's connection closed, want c1", got)
		}
		return nil
	})
}

// TestRemotingOffsetsAndLocks: offsets commit through Raft and read back
// through both protocols; locks grant one member at a time.
func TestRemotingOffsetsAndLocks(t *testing.T) {
	n, c := remotingNode(t)
	for i := range 5 {
		wantCode(t, sendV1(t, c, "off", 0, nil, []byte{byte(i)}, 0), compat.RespSuccess)
	}
	q := map[string]string{"consumerGroup": "g", "topic": "off", "queueId": "0"}
	resp := call(t, c, compat.ReqQueryConsumerOffset, q, nil)
	wantCode(t, resp, compat.RespSuccess) // a young queue: start at 0
	if resp.Ext["offset"] != "0" {
		t.Fatalf("offset of a new group: %v", resp.Ext)
	}
	u := map[string]string{"consumerGroup": "g", "topic": "off", "queueId": "0", "commitOffset": "3"}
	wantCode(t, call(t, c, compat.ReqUpdateConsumerOffset, u, nil), compat.RespSuccess)
	if off, ok := n.ConsumerOffset("g", "off", 0); !ok || off != 3 {
		t.Fatalf("committed offset %d %v, want 3", off, ok)
	}
	if resp := call(t, c, compat.ReqQueryConsumerOffset, q, nil); resp.Ext["offset"] != "3" {
		t.Fatalf("queried offset %v, want 3", resp.Ext)
	}
	u["commitOffset"] = "99"
	wantCode(t, call(t, c, compat.ReqUpdateConsumerOffset, u, nil), compat.RespInvalidParameter)
	if resp := call(t, c, compat.ReqGetMaxOffset, map[string]string{"topic": "off", "queueId": "0"}, nil); resp.Ext["offset"] != "5" {
		t.Fatalf("max offset %v", resp.Ext)
	}
	if resp := call(t, c, compat.ReqGetMinOffset, map[string]string{"topic": "off", "queueId": "0"}, nil); resp.Ext["offset"] != "0" {
		t.Fatalf("min offset %v", resp.Ext)
	}
	if resp := call(t, c, compat.ReqSearchOffsetByTimestamp, map[string]string{"topic": "off", "queueId": "0",
		"timestamp": strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)}, nil); resp.Ext["offset"] != "5" {
		t.Fatalf("offset for a future time %v, want 5", resp.Ext)
	}

	heartbeat(t, c, "a", "og", "off")
	heartbeat(t, c, "b", "og", "off")
	lock := func(client string) []compat.MessageQueue {
		body, _ := json.Marshal(compat.LockBatchRequest{ConsumerGroup: "og", ClientID: client,
			MQSet: []compat.MessageQueue{{Topic: "off", BrokerName: "b0", QueueID: 0}}})
		resp := call(t, c, compat.ReqLockBatchMQ, nil, body)
		wantCode(t, resp, compat.RespSuccess)
		var lr compat.LockBatchResponse
		if err := compat.DecodeJSON(resp.Body, &lr); err != nil {
			t.Fatal(err)
		}
		return lr.LockOKMQSet
	}
	if got := lock("a"); len(got) != 1 || got[0].BrokerName != "b0" {
		t.Fatalf("a's lock: %v", got)
	}
	if got := lock("b"); len(got) != 0 {
		t.Fatalf("b got a's queue: %v", got)
	}
	body, _ := json.Marshal(compat.LockBatchRequest{ConsumerGroup: "og", ClientID: "a",
		MQSet: []compat.MessageQueue{{Topic: "off", BrokerName: "b0", QueueID: 0}}})
	wantCode(t, call(t, c, compat.ReqUnlockBatchMQ, nil, body), compat.RespSuccess)
	if got := lock("b"); len(got) != 1 {
		t.Fatalf("b after a unlocked: %v", got)
	}
}

// TestBothProtocolsOnePort: rmq's own client and a RocketMQ client share
// the client port and see the same messages.
func TestBothProtocolsOnePort(t *testing.T) {
	n, c := remotingNode(t)
	wantCode(t, sendV1(t, c, "shared", 0, map[string]string{compat.PropTags: "x"}, []byte("from-remoting"), 0), compat.RespSuccess)
	conn, err := wire.Dial(t.Context(), n.ClientAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var sr wire.SendResponse
	if err := conn.Call(t.Context(), wire.CodeSend, &wire.SendRequest{Messages: []wire.Message{{
		Topic: "shared", Body: []byte("from-rmq"), Tags: "y", ID: bytes.Repeat([]byte{0xAB}, 16)}}}, &sr); err != nil {
		t.Fatal(err)
	}
	var pr wire.PullResponse
	if err := conn.Call(t.Context(), wire.CodePull, &wire.PullRequest{Topic: "shared"}, &pr); err != nil {
		t.Fatal(err)
	}
	if len(pr.Messages) != 2 || string(pr.Messages[0].Body) != "from-remoting" || pr.Messages[0].Tags != "x" {
		t.Fatalf("rmq pull: %+v", pr.Messages)
	}
	_, msgs := pull(t, c, "g", "shared", 0, 0, 0)
	if len(msgs) != 2 || string(msgs[1].Body) != "from-rmq" || msgs[1].Properties[compat.PropTags] != "y" ||
		msgs[1].Properties[compat.PropUniqKey] != strings.Repeat("AB", 16) {
		t.Fatalf("remoting pull: %+v", msgs)
	}
}

// TestRemotingViewMessageByID: the physical offset of a send's message id
// finds the message on every replica; an offset that is no message start
// is refused with a remark.
func TestRemotingViewMessageByID(t *testing.T) {
	_, c := remotingNode(t)
	for i := range 3 {
		wantCode(t, sendV1(t, c, "view", 0, map[string]string{compat.PropKeys: fmt.Sprint("k", i)}, []byte(fmt.Sprint("b", i)), 0), compat.RespSuccess)
	}
	resp := sendV1(t, c, "view", 0, nil, []byte("target"), 0)
	wantCode(t, resp, compat.RespSuccess)
	_, phys, err := compat.ParseOffsetMsgID(resp.Ext["msgId"])
	if err != nil {
		t.Fatal(err)
	}
	v := call(t, c, compat.ReqViewMessageByID, map[string]string{"offset": strconv.FormatInt(phys, 10)}, nil)
	wantCode(t, v, compat.RespSuccess)
	m, _, err := compat.DecodeMessageExt(v.Body)
	if err != nil || string(m.Body) != "target" || m.QueueOffset != 3 || m.PhysicalOffset != phys {
		t.Fatalf("viewed %+v %v", m, err)
	}
	v = call(t, c, compat.ReqViewMessageByID, map[string]string{"offset": strconv.FormatInt(phys+1, 10)}, nil)
	if v.Code != compat.RespSystemError || !strings.Contains(v.Remark, "not found") {
		t.Fatalf("a position inside a record: %d %q", v.Code, v.Remark)
	}
}

// TestCompatTableListsServedCodes keeps compat/doc.go's table of supported
// features true for the broker: every request code the adapter serves is
// in a row marked yes.
func TestCompatTableListsServedCodes(t *testing.T) {
	doc, err := os.ReadFile("../compat/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var yes []string
	for _, line := range strings.Split(string(doc), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(line, " yes ") {
			yes = append(yes, line)
		}
	}
	for code := range remotingHandlers {
		if code == compat.ReqConsumerSendMsgBack {
			continue // served by not answering; its row says no
		}
		found := false
		for _, line := range yes {
			if regexp.MustCompile(`\b` + strconv.Itoa(int(code)) + `\b`).MatchString(line) {
				found = true
			}
		}
		if !found {
			t.Errorf("request code %d (%s) is served but not in a \"yes\" row of compat/doc.go", code, compat.RequestName(code))
		}
	}
}

// TestRemotingDelayLevel: a RocketMQ send with DELAY is stored once,
// answered with queueOffset -1, and pulled once due.
func TestRemotingDelayLevel(t *testing.T) {
	_, c := remotingNode(t)
	resp := sendV1(t, c, "delayed", 0, map[string]string{compat.PropDelayLevel: "1"}, []byte("later"), 0)
	wantCode(t, resp, compat.RespSuccess)
	if resp.Ext["queueOffset"] != "-1" {
		t.Fatalf("delayed send answered queueOffset %q, want -1", resp.Ext["queueOffset"])
	}
	if presp, _ := pull(t, c, "g", "delayed", 0, 0, 0); presp.Code != compat.RespPullNotFound {
		t.Fatalf("pull before the delay: %s", compat.ResponseName(presp.Code))
	}
	var msgs []*compat.MessageExt
	eventually(t, 15*time.Second, func() error {
		if _, msgs = pull(t, c, "g", "delayed", 0, 0, 0); len(msgs) != 1 {
			return fmt.Errorf("pulled %d messages, want 1 once due", len(msgs))
		}
		return nil
	})
	if string(msgs[0].Body) != "later" || msgs[0].Properties[compat.PropDelayLevel] != "1" {
		t.Fatalf("delivered %+v", msgs[0])
	}
	_, phys, _ := compat.ParseOffsetMsgID(resp.Ext["msgId"])
	if msgs[0].PhysicalOffset != phys {
		t.Fatalf("delivered message at physical offset %d, send said %d: the record was written again?", msgs[0].PhysicalOffset, phys)
	}
}

// TestRemotingSendBack: CONSUMER_SEND_MSG_BACK names the failed delivery
// by its physical offset only; the retry arrives in %RETRY%group as a
// message of that topic with RETRY_TOPIC and its reconsume count, at the
// original record; past maxReconsumeTimes the message is dead-lettered.
func TestRemotingSendBack(t *testing.T) {
	n, c := remotingNodeWith(t, func(cfg *Config) {
		cfg.DelayLevels = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond}
		cfg.TimerPoll = 10 * time.Millisecond
	})
	resp := sendV1(t, c, "pay", 0, map[string]string{compat.PropTags: "t"}, []byte("body"), 0)
	wantCode(t, resp, compat.RespSuccess)
	_, phys, _ := compat.ParseOffsetMsgID(resp.Ext["msgId"])
	back := func() *compat.Command {
		return call(t, c, compat.ReqConsumerSendMsgBack, map[string]string{"group": "g", "offset": strconv.FormatInt(phys, 10),
			"delayLevel": "0", "originMsgId": "x", "originTopic": "pay", "maxReconsumeTimes": "1"}, nil)
	}
	wantCode(t, back(), compat.RespSuccess)
	var msgs []*compat.MessageExt
	eventually(t, 10*time.Second, func() error {
		if _, msgs = pull(t, c, "g", "%RETRY%g", 0, 0, 0); len(msgs) != 1 {
			return fmt.Errorf("retry queue holds %d, want 1", len(msgs))
		}
		return nil
	})
	m := msgs[0]
	if m.Topic != "%RETRY%g" || m.Properties[compat.PropRetryTopic] != "pay" || m.ReconsumeTimes != 1 ||
		string(m.Body) != "body" || m.PhysicalOffset != phys {
		t.Fatalf("retry delivered as %+v", m)
	}
	wantCode(t, back(), compat.RespSuccess) // the second failure: beyond maxReconsumeTimes 1
	eventually(t, 10*time.Second, func() error {
		if _, next, _ := n.QueueRange("%DLQ%g", 0); next != 1 {
			return fmt.Errorf("dead-letter queue next %d, want 1", next)
		}
		return nil
	})
}

// TestRemotingViewAndSendBackDelayed: a delayed message, once delivered,
// is found by its message id and can be sent back like any other.
func TestRemotingViewAndSendBackDelayed(t *testing.T) {
	n, c := remotingNodeWith(t, func(cfg *Config) {
		cfg.DelayLevels = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}
		cfg.TimerPoll = 10 * time.Millisecond
	})
	wantCode(t, sendV1(t, c, "dl", 0, nil, []byte("first"), 0), compat.RespSuccess)
	resp := sendV1(t, c, "dl", 0, map[string]string{compat.PropDelayLevel: "1"}, []byte("late"), 0)
	wantCode(t, resp, compat.RespSuccess)
	wantCode(t, sendV1(t, c, "dl", 0, nil, []byte("third"), 0), compat.RespSuccess)
	_, phys, _ := compat.ParseOffsetMsgID(resp.Ext["msgId"])
	eventually(t, 10*time.Second, func() error {
		if _, next, _ := n.QueueRange("dl", 0); next != 3 {
			return fmt.Errorf("queue next %d, want 3 once the delayed message is due", next)
		}
		return nil
	})
	// Its offset is where it was delivered: after "third", unless a
	// loaded machine took longer than the 10 ms delay to send "third".
	var lateAt int64 = -1
	_, all := pull(t, c, "g0", "dl", 0, 0, 0)
	for _, m := range all {
		if string(m.Body) == "late" {
			lateAt = m.QueueOffset
		}
	}
	v := call(t, c, compat.ReqViewMessageByID, map[string]string{"offset": strconv.FormatInt(phys, 10)}, nil)
	wantCode(t, v, compat.RespSuccess)
	if m, _, err := compat.DecodeMessageExt(v.Body); err != nil || string(m.Body) != "late" || m.QueueOffset != lateAt || lateAt < 1 {
		t.Fatalf("viewed %+v %v, want the delayed message at its delivered offset %d", m, err, lateAt)
	}
	wantCode(t, call(t, c, compat.ReqConsumerSendMsgBack, map[string]string{"group": "g", "offset": strconv.FormatInt(phys, 10),
		"delayLevel": "0", "maxReconsumeTimes": "3"}, nil), compat.RespSuccess)
	eventually(t, 10*time.Second, func() error {
		if _, msgs := pull(t, c, "g", "%RETRY%g", 0, 0, 0); len(msgs) != 1 || msgs[0].Properties[compat.PropRetryTopic] != "dl" {
			return fmt.Errorf("retry queue: %v", msgs)
		}
		return nil
	})
}
