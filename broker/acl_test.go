package broker

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/rmq-dev/rmq/acl"
	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

const brokerRules = `
accounts:
  - accessKey: admin
    secretKey: admin-secret
    admin: true
  - accessKey: prod
    secretKey: prod-secret
    topicPerms: ["orders=PUB"]
  - accessKey: cons
    secretKey: cons-secret
    topicPerms: ["orders=SUB"]
    groupPerms: ["billing=SUB"]
  - accessKey: far
    secretKey: far-secret
    whiteRemoteAddress: 10.0.0.*
    defaultTopicPerm: PUB|SUB
`

// aclNode runs a serving node with access control from rules (written to
// a file it returns) and the topics orders and other.
func aclNode(t *testing.T, rules string) (*Node, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	writeRules(t, path, rules)
	n, _ := remotingNodeWith(t, func(c *Config) {
		c.ACLFile = path
		c.ACL.ReloadInterval = 10 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, topic := range []string{"orders", "other"} {
		if _, err := n.CreateTopic(ctx, TopicSpec{Name: topic, Queues: 1}); err != nil {
			t.Fatal(err)
		}
	}
	return n, path
}

func writeRules(t *testing.T, path, rules string) {
	t.Helper()
	// Write and rename, as an operator's tooling would: the watcher
	// never reads a half-written file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// wireClient dials n's client port, signing with ak/sk if ak is set.
func wireClient(t *testing.T, n *Node, ak, sk string) *wire.Conn {
	t.Helper()
	c, err := wire.Dial(t.Context(), n.ClientAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetCredentials(wire.Credentials{AccessKey: ak, SecretKey: sk})
	return c
}

func aclWireCall(t *testing.T, c *wire.Conn, code uint16, req, resp any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return c.Call(ctx, code, req, resp)
}

// wantDenied checks err is a CodeAccessDenied answer naming want.
func wantDenied(t *testing.T, what string, err error, want string) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeAccessDenied || !strings.Contains(we.Message, want) {
		t.Fatalf("%s: got %v, want access denied naming %q", what, err, want)
	}
}

func aclSend(topics ...string) *wire.SendRequest {
	req := &wire.SendRequest{}
	for i, topic := range topics {
		req.Messages = append(req.Messages, wire.Message{Topic: topic, Body: []byte("m" + strconv.Itoa(i)), ID: make([]byte, 16)})
	}
	return req
}

// TestACLWire: on rmq's protocol, unsigned, wrongly signed, replayed and
// unauthorised requests are refused with CodeAccessDenied naming what is
// missing, and authorised ones are served.
func TestACLWire(t *testing.T) {
	n, _ := aclNode(t, brokerRules)

	wantDenied(t, "unsigned", aclWireCall(t, wireClient(t, n, "", ""), wire.CodeSend, aclSend("orders"), nil),
		"acl: request carries no access key")
	wantDenied(t, "unknown key", aclWireCall(t, wireClient(t, n, "nobody", "x"), wire.CodeListTopics, wire.Empty{}, nil),
		`no account has access key "nobody"`)
	wantDenied(t, "wrong secret", aclWireCall(t, wireClient(t, n, "prod", "guess"), wire.CodeSend, aclSend("orders"), nil),
		`acl: signature mismatch for access key "prod"`)
	wantDenied(t, "white list", aclWireCall(t, wireClient(t, n, "far", "far-secret"), wire.CodeListTopics, wire.Empty{}, nil),
		`acl: 127.0.0.1 not in white list of access key "far"`)

	// A replay: a correctly signed request from 10 minutes ago.
	body, err := msgpack.Marshal(aclSend("orders"))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-10 * time.Minute).UnixMilli()
	f := rawCall(t, n.ClientAddr(), wire.Frame{Code: wire.CodeSend, ID: 1, Body: body,
		Auth: &wire.Auth{AccessKey: "prod", Timestamp: old, Signature: wire.Sign([]byte("prod-secret"), wire.CodeSend, old, body)}})
	var eb wire.ErrorBody
	if err := wire.Unmarshal(f.Body, &eb); err != nil || f.Code != wire.CodeAccessDenied || !strings.Contains(eb.Message, "outside the 2m0s window") {
		t.Fatalf("replayed send: code %d %q (%v), want access denied outside the window", f.Code, eb.Message, err)
	}
	// The same request signed now is served.
	now := time.Now().UnixMilli()
	f = rawCall(t, n.ClientAddr(), wire.Frame{Code: wire.CodeSend, ID: 1, Body: body,
		Auth: &wire.Auth{AccessKey: "prod", Timestamp: now, Signature: wire.Sign([]byte("prod-secret"), wire.CodeSend, now, body)}})
	if f.Code != wire.CodeOK {
		t.Fatalf("fresh signed send: code %d, want ok", f.Code)
	}

	prod := wireClient(t, n, "prod", "prod-secret")
	var sr wire.SendResponse
	if err := aclWireCall(t, prod, wire.CodeSend, aclSend("orders", "other", "orders"), &sr); err != nil {
		t.Fatal(err)
	}
	if len(sr.Results) != 3 || sr.Results[0].ErrorCode != 0 || sr.Results[2].ErrorCode != 0 {
		t.Fatalf("send to orders: %+v, want stored", sr.Results)
	}
	if r := sr.Results[1]; r.ErrorCode != wire.CodeAccessDenied || !strings.Contains(r.Error, `acl: access key "prod" has no PUB permission on topic "other"`) {
		t.Fatalf("send to other: %+v, want access denied naming PUB on other", r)
	}
	atomic := aclSend("orders", "other")
	atomic.Atomic = true
	wantDenied(t, "atomic send", aclWireCall(t, prod, wire.CodeSend, atomic, nil), `no PUB permission on topic "other"`)
	if err := aclWireCall(t, prod, wire.CodeSend, &wire.SendRequest{Messages: aclSend("fresh").Messages, AutoCreateQueues: 4}, &sr); err != nil {
		t.Fatal(err)
	}
	if sr.Results[0].ErrorCode != wire.CodeAccessDenied {
		t.Fatalf("auto-creating send: %+v, want access denied", sr.Results[0])
	}
	if _, ok := n.fsm.Topic("fresh"); ok {
		t.Fatal("a refused send auto-created its topic")
	}
	wantDenied(t, "producer pulls", aclWireCall(t, prod, wire.CodePull, &wire.PullRequest{Topic: "orders"}, nil),
		`acl: access key "prod" has no SUB permission on topic "orders"`)
	wantDenied(t, "producer creates a topic", aclWireCall(t, prod, wire.CodeCreateTopic, &wire.TopicRequest{Name: "t2", Queues: 1}, nil),
		`acl: access key "prod" is not admin, which creating a topic needs`)
	byID := &wire.QueryMessagesRequest{ID: make([]byte, 16)}
	wantDenied(t, "producer queries by id", aclWireCall(t, prod, wire.CodeQueryMessages, byID, nil), `no SUB permission on topic "orders"`)
	if err := aclWireCall(t, prod, wire.CodeNodeStatus, wire.Empty{}, &wire.NodeStatus{}); err != nil {
		t.Fatalf("node status with a valid signature: %v", err)
	}

	cons := wireClient(t, n, "cons", "cons-secret")
	var pr wire.PullResponse
	if err := aclWireCall(t, cons, wire.CodePull, &wire.PullRequest{Topic: "orders", MaxMessages: 10}, &pr); err != nil {
		t.Fatal(err)
	}
	if len(pr.Messages) != 3 { // the fresh signed one and the two of the mixed send
		t.Fatalf("pulled %d messages, want 3", len(pr.Messages))
	}
	var qr wire.QueryMessagesResponse
	if err := aclWireCall(t, cons, wire.CodeQueryMessages, byID, &qr); err != nil || len(qr.Messages) == 0 {
		t.Fatalf("consumer queries by id: %d messages, %v; want some", len(qr.Messages), err)
	}
	if err := aclWireCall(t, cons, wire.CodeHeartbeat, &wire.HeartbeatRequest{Group: "billing", ClientID: "c1", Mode: wire.ModeClustering, Topics: []string{"orders"}}, nil); err != nil {
		t.Fatal(err)
	}
	wantDenied(t, "other group", aclWireCall(t, cons, wire.CodeHeartbeat, &wire.HeartbeatRequest{Group: "other", ClientID: "c1", Mode: wire.ModeClustering, Topics: []string{"orders"}}, nil),
		`acl: access key "cons" has no SUB permission on group "other"`)
	wantDenied(t, "other topic", aclWireCall(t, cons, wire.CodeCommitOffsets, &wire.CommitOffsetsRequest{Group: "billing", Offsets: []wire.QueueOffset{{Topic: "other"}}}, nil),
		`no SUB permission on topic "other"`)
	wantDenied(t, "offset reset", aclWireCall(t, cons, wire.CodeResetOffsets, &wire.ResetOffsetsRequest{Group: "billing", Topic: "orders"}, nil),
		"is not admin")

	adm := wireClient(t, n, "admin", "admin-secret")
	if err := aclWireCall(t, adm, wire.CodeCreateTopic, &wire.TopicRequest{Name: "t2", Queues: 1}, nil); err != nil {
		t.Fatalf("admin creates a topic: %v", err)
	}
}

// rawCall sends one frame on a fresh connection and returns the answer.
func rawCall(t *testing.T, addr string, f wire.Frame) wire.Frame {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(wire.AppendFrame(nil, f)); err != nil {
		t.Fatal(err)
	}
	resp, err := wire.ReadFrame(nc, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestACLHotReload: a refused request becomes allowed once the file
// grants it, without a restart; a bad file keeps the rules in force.
func TestACLHotReload(t *testing.T) {
	n, path := aclNode(t, brokerRules)
	prod := wireClient(t, n, "prod", "prod-secret")
	pull := &wire.PullRequest{Topic: "orders"}
	wantDenied(t, "before", aclWireCall(t, prod, wire.CodePull, pull, nil), `no SUB permission on topic "orders"`)

	writeRules(t, path, strings.Replace(brokerRules, `["orders=PUB"]`, `["orders=PUB|SUB"]`, 1))
	eventually(t, 10*time.Second, func() error { return aclWireCall(t, prod, wire.CodePull, pull, nil) })

	writeRules(t, path, "accounts: [{accessKey: prod")
	if _, err := n.acl.w.Reload(); err == nil || !strings.Contains(err.Error(), "keeping the previous rules") {
		t.Fatalf("bad file: %v, want an error keeping the rules", err)
	}
	if err := aclWireCall(t, prod, wire.CodePull, pull, nil); err != nil {
		t.Fatalf("after a bad file: %v, want the previous rules", err)
	}
	writeRules(t, path, brokerRules)
	eventually(t, 10*time.Second, func() error {
		if err := aclWireCall(t, prod, wire.CodePull, pull, nil); !errors.Is(err, acl.ErrDenied) && err == nil {
			return errors.New("still allowed")
		}
		return nil
	})
}

// TestACLConfig: a node does not start with a bad rules file.
func TestACLConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acl.yml")
	writeRules(t, path, "accounts: [{accessKey: a, secretKey: short}]")
	cfg := singleNodeConfig(t)
	cfg.ACLFile = path
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "secretKey must be at least 6") {
		t.Fatalf("New with a bad rules file: %v", err)
	}
}

// signedCall signs req as a RocketMQ 4.x client (AccessKey, Signature)
// and calls it.
func signedCall(t *testing.T, c *compat.Client, ak, sk string, code int32, ext map[string]string, body []byte) *compat.Command {
	t.Helper()
	req := compat.NewRequest(code, ext, body)
	if ak != "" {
		compat.Sign(req, ak, sk)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := c.Call(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", compat.RequestName(code), err)
	}
	return resp
}

func sendExt(topic string, born time.Time) map[string]string {
	return map[string]string{
		"producerGroup": "pg", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": "0", "sysFlag": "0", "bornTimestamp": strconv.FormatInt(born.UnixMilli(), 10),
		"flag": "0", "properties": "", "reconsumeTimes": "0",
	}
}

// TestACLRemoting: the RocketMQ remoting listener refuses unsigned,
// wrongly signed, replayed (send's bornTimestamp outside the window) and
// unauthorised requests with NO_PERMISSION and the acl message.
func TestACLRemoting(t *testing.T) {
	n, _ := aclNode(t, brokerRules)
	c, err := compat.Dial(t.Context(), n.ClientAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	now := time.Now()
	pull := func() map[string]string {
		return map[string]string{"consumerGroup": "billing", "topic": "orders", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32"}
	}
	for _, tc := range []struct {
		name, ak, sk string
		code         int32
		ext          map[string]string
		want         string // "" for served
	}{
		{"unsigned", "", "", compat.ReqSendMessage, sendExt("orders", now), "acl: request carries no access key"},
		{"wrong secret", "prod", "guess", compat.ReqSendMessage, sendExt("orders", now), `acl: signature mismatch for access key "prod"`},
		{"replayed", "prod", "prod-secret", compat.ReqSendMessage, sendExt("orders", now.Add(-10*time.Minute)), "outside the 2m0s window"},
		{"unauthorised", "prod", "prod-secret", compat.ReqSendMessage, sendExt("other", now), `acl: access key "prod" has no PUB permission on topic "other"`},
		{"producer pulls", "prod", "prod-secret", compat.ReqPullMessage, pull(), `acl: access key "prod" has no SUB permission on group "billing"`},
		{"not admin", "cons", "cons-secret", compat.ReqUpdateAndCreateTopic, map[string]string{"topic": "t3", "readQueueNums": "1", "writeQueueNums": "1"}, "is not admin"},
		{"white list", "far", "far-secret", compat.ReqPullMessage, pull(), "127.0.0.1 not in white list"},
		{"V2 names the topic by letter", "prod", "prod-secret", compat.ReqSendMessageV2, map[string]string{"a": "pg", "topic": "orders", "b": "other",
			"e": "0", "g": strconv.FormatInt(now.UnixMilli(), 10)}, `no PUB permission on topic "other"`},
		{"V2 replayed", "prod", "prod-secret", compat.ReqSendMessageV2, map[string]string{"a": "pg", "b": "orders",
			"e": "0", "g": strconv.FormatInt(now.Add(-time.Hour).UnixMilli(), 10)}, "outside the 2m0s window"},
		{"authorised send", "prod", "prod-secret", compat.ReqSendMessage, sendExt("orders", now), ""},
		{"authorised V2 send", "prod", "prod-secret", compat.ReqSendMessageV2, map[string]string{"a": "pg", "b": "orders",
			"e": "0", "g": strconv.FormatInt(now.UnixMilli(), 10)}, ""},
		{"authorised pull", "cons", "cons-secret", compat.ReqPullMessage, pull(), ""},
		{"admin", "admin", "admin-secret", compat.ReqUpdateAndCreateTopic, map[string]string{"topic": "t3", "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := signedCall(t, c, tc.ak, tc.sk, tc.code, tc.ext, []byte("body"))
			if tc.want == "" {
				if resp.Code != compat.RespSuccess {
					t.Fatalf("%s (%d) %q, want success", compat.ResponseName(resp.Code), resp.Code, resp.Remark)
				}
				return
			}
			if resp.Code != compat.RespNoPermission || !strings.Contains(resp.Remark, tc.want) {
				t.Fatalf("%s (%d) %q, want NO_PERMISSION naming %q", compat.ResponseName(resp.Code), resp.Code, resp.Remark, tc.want)
			}
		})
	}
}
