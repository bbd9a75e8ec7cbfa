package broker

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/wire"
)

// FuzzParseReceiptHandle: a handle that parses is written (String) as
// one that parses to the same handle; a refusal is ErrInvalidArgument.
func FuzzParseReceiptHandle(f *testing.F) {
	h := ReceiptHandle{Broker: "ga", Topic: "t", QueueID: 3, Offset: 42, PopTime: 1700000000000, Invisible: 30000}
	f.Add(h.String(), "")
	f.Add(h.ExtraInfo(), "t")
	f.Add(h.String(), "t")
	f.Add("0 1 2 0 1 b 0 3", "%RETRY%g")
	f.Add("0 x 2 0 0 b 0 1 t", "")
	f.Fuzz(func(t *testing.T, s, topic string) {
		rh, err := ParseReceiptHandle(s, topic)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("%q: refusal %v is not ErrInvalidArgument", s, err)
			}
			return
		}
		if strings.ContainsAny(rh.Broker, " \t\n") || rh.Broker == "" {
			t.Fatalf("%q: broker field %q", s, rh.Broker)
		}
		again, err := ParseReceiptHandle(rh.String(), "")
		if rh.Retry == "" {
			rh.Retry = "0" // ExtraInfo writes an empty flag as 0
		}
		if err != nil || again != rh {
			t.Fatalf("%q parsed to %+v, written %q, which parses to %+v (%v)", s, rh, rh.String(), again, err)
		}
	})
}

// extFields splits b into header fields: key NUL value NUL ...
func extFields(b []byte) map[string]string {
	parts := bytes.Split(b, []byte{0})
	ext := map[string]string{}
	for i := 0; i+1 < len(parts); i += 2 {
		ext[string(parts[i])] = string(parts[i+1])
	}
	return ext
}

func joinExt(kv ...string) []byte { return []byte(strings.Join(kv, "\x00")) }

// FuzzRemotingHeaders parses arbitrary header fields as every remoting
// send (V1 and V2) and pop header: a refusal is a *headerError naming a
// field of the request; what parses is in range.
func FuzzRemotingHeaders(f *testing.F) {
	f.Add(joinExt("producerGroup", "pg", "topic", "t", "queueId", "3", "sysFlag", "0", "bornTimestamp", "1", "flag", "0", "properties", "TAGS\x01a\x02"), int32(compat.ReqSendMessage))
	f.Add(joinExt("a", "pg", "b", "t", "c", "TBW102", "d", "8", "e", "1", "j", "2"), int32(compat.ReqSendMessageV2))
	f.Add(joinExt("consumerGroup", "g", "topic", "t", "queueId", "-1", "maxMsgNums", "32", "invisibleTime", "30000", "pollTime", "100", "initMode", "0", "expType", "TAG", "exp", "a||b"), int32(compat.ReqPopMessage))
	f.Add(joinExt("b", "t", "e", "99999999999"), int32(compat.ReqSendBatchMessage))
	f.Fuzz(func(t *testing.T, ext []byte, code int32) {
		req := compat.NewRequest(code, extFields(ext), nil)
		checkErr := func(what string, err error) {
			var he *headerError
			if !errors.As(err, &he) || !strings.Contains(err.Error(), "header field") {
				t.Fatalf("%s: refusal %v is not a headerError naming a field", what, err)
			}
		}
		if sh, err := parseSendHeader(req); err != nil {
			checkErr("send", err)
		} else if sh.queueID > fsm.MaxQueues || sh.topic != req.Ext[map[bool]string{true: "topic", false: "b"}[req.Code == compat.ReqSendMessage]] {
			t.Fatalf("send header %+v from %v", sh, req.Ext)
		} else if o := sh.sendOptions(); o.AutoCreateQueues > remotingDefaultTopicQueues {
			t.Fatalf("auto-create %d queues", o.AutoCreateQueues)
		}
		if p, err := parsePopRequest(req); err != nil {
			checkErr("pop", err)
		} else if p.queueID < -1 || p.queueID >= fsm.MaxQueues || p.maxMsgs < 1 || p.invisible < MinInvisible || p.invisible > MaxInvisible || p.poll < 0 {
			t.Fatalf("pop request %+v from %v", p, req.Ext)
		}
	})
}

// FuzzTagFilter: a tag filter matches a message by its tag exactly when
// it matches the tag's hash and the tag is one of its tags; a SQL92
// filter refuses bad expressions with ErrInvalidArgument.
func FuzzTagFilter(f *testing.F) {
	f.Add("a || b", "a")
	f.Add("*", "x")
	f.Add(" || a||", "a")
	f.Add("a > 1 AND TAGS = 'x'", "x")
	f.Fuzz(func(t *testing.T, expr, tag string) {
		tf := ParseTagFilter(expr)
		m := &fsm.Message{Tags: tag, Properties: map[string]string{"a": "2"}}
		if tf.matchMessage(m) && !tf.matchHash(fsm.TagHash(tag)) {
			t.Fatalf("%q matches tag %q but not its hash", expr, tag)
		}
		if tf != nil && tf.matchMessage(m) != tf.tags[tag] {
			t.Fatalf("%q: message with tag %q matched %v", expr, tag, tf.matchMessage(m))
		}
		sf, err := ParseSQLFilter(expr)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("SQL92 %q: refusal %v is not ErrInvalidArgument", expr, err)
			}
			return
		}
		sf.matchMessage(m)
		if !sf.readsBodies() {
			t.Fatal("a SQL92 filter does not read bodies")
		}
	})
}

// FuzzDecompress inflates arbitrary bodies flagged compressed: the
// result never exceeds the message size limit (a zlib bomb is refused
// after inflating at most the limit + 1 bytes), and refusals say why.
func FuzzDecompress(f *testing.F) {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	_, _ = zw.Write(bytes.Repeat([]byte("hello "), 100))
	_ = zw.Close()
	f.Add(b.Bytes(), int64(compat.SysFlagCompressed))
	b.Reset()
	zw = zlib.NewWriter(&b)
	_, _ = zw.Write(make([]byte, 1<<20)) // inflates past the limit below
	_ = zw.Close()
	f.Add(b.Bytes(), int64(compat.SysFlagCompressed))
	f.Add([]byte{0x78, 0x9c}, int64(compat.SysFlagCompressed|1<<8))
	n := &Node{cfg: Config{MaxMessageSize: 64 << 10}}
	f.Fuzz(func(t *testing.T, body []byte, sysFlag int64) {
		out, err := n.decompress(sysFlag, body)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrMessageTooLarge) && !errors.Is(err, errMessageRefused) {
				t.Fatalf("refusal %v has no known cause", err)
			}
			return
		}
		if len(out) > n.cfg.MaxMessageSize {
			t.Fatalf("inflated to %d bytes, limit %d", len(out), n.cfg.MaxMessageSize)
		}
	})
}

// FuzzReadGuardState reads an arbitrary vote-guard file: it loads, or
// fails naming the file; what loads writes back and loads the same.
func FuzzReadGuardState(f *testing.F) {
	f.Add([]byte(`{"pending":true,"floor":7}`))
	f.Add([]byte(`{"floor":18446744073709551615}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"floor":-1}`))
	dir := filepath.Join(f.TempDir(), "guard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "vote-guard.json")
	f.Fuzz(func(t *testing.T, file []byte) {
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		st, ok, err := readGuardState(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if !ok {
			t.Fatal("an existing file read as absent")
		}
		if err := writeGuardState(path, st); err != nil {
			t.Fatal(err)
		}
		if back, _, err := readGuardState(path); err != nil || back != st {
			t.Fatalf("round trip: %+v -> %+v (%v)", st, back, err)
		}
	})
}

// fuzzNode starts one serving single-node broker for a fuzz target (in
// each fuzzing process), with topic "t" created, stopped at cleanup.
func fuzzNode(f *testing.F) *Node {
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	cfg := Config{
		NodeID: "n0", DataDir: f.TempDir(), RaftBind: rl.Addr().String(), RaftListener: rl,
		Peers: []Peer{{ID: "n0", Addr: rl.Addr().String()}}, Bootstrap: true,
		ClientListener: cl, Logger: hclog.NewNullLogger(), // f's logger may not be used inside the target
	}
	n, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	f.Cleanup(func() { cancel(); n.Shutdown(); <-done })
	eventually(f, 20*time.Second, func() error {
		if !n.Status().Serving {
			return errors.New("not serving yet")
		}
		return nil
	})
	if _, err := n.CreateTopic(context.Background(), TopicSpec{Name: "t", Queues: 2}); err != nil {
		f.Fatal(err)
	}
	return n
}

// fuzzCallTimeout bounds one fuzzed request: long polls end with it.
const fuzzCallTimeout = 300 * time.Millisecond

// skipWireCodes change the node's membership or leadership: a fuzzed one
// would leave the rest of the campaign talking to a node that no longer
// leads.
var skipWireCodes = map[uint16]bool{
	wire.CodeAddNode: true, wire.CodePromoteNode: true, wire.CodeRemoveNode: true, wire.CodeTransfer: true,
}

// FuzzServeWire sends arbitrary request bodies under every request code
// to a live broker over its client port. The broker must answer each one
// (a body or a *wire.Error with a code from the table) without dropping
// the connection, and keep serving: a node status request on the same
// connection must succeed afterwards.
func FuzzServeWire(f *testing.F) {
	for _, s := range []struct {
		code uint16
		v    any
	}{
		{wire.CodeSend, wire.SendRequest{Messages: []wire.Message{{Topic: "t", Body: []byte("x"), ID: make([]byte, 16)}}}},
		{wire.CodePull, wire.PullRequest{Topic: "t", QueueID: 0, Offset: 0, MaxMessages: 4}},
		{wire.CodeCreateTopic, wire.TopicRequest{Name: "u", Queues: 2}},
		{wire.CodeTopicStatus, wire.TopicRequest{Name: "t"}},
		{wire.CodeCommitOffsets, wire.CommitOffsetsRequest{Group: "g", Offsets: []wire.QueueOffset{{Topic: "t", QueueID: 0, Offset: 0}}}},
		{wire.CodeQueryOffset, wire.QueryOffsetRequest{Group: "g", Topic: "t"}},
		{wire.CodeReceive, wire.ReceiveRequest{Group: "pg", Topic: "t", Max: 2}},
		{wire.CodeAck, wire.AckRequest{Group: "pg", Handles: []string{"0 1 30000 0 0 ga 0 0 t"}}},
		{wire.CodeHeartbeat, wire.HeartbeatRequest{Group: "g", ClientID: "c", Topics: []string{"t"}}},
		{wire.CodeLockQueues, wire.LockRequest{Group: "g", ClientID: "c", Queues: []wire.QueueOffset{{Topic: "t"}}}},
		{wire.CodeQueryMessages, wire.QueryMessagesRequest{Topic: "t", Key: "k"}},
		{wire.CodeListTx, wire.ListTxRequest{}},
		{wire.CodeNodeStatus, wire.Empty{}},
		{999, wire.Empty{}},
	} {
		b, err := msgpack.Marshal(s.v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.code, b)
	}
	n := fuzzNode(f)
	c, err := wire.Dial(context.Background(), n.ClientAddr(), 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	f.Fuzz(func(t *testing.T, code uint16, body []byte) {
		if skipWireCodes[code] {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), fuzzCallTimeout)
		defer cancel()
		var resp msgpack.RawMessage
		err := c.Call(ctx, code, msgpack.RawMessage(body), &resp)
		var we *wire.Error
		switch {
		case err == nil, errors.Is(err, context.DeadlineExceeded):
		case errors.As(err, &we):
			if wire.Info(we.Code).Name == "unknown error code" {
				t.Fatalf("code %d: answered with error code %d, which is not in the table: %v", code, we.Code, err)
			}
		default:
			t.Fatalf("code %d: %v", code, err)
		}
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		var st wire.NodeStatus
		if err := c.Call(sctx, wire.CodeNodeStatus, wire.Empty{}, &st); err != nil || !st.Serving {
			t.Fatalf("after code %d: node status %+v, %v", code, st, err)
		}
	})
}

// FuzzServeRemoting sends arbitrary RocketMQ remoting requests (code,
// header fields, body; JSON or binary header) to a live broker over its
// client port. It must answer every request (the client matches the
// answer by opaque), keep the connection open, and keep serving.
func FuzzServeRemoting(f *testing.F) {
	f.Add(int32(compat.ReqSendMessageV2), joinExt("a", "pg", "b", "t", "e", "0", "i", "TAGS\x01a\x02UNIQ_KEY\x0100000000000000000000000000000001\x02"), []byte("hello"), false)
	f.Add(int32(compat.ReqPullMessage), joinExt("consumerGroup", "g", "topic", "t", "queueId", "0", "queueOffset", "0", "maxMsgNums", "4", "sysFlag", "0", "commitOffset", "0", "suspendTimeoutMillis", "0", "subscription", "*"), []byte(nil), true)
	f.Add(int32(compat.ReqHeartBeat), []byte(nil), []byte(`{"clientID":"c","consumerDataSet":[{"groupName":"g","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","subscriptionDataSet":[{"topic":"t","subString":"*"}]}]}`), false)
	f.Add(int32(compat.ReqLockBatchMQ), []byte(nil), []byte(`{"consumerGroup":"g","clientId":"c","mqSet":[{"topic":"t","brokerName":"b","queueId":0}]}`), false)
	f.Add(int32(compat.ReqPopMessage), joinExt("consumerGroup", "pg", "topic", "t", "queueId", "-1", "maxMsgNums", "2", "invisibleTime", "30000", "pollTime", "0"), []byte(nil), false)
	f.Add(int32(compat.ReqBatchAckMessage), []byte(nil), []byte(`{"brokerName":"b","acks":[{"c":"pg","t":"t","r":"0","so":0,"q":0,"pt":1,"it":30000,"b":"Aw=="}]}`), false)
	f.Add(int32(compat.ReqQueryMessage), joinExt("topic", "t", "key", "k", "maxNum", "4", "beginTimestamp", "0", "endTimestamp", "9999999999999"), []byte(nil), false)
	f.Add(int32(compat.ReqViewMessageByID), joinExt("offset", "4096"), []byte(nil), false)
	f.Add(int32(compat.ReqEndTransaction), joinExt("producerGroup", "pg", "tranStateTableOffset", "0", "commitLogOffset", "0", "commitOrRollback", "8"), []byte(nil), false)
	f.Add(int32(compat.ReqConsumerSendMsgBack), joinExt("offset", "0", "group", "g", "delayLevel", "1", "originMsgId", "x", "originTopic", "t"), []byte(nil), false)
	n := fuzzNode(f)
	c, err := compat.Dial(context.Background(), n.ClientAddr())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	f.Fuzz(func(t *testing.T, code int32, ext, body []byte, binary bool) {
		req := compat.NewRequest(code, extFields(ext), body)
		if binary {
			req.Serialize = compat.SerializeBinary
		}
		if _, err := compat.AppendCommand(nil, req); err != nil {
			return // not encodable (a binary header holds an int16 code): no frame to send
		}
		ctx, cancel := context.WithTimeout(context.Background(), fuzzCallTimeout)
		defer cancel()
		resp, err := c.Call(ctx, req)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
		case err != nil:
			t.Fatalf("code %d: %v", code, err)
		case !resp.IsResponse():
			t.Fatalf("code %d: answer %+v is not a response", code, resp)
		}
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		probe, err := c.Call(sctx, compat.NewRequest(compat.ReqGetMaxOffset, map[string]string{"topic": "t", "queueId": "0"}, nil))
		if err != nil || probe.Code != compat.RespSuccess {
			t.Fatalf("after code %d: max offset probe %+v, %v", code, probe, err)
		}
	})
}
