package compat

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTopicRouteDataJSON(t *testing.T) {
	rd := TopicRouteData{
		QueueDatas:  []QueueData{{BrokerName: "b1", ReadQueueNums: 4, WriteQueueNums: 4, Perm: PermRead | PermWrite}},
		BrokerDatas: []BrokerData{{Cluster: "c", BrokerName: "b1", BrokerAddrs: map[int64]string{0: "127.0.0.1:10911", 1: "127.0.0.2:10911"}}},
	}
	b, err := json.Marshal(rd)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"queueDatas":[{"brokerName":"b1","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],` +
		`"brokerDatas":[{"cluster":"c","brokerName":"b1","brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.2:10911"}}]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back TopicRouteData
	if err := DecodeJSON(b, &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(rd, back); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}

	// Nil lists and maps are written as [] and {}, never null.
	b, _ = json.Marshal(TopicRouteData{BrokerDatas: []BrokerData{{BrokerName: "x"}}})
	if want := `{"queueDatas":[],"brokerDatas":[{"cluster":"","brokerName":"x","brokerAddrs":{}}]}`; string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(&TopicRouteData{})
	if want := `{"queueDatas":[],"brokerDatas":[]}`; string(b) != want {
		t.Fatalf("pointer: got %s", b)
	}
	b, _ = json.Marshal(ClusterInfo{BrokerAddrTable: map[string]BrokerData{"b": {BrokerName: "b"}}})
	if !strings.Contains(string(b), `"brokerAddrs":{}`) {
		t.Fatalf("cluster info: %s", b)
	}
}

func TestDecodeJSONFastjsonKeys(t *testing.T) {
	// fastjson writes Map<Long,String> keys unquoted.
	in := `{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",-1:"x", 1 :"a,b"},"brokerName":"b","cluster":"c"}],` +
		`"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":8}],"orderTopicConf":"b:8"}`
	var rd TopicRouteData
	if err := DecodeJSON([]byte(in), &rd); err != nil {
		t.Fatal(err)
	}
	want := TopicRouteData{
		OrderTopicConf: "b:8",
		QueueDatas:     []QueueData{{BrokerName: "b", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 6}},
		BrokerDatas:    []BrokerData{{Cluster: "c", BrokerName: "b", BrokerAddrs: map[int64]string{0: "127.0.0.1:10911", -1: "x", 1: "a,b"}}},
	}
	if d := cmp.Diff(want, rd); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// Numbers that are values, in arrays, or inside strings are untouched.
	q, changed := quoteIntKeys([]byte(`{"a":[1,2,{3:4}],"s":"{5:6}",7:[8]}`))
	if !changed || string(q) != `{"a":[1,2,{"3":4}],"s":"{5:6}","7":[8]}` {
		t.Fatalf("quoteIntKeys = %s", q)
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	var rd TopicRouteData
	err := DecodeJSON([]byte(`{"queueDatas":`), &rd)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "TopicRouteData") {
		t.Fatalf("got %v", err)
	}
	var hb HeartbeatData
	if err := DecodeJSON([]byte(`{"clientID":5}`), &hb); !errors.Is(err, ErrMalformed) {
		t.Fatalf("type error: got %v", err)
	}
}

func TestHeartbeatFromGoClient(t *testing.T) {
	// Shaped like rocketmq-client-go v2.1.2's heartbeatData encoding:
	// sets as arrays, codeSet as strings, empty sets as [].
	in := `{"clientID":"10.0.0.1@1234#0","producerDataSet":[{"groupName":"pg"}],"consumerDataSet":[{"groupName":"cg",` +
		`"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",` +
		`"subscriptionDataSet":[{"classFilterMode":false,"topic":"T","subString":"a || b","tagsSet":["a","b"],` +
		`"codeSet":["97","98"],"subVersion":1700000000000000000,"expressionType":"TAG"},` +
		`{"classFilterMode":false,"topic":"%RETRY%cg","subString":"*","tagsSet":[],"codeSet":[],"subVersion":1,"expressionType":"TAG"}],` +
		`"unitMode":false}]}`
	var hb HeartbeatData
	if err := DecodeJSON([]byte(in), &hb); err != nil {
		t.Fatal(err)
	}
	want := HeartbeatData{
		ClientID:        "10.0.0.1@1234#0",
		ProducerDataSet: []ProducerData{{GroupName: "pg"}},
		ConsumerDataSet: []ConsumerData{{
			GroupName: "cg", ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING", ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET",
			SubscriptionDataSet: []SubscriptionData{
				{Topic: "T", SubString: "a || b", TagsSet: []string{"a", "b"}, CodeSet: []int32{97, 98}, SubVersion: 1700000000000000000, ExpressionType: "TAG"},
				{Topic: "%RETRY%cg", SubString: "*", TagsSet: []string{}, CodeSet: []int32{}, SubVersion: 1, ExpressionType: "TAG"},
			},
		}},
	}
	if d := cmp.Diff(want, hb); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// Java sends codeSet as numbers.
	var sd SubscriptionData
	if err := DecodeJSON([]byte(`{"topic":"T","codeSet":[-5,2147483647]}`), &sd); err != nil || !cmp.Equal(sd.CodeSet, []int32{-5, 2147483647}) {
		t.Fatalf("numbers: %v %v", sd.CodeSet, err)
	}
	if err := DecodeJSON([]byte(`{"codeSet":["x"]}`), &sd); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad code: got %v", err)
	}
	if err := DecodeJSON([]byte(`{"codeSet":[2147483648]}`), &sd); !errors.Is(err, ErrMalformed) {
		t.Fatalf("code overflow: got %v", err)
	}
}

func TestOtherBodiesJSONNames(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{LockBatchRequest{ConsumerGroup: "g", ClientID: "c", MQSet: []MessageQueue{{Topic: "T", BrokerName: "b", QueueID: 1}}},
			`{"consumerGroup":"g","clientId":"c","mqSet":[{"topic":"T","brokerName":"b","queueId":1}],"onlyThisBroker":false}`},
		{LockBatchResponse{LockOKMQSet: []MessageQueue{}}, `{"lockOKMQSet":[]}`},
		{ConsumerList{ConsumerIDList: []string{"a"}}, `{"consumerIdList":["a"]}`},
		{TopicList{TopicList: []string{"T"}}, `{"topicList":["T"]}`},
		{ClusterInfo{ClusterAddrTable: map[string][]string{"c": {"b"}}}, `{"brokerAddrTable":null,"clusterAddrTable":{"c":["b"]}}`},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%T: got %s (%v), want %s", c.v, b, err, c.want)
		}
	}
}

// TestBatchAckBody: BATCH_ACK_MESSAGE bodies as fastjson writes them
// (short names, the BitSet's bytes in base64) and with the long
// alternate names; a bit set names offsets relative to the start offset.
func TestBatchAckBody(t *testing.T) {
	in := `{"acks":[{"b":"KgE=","c":"g","it":60000,"pt":1700000000000,"q":3,"r":"0","rq":2,"so":100,"t":"T"},` +
		`{"consumerGroup":"g2","topic":"T2","retry":"1","startOffset":5,"queueId":1,"reviveQueueId":0,` +
		`"popTime":7,"invisibleTime":8,"bitSet":"AQ"},{"c":"g3","b":[1,-128]}],"brokerName":"broker-a"}`
	var body BatchAckBody
	if err := DecodeJSON([]byte(in), &body); err != nil {
		t.Fatal(err)
	}
	want := BatchAckBody{BrokerName: "broker-a", Acks: []BatchAck{
		{ConsumerGroup: "g", Topic: "T", Retry: "0", StartOffset: 100, QueueID: 3, ReviveQueueID: 2, PopTime: 1700000000000,
			InvisibleTime: 60000, BitSet: BitSet{0x2a, 0x01}},
		{ConsumerGroup: "g2", Topic: "T2", Retry: "1", StartOffset: 5, QueueID: 1, PopTime: 7, InvisibleTime: 8, BitSet: BitSet{1}},
		{ConsumerGroup: "g3", BitSet: BitSet{1, 0x80}},
	}}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Fatalf("decoded body (-want +got):\n%s", diff)
	}
	offs, err := body.Acks[0].BitSet.Offsets(100, 10)
	if err != nil || !cmp.Equal(offs, []int64{101, 103, 105, 108}) {
		t.Fatalf("offsets %v %v, want [101 103 105 108]", offs, err)
	}
	if _, err := body.Acks[0].BitSet.Offsets(100, 3); err == nil {
		t.Fatal("4 offsets under a limit of 3: no error")
	}
	// What json.Marshal writes is fastjson's form, which decodes back.
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"b":"KgE="`) || !strings.Contains(string(b), `"so":100`) {
		t.Fatalf("marshalled %s; want fastjson's short names and base64", b)
	}
	var back BatchAckBody
	if err := DecodeJSON(b, &back); err != nil || !cmp.Equal(back, want) {
		t.Fatalf("round trip: %v %s", err, cmp.Diff(want, back))
	}
	for _, bad := range []string{`{"acks":[{"b":7}]}`, `{"acks":[{"b":"!!"}]}`, `{"acks":[{"b":[256]}]}`, `{"acks":[{"so":"x"}]}`} {
		if err := DecodeJSON([]byte(bad), &body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", bad, err)
		}
	}
}
