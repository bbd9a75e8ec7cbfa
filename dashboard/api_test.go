package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/e2e"
	"github.com/rmq-dev/rmq/fsm"
)

// deadLetter stores a message on topic and dead-letters it for group at
// once (as a consumer that fails it past its maximum would), returning its
// message id as the API prints it.
func deadLetter(t *testing.T, cl *e2e.Cluster, group, topic, body string) string {
	t.Helper()
	n := cl.Leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := []byte(fmt.Sprintf("%016d", time.Now().UnixNano()%1e16))
	res, err := n.Send(ctx, []*fsm.Message{{Topic: topic, ID: id, Body: []byte(body)}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if _, err := n.SendBack(ctx, broker.SendBackRequest{Group: group, Topic: topic, Offset: res[0].QueueOffset, DelayLevel: -1}); err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(fmt.Sprintf("%x", id))
}

// TestAPI walks every endpoint against a real in-process cluster: the
// happy path, bad input (400 naming the field) and unknown names (404).
func TestAPI(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{})
	h := newHarness(t, []string{cl.NamesrvAddr()}, true)

	// Each step builds on the ones before (topics made, messages sent).
	for _, step := range []struct {
		name string
		run  func(*testing.T, *apiHarness, *e2e.Cluster)
	}{
		{"cluster", apiCluster},
		{"topics", apiTopics},
		{"messages", apiMessages},
		{"groups", apiGroups},
		{"dlq", apiDLQ},
		{"transactions", apiTransactions},
		{"unknown endpoint", apiUnknown},
		{"transfer", apiTransfer}, // last: it moves the leader
	} {
		if !t.Run(step.name, func(t *testing.T) { step.run(t, h.with(t), cl) }) {
			return
		}
	}
}

// apiCluster: the group, its leader and nodes.
func apiCluster(t *testing.T, h *apiHarness, _ *e2e.Cluster) {
	var groups []brokerGroupJSON
	e2e.Eventually(t, 10*time.Second, func() error {
		h.ok(200, "GET", "/api/v1/cluster", nil, &groups)
		if len(groups) != 1 || groups[0].Leader == "" || len(groups[0].Nodes) != 3 {
			return fmt.Errorf("cluster %+v, want one group of 3 with a leader", groups)
		}
		return nil
	})
	if g := groups[0]; g.BrokerGroup != "broker-a" || g.Term == 0 || g.Nodes[0].Addr == "" {
		t.Fatalf("group %+v", g)
	}
}

// apiTopics: create, list, describe, update and delete, with bad input and unknown names.
func apiTopics(t *testing.T, h *apiHarness, _ *e2e.Cluster) {
	var tj topicJSON
	h.ok(201, "POST", "/api/v1/topics", map[string]any{"name": "orders", "queues": 2}, &tj)
	if tj.Name != "orders" || tj.Queues != 2 || tj.Perm != 6 || len(tj.BrokerGroups) != 1 {
		t.Fatalf("created %+v", tj)
	}
	h.want(409, "topic_exists", "", "POST", "/api/v1/topics", map[string]any{"name": "orders", "queues": 2})
	h.want(400, "invalid_argument", "name", "POST", "/api/v1/topics", map[string]any{"name": "bad name"})
	h.want(400, "invalid_argument", "name", "POST", "/api/v1/topics", map[string]any{})
	h.want(400, "invalid_argument", "queues", "POST", "/api/v1/topics", map[string]any{"name": "x", "queues": 5000})
	h.want(400, "invalid_argument", "queues", "POST", "/api/v1/topics", map[string]any{"name": "x", "queues": "two"})
	h.want(400, "invalid_argument", "perm", "POST", "/api/v1/topics", map[string]any{"name": "x", "perm": 3})
	h.want(400, "invalid_argument", "queue", "POST", "/api/v1/topics", map[string]any{"name": "x", "queue": 3})
	h.want(400, "invalid_argument", "body", "POST", "/api/v1/topics", "{")
	h.want(400, "invalid_argument", "body", "POST", "/api/v1/topics", "")
	var e apiError
	req, _ := http.NewRequest("POST", h.hs.URL+"/api/v1/topics", strings.NewReader("name=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("form POST: got %d %+v, want 400 (JSON only)", resp.StatusCode, e)
	}

	var list []topicJSON
	h.ok(200, "GET", "/api/v1/topics", nil, &list)
	found := false
	for _, t := range list {
		found = found || t.Name == "orders" && t.Queues == 2 && !t.System && !t.SampledAt.IsZero()
	}
	if !found {
		t.Fatalf("GET /api/v1/topics lacks orders: %+v", list)
	}
	h.want(400, "invalid_argument", "system", "GET", "/api/v1/topics?system=maybe", nil)

	var d topicDetail
	h.ok(200, "GET", "/api/v1/topics/orders", nil, &d)
	if len(d.QueueList) != 2 || d.QueueList[1].QueueID != 1 {
		t.Fatalf("topic detail %+v", d)
	}
	h.want(404, "topic_not_found", "", "GET", "/api/v1/topics/nope", nil)
	h.want(400, "invalid_argument", "topic", "GET", "/api/v1/topics/bad$name", nil)

	h.ok(200, "PATCH", "/api/v1/topics/orders", map[string]any{"queues": 3}, &tj)
	if tj.Queues != 3 || tj.Perm != 6 {
		t.Fatalf("updated %+v, want 3 queues, perm 6", tj)
	}
	h.want(400, "invalid_argument", "queues", "PATCH", "/api/v1/topics/orders", map[string]any{})
	h.want(400, "invalid_argument", "queues", "PATCH", "/api/v1/topics/orders", map[string]any{"queues": 0})
	h.want(400, "invalid_argument", "perm", "PATCH", "/api/v1/topics/orders", map[string]any{"perm": 1})
	h.want(400, "invalid_argument", "", "PATCH", "/api/v1/topics/orders", map[string]any{"queues": 1}) // queues only grow
	h.want(404, "topic_not_found", "", "PATCH", "/api/v1/topics/nope", map[string]any{"perm": 4})

	h.ok(201, "POST", "/api/v1/topics", map[string]any{"name": "scratch"}, nil)
	h.ok(204, "DELETE", "/api/v1/topics/scratch", nil, nil)
	h.want(404, "topic_not_found", "", "DELETE", "/api/v1/topics/scratch", nil)
	h.want(400, "invalid_argument", "topic", "DELETE", "/api/v1/topics/a%20b", nil)
}

// apiMessages: send, find by id, key and time, and the trace of the page's traced send.
func apiMessages(t *testing.T, h *apiHarness, _ *e2e.Cluster) {
	var sent sendResponse
	h.ok(201, "POST", "/api/v1/messages", map[string]any{"topic": "orders", "body": "hello dashboard",
		"tags": "new", "keys": []string{"order-1"}, "properties": map[string]string{"color": "blue"}}, &sent)
	if len(sent.MsgID) != 32 || sent.Topic != "orders" || sent.BrokerGroup != "broker-a" {
		t.Fatalf("sent %+v", sent)
	}
	h.want(404, "topic_not_found", "", "POST", "/api/v1/messages", map[string]any{"topic": "nope", "body": "x"})
	h.want(400, "invalid_argument", "topic", "POST", "/api/v1/messages", map[string]any{"body": "x"})
	h.want(400, "invalid_argument", "keys", "POST", "/api/v1/messages", map[string]any{"topic": "orders", "keys": []string{"a b"}})
	h.want(400, "invalid_argument", "body_base64", "POST", "/api/v1/messages", map[string]any{"topic": "orders", "body_base64": "!!"})
	h.want(400, "invalid_argument", "delay_ms", "POST", "/api/v1/messages", map[string]any{"topic": "orders", "delay_ms": -1})
	var bin sendResponse
	h.ok(201, "POST", "/api/v1/messages", map[string]any{"topic": "orders", "body_base64": "AP8="}, &bin)

	var ms []messageJSON
	h.ok(200, "GET", "/api/v1/messages/"+sent.MsgID, nil, &ms)
	if len(ms) != 1 || ms[0].Body != "hello dashboard" || ms[0].BodyEncoding != "text" || ms[0].Tags != "new" ||
		ms[0].Properties["color"] != "blue" || ms[0].Offset == nil || ms[0].Keys[0] != "order-1" {
		t.Fatalf("message %+v", ms)
	}
	h.ok(200, "GET", "/api/v1/messages?id="+strings.ToLower(bin.MsgID), nil, &ms)
	if len(ms) != 1 || ms[0].Body != "AP8=" || ms[0].BodyEncoding != "base64" || ms[0].BodyBytes != 2 {
		t.Fatalf("binary message %+v", ms)
	}
	h.want(404, "message_not_found", "", "GET", "/api/v1/messages/00000000000000000000000000000000", nil)
	h.want(400, "invalid_argument", "id", "GET", "/api/v1/messages/xyz", nil)

	h.ok(200, "GET", "/api/v1/messages?topic=orders&key=order-1", nil, &ms)
	if len(ms) != 1 || ms[0].MsgID != sent.MsgID {
		t.Fatalf("by key %+v", ms)
	}
	h.ok(200, "GET", "/api/v1/messages?topic=orders&since=10m&limit=10", nil, &ms)
	if len(ms) != 2 {
		t.Fatalf("by time: %d messages, want 2", len(ms))
	}
	h.ok(200, "GET", "/api/v1/messages?topic=orders&since=earliest&until="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), nil, &ms)
	if len(ms) != 0 {
		t.Fatalf("an hour ago: %d messages, want 0", len(ms))
	}
	h.want(400, "invalid_argument", "since", "GET", "/api/v1/messages?topic=orders&since=yesterday", nil)
	h.want(400, "invalid_argument", "until", "GET", "/api/v1/messages?topic=orders&since=1m&until=2m", nil)
	h.want(400, "invalid_argument", "limit", "GET", "/api/v1/messages?topic=orders&limit=-1", nil)
	h.want(400, "invalid_argument", "topic", "GET", "/api/v1/messages", nil)
	h.want(404, "topic_not_found", "", "GET", "/api/v1/messages?topic=nope", nil)

	// The page's producer traces its sends: the record shows up.
	var recs []struct {
		Kind   string `json:"kind"`
		Result string `json:"result"`
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		var raw json.RawMessage
		if st := h.do("GET", "/api/v1/messages/"+sent.MsgID+"/trace", nil, &raw); st != 200 {
			return fmt.Errorf("trace: %d %s", st, raw) // 404 until the first record is stored
		}
		if err := json.Unmarshal(raw, &recs); err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 || recs[0].Kind != "send" || recs[0].Result != "ok" {
			return fmt.Errorf("trace %+v, want a send record", recs)
		}
		return nil
	})
	h.want(400, "invalid_argument", "id", "GET", "/api/v1/messages/xyz/trace", nil)
	h.want(400, "invalid_argument", "trace_topic", "GET", "/api/v1/messages/"+sent.MsgID+"/trace?trace_topic=a%20b", nil)
	h.want(404, "topic_not_found", "", "GET", "/api/v1/messages/"+sent.MsgID+"/trace?trace_topic=no_traces", nil)
}

// apiGroups: reset offsets, list and describe.
func apiGroups(t *testing.T, h *apiHarness, _ *e2e.Cluster) {
	var rr resetResponse
	h.ok(200, "POST", "/api/v1/groups/g1/reset-offset", map[string]any{"topic": "orders", "to": "now"}, &rr)
	if len(rr.Offsets) != 3 {
		t.Fatalf("reset %+v, want 3 queues", rr)
	}
	var total uint64
	for _, o := range rr.Offsets {
		total += o.Offset
	}
	if total != 2 {
		t.Fatalf("reset to now: offsets sum %d, want 2 (both messages)", total)
	}
	h.ok(200, "POST", "/api/v1/groups/g1/reset-offset", map[string]any{"topic": "orders", "to": "earliest"}, &rr)
	var groups []groupJSON
	h.ok(200, "GET", "/api/v1/groups", nil, &groups)
	if len(groups) != 1 || groups[0].Group != "g1" || groups[0].Lag != 2 || groups[0].Topics[0] != "orders" {
		t.Fatalf("groups %+v", groups)
	}
	var g groupJSON
	h.ok(200, "GET", "/api/v1/groups/g1", nil, &g)
	if len(g.Queues) != 3 || g.Lag != 2 {
		t.Fatalf("group %+v", g)
	}
	h.want(404, "group_not_found", "", "GET", "/api/v1/groups/nobody", nil)
	h.want(400, "invalid_argument", "group", "GET", "/api/v1/groups/bad$group", nil)
	h.want(400, "invalid_argument", "to", "POST", "/api/v1/groups/g1/reset-offset", map[string]any{"topic": "orders"})
	h.want(400, "invalid_argument", "to", "POST", "/api/v1/groups/g1/reset-offset", map[string]any{"topic": "orders", "to": "soon"})
	h.want(400, "invalid_argument", "topic", "POST", "/api/v1/groups/g1/reset-offset", map[string]any{"to": "now"})
	h.want(404, "topic_not_found", "", "POST", "/api/v1/groups/g1/reset-offset", map[string]any{"topic": "nope", "to": "now"})
}

// apiDLQ: a dead letter listed and resent.
func apiDLQ(t *testing.T, h *apiHarness, cl *e2e.Cluster) {
	var dls []deadLetterJSON
	h.ok(200, "GET", "/api/v1/groups/g1/dlq", nil, &dls)
	if len(dls) != 0 {
		t.Fatalf("g1 has dead letters before any: %+v", dls)
	}
	id := deadLetter(t, cl, "g1", "orders", "poison pill")
	h.ok(200, "GET", "/api/v1/groups/g1/dlq?limit=10", nil, &dls)
	if len(dls) != 1 || dls[0].MsgID != id || dls[0].Body != "poison pill" || dls[0].RetryOf == nil || dls[0].RetryOf.Topic != "orders" {
		t.Fatalf("dead letters %+v, want %s", dls, id)
	}
	var g groupJSON
	h.ok(200, "GET", "/api/v1/groups/g1", nil, &g)
	if g.DeadLetters != 1 {
		t.Fatalf("group dead letters %d, want 1", g.DeadLetters)
	}
	h.want(400, "invalid_argument", "ids", "POST", "/api/v1/groups/g1/dlq/resend", map[string]any{})
	h.want(400, "invalid_argument", "ids", "POST", "/api/v1/groups/g1/dlq/resend", map[string]any{"ids": []string{"zz"}})
	h.want(404, "message_not_found", "", "POST", "/api/v1/groups/g1/dlq/resend", map[string]any{"ids": []string{"00000000000000000000000000000000"}})
	h.want(404, "dead_letter_queue_not_found", "", "POST", "/api/v1/groups/nobody/dlq/resend", map[string]any{"all": true})
	h.want(404, "group_not_found", "", "GET", "/api/v1/groups/nobody/dlq", nil)
	h.want(400, "invalid_argument", "limit", "GET", "/api/v1/groups/g1/dlq?limit=x", nil)
	var rs resendResponse
	h.ok(200, "POST", "/api/v1/groups/g1/dlq/resend", map[string]any{"ids": []string{id}}, &rs)
	if rs.Resent != 1 {
		t.Fatalf("resend %+v", rs)
	}
}

// apiTransactions: none open.
func apiTransactions(t *testing.T, h *apiHarness, _ *e2e.Cluster) {
	var tx transactionsJSON
	h.ok(200, "GET", "/api/v1/transactions", nil, &tx)
	if tx.Open == nil || len(tx.Open) != 0 {
		t.Fatalf("transactions %+v, want none open", tx)
	}
	h.want(400, "invalid_argument", "limit", "GET", "/api/v1/transactions?limit=-2", nil)
}

// apiUnknown: unknown paths and methods.
func apiUnknown(t *testing.T, h *apiHarness, _ *e2e.Cluster) {
	h.want(404, "no_endpoint", "", "GET", "/api/v1/bogus", nil)
	h.want(404, "no_endpoint", "", "PUT", "/api/v1/topics", nil)
}

// apiTransfer: leadership moves.
func apiTransfer(t *testing.T, h *apiHarness, cl *e2e.Cluster) {
	h.want(404, "broker_group_not_found", "", "POST", "/api/v1/cluster/groups/broker-z/transfer", map[string]any{})
	h.want(400, "invalid_argument", "to", "POST", "/api/v1/cluster/groups/broker-a/transfer", map[string]any{"to": "n9"})
	old := cl.LeaderID(10 * time.Second)
	h.want(400, "invalid_argument", "to", "POST", "/api/v1/cluster/groups/broker-a/transfer", map[string]any{"to": old})
	var tr transferResponse
	h.ok(200, "POST", "/api/v1/cluster/groups/broker-a/transfer", nil, &tr)
	e2e.Eventually(t, 10*time.Second, func() error {
		var groups []brokerGroupJSON
		h.ok(200, "GET", "/api/v1/cluster", nil, &groups)
		if groups[0].Leader == "" || groups[0].Leader == old {
			return fmt.Errorf("leader %q, want a new one (was %s)", groups[0].Leader, old)
		}
		return nil
	})
}

// TestAPIAuth: the credentials of each request reach the factory once per
// key; without Anonymous a request needs Basic auth or a login cookie.
func TestAPIAuth(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{Nodes: 1})
	h := newHarness(t, []string{cl.NamesrvAddr()}, false)

	var e apiError
	req, _ := http.NewRequest("GET", h.hs.URL+"/api/v1/cluster", nil)
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("anonymous: %d %q, want 401 with a Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if st := h.do("GET", "/api/v1/cluster", nil, &e, "X-Rmq-Dashboard", "1"); st != 401 || e.Code != "unauthenticated" {
		t.Fatalf("page request: %d %+v", st, e)
	}
	h.want(401, "unauthenticated", "", "GET", "/api/v1/whoami", nil)

	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("GET", h.hs.URL+"/api/v1/topics", nil)
		req.SetBasicAuth("ak1", "sk1")
		resp, err := h.hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("basic auth: %d", resp.StatusCode)
		}
	}
	req, _ = http.NewRequest("GET", h.hs.URL+"/api/v1/topics", nil)
	req.SetBasicAuth("refused", "x")
	if resp, err = h.hs.Client().Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("refused keys: %d, want 401", resp.StatusCode)
	}

	h.want(400, "invalid_argument", "access_key", "POST", "/api/v1/login", map[string]any{"secret_key": "x"})
	h.want(401, "unauthenticated", "", "POST", "/api/v1/login", map[string]any{"access_key": "refused", "secret_key": "x"})
	raw := `{"access_key":"ak2","secret_key":"sk2"}`
	req, _ = http.NewRequest("POST", h.hs.URL+"/api/v1/login", strings.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if resp, err = h.hs.Client().Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != 200 || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d %+v", resp.StatusCode, cookies)
	}
	cookie := cookies[0].Name + "=" + cookies[0].Value
	var who whoami
	if st := h.do("GET", "/api/v1/whoami", nil, &who, "Cookie", cookie); st != 200 || who.AccessKey != "ak2" || !who.LoginRequired {
		t.Fatalf("whoami: %d %+v", st, who)
	}
	if st := h.do("GET", "/api/v1/groups", nil, nil, "Cookie", cookie); st != 200 {
		t.Fatalf("with the cookie: %d", st)
	}
	if st := h.do("POST", "/api/v1/logout", nil, nil, "Cookie", cookie); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	if st := h.do("GET", "/api/v1/groups", nil, nil, "Cookie", cookie); st != 401 {
		t.Fatalf("after logout: %d, want 401", st)
	}
	h.calls.mu.Lock()
	defer h.calls.mu.Unlock()
	if c := h.calls.n; c["ak1"] != 1 || c["ak2"] != 1 || c[""] != 0 {
		t.Fatalf("factory calls %v, want one per key and none anonymous", c)
	}
}

// TestAPIClusterUnreachable: with no NameServer answering, the API says
// so with 503 instead of hanging or 500.
func TestAPIClusterUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	h := newHarness(t, []string{addr}, true)
	for _, path := range []string{"/api/v1/cluster", "/api/v1/topics", "/api/v1/groups", "/api/v1/transactions"} {
		h.want(503, "no_nameserver", "", "GET", path, nil)
	}
	h.want(503, "no_nameserver", "", "POST", "/api/v1/messages", map[string]any{"topic": "t", "body": "x"})
}

// TestPageServed: the embedded page and its assets are served.
func TestPageServed(t *testing.T) {
	h := newHarness(t, []string{"127.0.0.1:1"}, true)
	for path, want := range map[string]string{"/": "<title>rmq", "/app.js": "api/v1", "/app.css": "body"} {
		resp, err := h.hs.Client().Get(h.hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
}
