package broker

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/compat"
)

// popExt is a POP_MESSAGE header as the Java client's PopMessageRequestHeader
// sends it (every value a string).
func popExt(group, topic string, maxMsgs int, invisible, poll time.Duration) map[string]string {
	return map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": "-1", "maxMsgNums": strconv.Itoa(maxMsgs),
		"invisibleTime": strconv.FormatInt(invisible.Milliseconds(), 10), "pollTime": strconv.FormatInt(poll.Milliseconds(), 10),
		"bornTime": strconv.FormatInt(time.Now().UnixMilli(), 10), "initMode": "0", "expType": "TAG", "exp": "*",
		"order": "false", "attemptId": "a1",
	}
}

// popped is one message of a POP response with the extraInfo the Java
// client derives for it.
type popped struct {
	*compat.MessageExt
	extraInfo string
}

func (p popped) key() string { return fmt.Sprintf("%d/%d", p.QueueID, p.QueueOffset) }

// popCall sends POP_MESSAGE and decodes the response as
// MQClientAPIImpl.processPopResponse does.
func popCall(t *testing.T, c *compat.Client, broker string, ext map[string]string) (*compat.Command, []popped) {
	t.Helper()
	resp := call(t, c, compat.ReqPopMessage, ext, nil)
	for _, f := range []string{"popTime", "invisibleTime", "reviveQid", "restNum"} { // @CFNotNull
		if _, ok := resp.Ext[f]; !ok {
			t.Fatalf("POP response (%d %q) lacks header field %q: %v", resp.Code, resp.Remark, f, resp.Ext)
		}
	}
	if resp.Code != compat.RespSuccess {
		return resp, nil
	}
	var msgs []popped
	for b := resp.Body; len(b) > 0; {
		m, used, err := compat.DecodeMessageExt(b)
		if err != nil {
			t.Fatalf("decode popped message: %v", err)
		}
		msgs = append(msgs, popped{MessageExt: m})
		b = b[used:]
	}
	javaExtraInfos(t, resp, msgs, broker)
	return resp, msgs
}

// javaExtraInfos fills in each message's extraInfo as the Java client
// builds it from startOffsetInfo and msgOffsetInfo (ExtraInfoUtil), and
// checks it against the broker's POP_CK, which the client would keep.
func javaExtraInfos(t *testing.T, resp *compat.Command, msgs []popped, broker string) {
	t.Helper()
	startInfo := map[string]int64{}
	for _, one := range strings.Split(resp.Ext["startOffsetInfo"], ";") {
		f := strings.Split(one, " ")
		if len(f) != 3 {
			t.Fatalf("startOffsetInfo entry %q: want 3 fields", one)
		}
		k := f[0] + "@" + f[1]
		if _, dup := startInfo[k]; dup {
			t.Fatalf("startOffsetInfo %q: duplicate key %s (Java fails)", resp.Ext["startOffsetInfo"], k)
		}
		startInfo[k], _ = strconv.ParseInt(f[2], 10, 64)
	}
	msgInfo := map[string][]int64{}
	for _, one := range strings.Split(resp.Ext["msgOffsetInfo"], ";") {
		f := strings.Split(one, " ")
		if len(f) != 3 {
			t.Fatalf("msgOffsetInfo entry %q: want 3 fields", one)
		}
		k := f[0] + "@" + f[1]
		if _, dup := msgInfo[k]; dup {
			t.Fatalf("msgOffsetInfo %q: duplicate key %s (Java fails)", resp.Ext["msgOffsetInfo"], k)
		}
		for _, s := range strings.Split(f[2], ",") {
			off, _ := strconv.ParseInt(s, 10, 64)
			msgInfo[k] = append(msgInfo[k], off)
		}
	}
	sorted := map[string][]int64{} // buildQueueOffsetSortedMap: body order per key
	keyOf := func(m popped) string { return "0@" + strconv.Itoa(int(m.QueueID)) }
	for _, m := range msgs {
		sorted[keyOf(m)] = append(sorted[keyOf(m)], m.QueueOffset)
	}
	for i := range msgs {
		m := &msgs[i]
		k := keyOf(*m)
		ck, ok := startInfo[k]
		idx := slices.Index(sorted[k], m.QueueOffset)
		if !ok || idx < 0 || idx >= len(msgInfo[k]) {
			t.Fatalf("message %d/%d has no startOffsetInfo/msgOffsetInfo entry (%v, %v)", m.QueueID, m.QueueOffset, startInfo, msgInfo)
		}
		off := msgInfo[k][idx]
		if off != m.QueueOffset {
			t.Fatalf("msgOffsetInfo gives offset %d for message %d/%d", off, m.QueueID, m.QueueOffset)
		}
		if off < ck {
			t.Fatalf("message offset %d below its check point %d: a Java batch ack would fail", off, ck)
		}
		m.extraInfo = strings.Join([]string{strconv.FormatInt(ck, 10), resp.Ext["popTime"], resp.Ext["invisibleTime"],
			resp.Ext["reviveQid"], "0", broker, strconv.Itoa(int(m.QueueID)), strconv.FormatInt(off, 10)}, " ")
		if got := m.Properties[propPopCK]; got != m.extraInfo {
			t.Fatalf("POP_CK %q; the Java client builds %q", got, m.extraInfo)
		}
	}
}

// handleExt is an ACK_MESSAGE / CHANGE_MESSAGE_INVISIBLETIME header as the
// Java client fills it from a message's extraInfo.
func handleExt(group, topic, extraInfo string) map[string]string {
	f := strings.Split(extraInfo, " ")
	return map[string]string{"consumerGroup": group, "topic": topic, "queueId": f[6], "offset": f[7], "extraInfo": extraInfo}
}

// javaBatchAck builds a BATCH_ACK_MESSAGE body as
// MQClientAPIImpl.batchAckMessageAsync does: one BatchAck per
// retry@queue@ck@popTime, offsets as a BitSet relative to ck, written by
// fastjson (short names, the bit set's bytes in base64).
func javaBatchAck(t *testing.T, group, topic string, extraInfos []string) []byte {
	t.Helper()
	type ack struct {
		C  string `json:"c"`
		T  string `json:"t"`
		R  string `json:"r"`
		SO int64  `json:"so"`
		Q  int    `json:"q"`
		RQ int    `json:"rq"`
		PT int64  `json:"pt"`
		IT int64  `json:"it"`
		B  string `json:"b"`
	}
	acks := map[string]*ack{}
	bits := map[string][]byte{}
	broker := ""
	for _, e := range extraInfos {
		f := strings.Split(e, " ")
		broker = f[5]
		k := f[4] + "@" + f[6] + "@" + f[0] + "@" + f[1]
		if acks[k] == nil {
			a := &ack{C: group, T: topic, R: f[4]}
			a.SO, _ = strconv.ParseInt(f[0], 10, 64)
			a.Q, _ = strconv.Atoi(f[6])
			a.RQ, _ = strconv.Atoi(f[3])
			a.PT, _ = strconv.ParseInt(f[1], 10, 64)
			a.IT, _ = strconv.ParseInt(f[2], 10, 64)
			acks[k] = a
		}
		off, _ := strconv.ParseInt(f[7], 10, 64)
		i := int(off - acks[k].SO) // BitSet.set(offset - ck)
		for len(bits[k]) <= i/8 {
			bits[k] = append(bits[k], 0)
		}
		bits[k][i/8] |= 1 << (i % 8) // BitSet.toByteArray is little-endian
	}
	body := struct {
		BrokerName string `json:"brokerName"`
		Acks       []*ack `json:"acks"`
	}{BrokerName: broker}
	for _, k := range slices.Sorted(maps.Keys(acks)) {
		acks[k].B = base64.StdEncoding.EncodeToString(bits[k])
		body.Acks = append(body.Acks, acks[k])
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantRemark(t *testing.T, what string, resp *compat.Command, code int32, remark string) {
	t.Helper()
	if resp.Code != code || !strings.Contains(resp.Remark, remark) {
		t.Fatalf("%s: %s (%d) %q; want %s with %q", what, compat.ResponseName(resp.Code), resp.Code, resp.Remark,
			compat.ResponseName(code), remark)
	}
}

// TestRemotingPop: a RocketMQ 5 client pops, acks, changes the invisible
// time of and batch-acks messages over remoting; what it did not ack
// comes back once its invisible time passes, with reconsumeTimes 1.
func TestRemotingPop(t *testing.T) {
	n, c := remotingNode(t)
	const group, topic = "pg", "pops"
	broker := n.cfg.Group
	for i := range 20 {
		wantCode(t, sendV1(t, c, topic, i%4, map[string]string{compat.PropTags: "a"}, []byte(fmt.Sprint("m", i)), 0), compat.RespSuccess)
	}

	resp, first := popCall(t, c, broker, popExt(group, topic, 10, time.Second, 0))
	wantCode(t, resp, compat.RespSuccess)
	if len(first) != 10 || resp.Ext["invisibleTime"] != "1000" || resp.Ext["reviveQid"] != "0" || resp.Ext["restNum"] != "10" {
		t.Fatalf("first pop: %d messages, header %v; want 10, invisibleTime 1000, reviveQid 0, restNum 10", len(first), resp.Ext)
	}
	for _, m := range first {
		if m.ReconsumeTimes != 0 || m.Topic != topic || m.Properties[compat.PropTags] != "a" {
			t.Fatalf("first delivery %s: reconsumeTimes %d, topic %q, tags %q", m.key(), m.ReconsumeTimes, m.Topic, m.Properties[compat.PropTags])
		}
	}

	// Ack half; an ack repeated succeeds.
	acked := map[string]bool{}
	for i := 0; i < len(first); i += 2 {
		wantCode(t, call(t, c, compat.ReqAckMessage, handleExt(group, topic, first[i].extraInfo), nil), compat.RespSuccess)
		acked[first[i].key()] = true
	}
	wantCode(t, call(t, c, compat.ReqAckMessage, handleExt(group, topic, first[0].extraInfo), nil), compat.RespSuccess)

	// Change the invisible time of one unacked message: the old handle no
	// longer acks it, and the Java client's new extraInfo names it.
	changed := first[1]
	popTime, _ := strconv.ParseInt(resp.Ext["popTime"], 10, 64)
	eventually(t, time.Second, func() error { // a later millisecond, so the new pop time differs (at most 1 ms)
		if time.Now().UnixMilli() <= popTime {
			return errors.New("still the pop's millisecond")
		}
		return nil
	})
	ext := handleExt(group, topic, changed.extraInfo)
	ext["invisibleTime"] = "1000"
	cr := call(t, c, compat.ReqChangeMessageInvisibleTime, ext, nil)
	wantCode(t, cr, compat.RespSuccess)
	if cr.Ext["invisibleTime"] != "1000" || cr.Ext["reviveQid"] != "0" || cr.Ext["popTime"] == resp.Ext["popTime"] {
		t.Fatalf("change invisible time answered %v; want invisibleTime 1000, reviveQid 0, a new popTime", cr.Ext)
	}
	f := strings.Split(changed.extraInfo, " ")
	newInfo := strings.Join([]string{f[7], cr.Ext["popTime"], cr.Ext["invisibleTime"], cr.Ext["reviveQid"], "0", broker, f[6], f[7]}, " ")
	wantRemark(t, "ack with the superseded handle", call(t, c, compat.ReqAckMessage, handleExt(group, topic, changed.extraInfo), nil),
		compat.RespNoMessage, "superseded")

	// Bad handles are refused with a remark naming the problem.
	bad := map[string]string{"consumerGroup": group, "topic": topic, "queueId": "0", "offset": "0", "extraInfo": "0 garbage"}
	wantRemark(t, "malformed extraInfo", call(t, c, compat.ReqAckMessage, bad, nil), compat.RespInvalidParameter, "extraInfo")
	other := strings.Replace(newInfo, " "+broker+" ", " broker-z ", 1)
	wantRemark(t, "another broker's handle", call(t, c, compat.ReqAckMessage, handleExt(group, topic, other), nil),
		compat.RespInvalidParameter, "broker-z")
	mismatch := handleExt(group, topic, newInfo)
	mismatch["offset"] = "19"
	wantRemark(t, "header offset not the handle's", call(t, c, compat.ReqAckMessage, mismatch, nil), compat.RespInvalidParameter, "offset")

	// Once the invisible time passes the unacked come back (reconsumeTimes
	// 1) before or along with the 10 never received (0); the acked never.
	again := map[string]popped{}
	eventually(t, 8*time.Second, func() error {
		resp, msgs := popCall(t, c, broker, popExt(group, topic, 32, time.Minute, 2*time.Second))
		if resp.Code != compat.RespSuccess && resp.Code != compat.RespPollingTimeout {
			t.Fatalf("pop: %s %q", compat.ResponseName(resp.Code), resp.Remark)
		}
		for _, m := range msgs {
			if _, dup := again[m.key()]; dup || acked[m.key()] {
				t.Fatalf("message %s delivered again (acked %v)", m.key(), acked[m.key()])
			}
			again[m.key()] = m
		}
		if len(again) < 15 {
			return fmt.Errorf("%d of 15 messages received", len(again))
		}
		return nil
	})
	firstKeys := map[string]bool{}
	for _, m := range first {
		firstKeys[m.key()] = true
	}
	for k, m := range again {
		want := int32(0)
		if firstKeys[k] {
			want = 1
		}
		if m.ReconsumeTimes != want {
			t.Errorf("message %s: reconsumeTimes %d (first received before: %v)", k, m.ReconsumeTimes, firstKeys[k])
		}
	}

	// Batch-ack all 15 as the Java client does; a batch-acked handle then
	// names nothing, and a batch naming a stale handle says so.
	var infos []string
	for _, m := range again {
		infos = append(infos, m.extraInfo)
	}
	wantCode(t, call(t, c, compat.ReqBatchAckMessage, nil, javaBatchAck(t, group, topic, infos)), compat.RespSuccess)
	ext = handleExt(group, topic, infos[0])
	ext["invisibleTime"] = "1000"
	wantRemark(t, "change of a batch-acked message", call(t, c, compat.ReqChangeMessageInvisibleTime, ext, nil),
		compat.RespNoMessage, "not in flight")
	wantRemark(t, "batch ack of a stale handle", call(t, c, compat.ReqBatchAckMessage, nil, javaBatchAck(t, group, topic, []string{newInfo})),
		compat.RespNoMessage, "1 of 1 acks failed")

	// Nothing left: POLLING_TIMEOUT once the poll time passes, with the
	// header fields the Java client decodes.
	resp, _ = popCall(t, c, broker, popExt(group, topic, 32, time.Minute, 100*time.Millisecond))
	wantCode(t, resp, compat.RespPollingTimeout)
	if resp.Ext["restNum"] != "0" {
		t.Fatalf("empty pop: restNum %q, want 0", resp.Ext["restNum"])
	}
}

// TestRemotingPopRefusals: what rmq does not serve, or a malformed
// request, is refused with a remark naming why.
func TestRemotingPopRefusals(t *testing.T) {
	_, c := remotingNode(t)
	wantCode(t, sendV1(t, c, "pr", 0, nil, []byte("x"), 0), compat.RespSuccess)
	with := func(k, v string) map[string]string {
		ext := popExt("g", "pr", 8, time.Minute, 0)
		if v == "" {
			delete(ext, k)
		} else {
			ext[k] = v
		}
		return ext
	}
	cases := []struct {
		name   string
		ext    map[string]string
		code   int32
		remark string
	}{
		{"order", with("order", "true"), compat.RespInvalidParameter, "ordered pop"},
		{"sql92", with("expType", "SQL92"), compat.RespSubscriptionParseFailed, "SQL92"},
		{"too many", with("maxMsgNums", "33"), compat.RespInvalidParameter, "maxMsgNums"},
		{"short invisible time", with("invisibleTime", "10"), compat.RespInvalidParameter, "invisibleTime"},
		{"no invisible time", with("invisibleTime", ""), compat.RespInvalidParameter, `"invisibleTime"`},
		{"no group", with("consumerGroup", ""), compat.RespInvalidParameter, `"consumerGroup"`},
		{"bad init mode", with("initMode", "2"), compat.RespInvalidParameter, "initMode"},
		{"unknown topic", with("topic", "nope"), compat.RespTopicNotExist, "nope"},
		{"queue out of range", with("queueId", "4"), compat.RespInvalidParameter, "queue 4"},
	}
	for _, tc := range cases {
		resp := call(t, c, compat.ReqPopMessage, tc.ext, nil)
		if resp.Code != tc.code || !strings.Contains(resp.Remark, tc.remark) {
			t.Errorf("%s: %s (%d) %q; want %s with %q", tc.name, compat.ResponseName(resp.Code), resp.Code, resp.Remark,
				compat.ResponseName(tc.code), tc.remark)
		}
	}
	// Nothing was received by the refused pops.
	resp, msgs := popCall(t, c, "broker-a", popExt("g", "pr", 8, time.Minute, 0))
	if resp.Code != compat.RespSuccess || len(msgs) != 1 {
		t.Fatalf("pop after the refusals: %s %q, %d messages", compat.ResponseName(resp.Code), resp.Remark, len(msgs))
	}
	wantRemark(t, "empty batch ack", call(t, c, compat.ReqBatchAckMessage, nil, []byte(`{"acks":[]}`)), compat.RespNoMessage, "no acks")
	wantRemark(t, "bad batch ack body", call(t, c, compat.ReqBatchAckMessage, nil, []byte(`{"acks":[{"b":7}]}`)),
		compat.RespInvalidParameter, "batch ack body")
}

// TestRemotingPopNotLeader: a follower refuses pop requests as it refuses
// sends, naming the leader.
func TestRemotingPopNotLeader(t *testing.T) {
	cl := newTestCluster(t, 3, func(cfg *Config) { cfg.ClientListen = "127.0.0.1:0" })
	leader := cl.leader(10 * time.Second)
	var follower *Node
	for _, n := range cl.live() {
		if n != leader {
			follower = n
			break
		}
	}
	c, err := compat.Dial(t.Context(), follower.ClientAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	info := "0 1700000000000 60000 0 0 " + follower.cfg.Group + " 0 0"
	ext := handleExt("g", "t", info)
	ext["invisibleTime"] = "60000"
	for _, req := range []struct {
		code int32
		ext  map[string]string
	}{
		{compat.ReqPopMessage, popExt("g", "t", 8, time.Minute, 0)},
		{compat.ReqAckMessage, handleExt("g", "t", info)},
		{compat.ReqChangeMessageInvisibleTime, ext},
	} {
		resp := call(t, c, req.code, req.ext, nil)
		wantRemark(t, compat.RequestName(req.code), resp, compat.RespServiceNotAvailable, "not the leader")
	}
}
