package dashboard

import (
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

const dashboardRules = `
accounts:
  - accessKey: ops
    secretKey: ops-secret
    admin: true
  - accessKey: app
    secretKey: app-secret
    topicPerms: ["orders=PUB|SUB"]
`

// TestAPIWithAccessControl: against brokers with access control, the API
// acts with each caller's keys: no keys or keys the brokers do not accept
// are 401 (the page asks to log in), a missing permission is 403 naming
// it, and what the keys allow is served.
func TestAPIWithAccessControl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte(dashboardRules), 0o600); err != nil {
		t.Fatal(err)
	}
	cl := e2e.StartCluster(t, e2e.Options{Nodes: 1, Broker: func(cfg *broker.Config) { cfg.ACLFile = path }})
	ns := []string{cl.NamesrvAddr()}
	log := e2e.TestLogger(t)
	srv, err := New(Config{Listen: "127.0.0.1:0", Anonymous: true, CallTimeout: 10 * time.Second, Logger: log,
		Admin: func(ak, sk string) (*client.Admin, error) {
			return client.NewAdmin(client.AdminConfig{NameServers: ns, Timeout: 5 * time.Second, Logger: log,
				Credentials: client.Credentials{AccessKey: ak, SecretKey: sk}})
		},
		Producer: func(ak, sk string) (*client.Producer, error) {
			return client.NewProducer(client.ProducerConfig{NameServers: ns, AutoCreateQueues: -1, Logger: log,
				Credentials: client.Credentials{AccessKey: ak, SecretKey: sk}})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &apiHarness{t: t, srv: srv, hs: httptest.NewServer(srv.Handler())}
	t.Cleanup(func() {
		h.hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	basic := func(ak, sk string) []string {
		return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(ak+":"+sk)), "X-Rmq-Dashboard", "1"}
	}
	call := func(status int, code, contains, method, path string, body any, hdr ...string) {
		t.Helper()
		var e apiError
		if got := h.do(method, path, body, &e, hdr...); got != status || e.Code != code || !strings.Contains(e.Error, contains) {
			t.Fatalf("%s %s: %d %+v, want %d %q containing %q", method, path, got, e, status, code, contains)
		}
	}

	call(401, "unauthenticated", "no access key", "GET", "/api/v1/topics", nil, "X-Rmq-Dashboard", "1")
	call(401, "unauthenticated", "signature mismatch", "POST", "/api/v1/login", map[string]any{"access_key": "ops", "secret_key": "wrong"})
	call(401, "unauthenticated", `no account has access key "nobody"`, "GET", "/api/v1/topics", nil, basic("nobody", "x")...)

	// The admin logs in and creates the topic; the app may send to it but
	// not create topics or send elsewhere.
	ops := basic("ops", "ops-secret")
	if st := h.do("POST", "/api/v1/topics", map[string]any{"name": "orders", "queues": 2}, nil, ops...); st != 201 {
		t.Fatalf("admin creates a topic: %d", st)
	}
	if st := h.do("POST", "/api/v1/topics", map[string]any{"name": "other", "queues": 1}, nil, ops...); st != 201 {
		t.Fatalf("admin creates a topic: %d", st)
	}
	app := basic("app", "app-secret")
	call(403, "access_denied", `access key "app" is not admin`, "POST", "/api/v1/topics", map[string]any{"name": "mine", "queues": 1}, app...)
	if st := h.do("POST", "/api/v1/messages", map[string]any{"topic": "orders", "body": "order 1"}, nil, app...); st != 200 && st != 201 {
		t.Fatalf("app sends to orders: %d", st)
	}
	call(403, "access_denied", `access key "app" has no PUB permission on topic "other"`, "POST", "/api/v1/messages",
		map[string]any{"topic": "other", "body": "x"}, app...)
}

// TestClientCacheBounded: keys sent by Basic auth are cached before the
// cluster judged them; a stream of different keys does not grow the
// cache past maxCachedClients.
func TestClientCacheBounded(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{Nodes: 1})
	h := newHarness(t, []string{cl.NamesrvAddr()}, true)
	for i := range maxCachedClients + 10 {
		if st := h.do("GET", "/api/v1/whoami", nil, nil, basicHeader(fmt.Sprintf("k%d", i), "s")...); st != 200 {
			t.Fatalf("whoami %d: %d", i, st)
		}
		if st := h.do("GET", "/api/v1/transactions", nil, nil, basicHeader(fmt.Sprintf("k%d", i), "s")...); st != 200 {
			t.Fatalf("transactions %d: %d", i, st)
		}
	}
	h.srv.auth.mu.Lock()
	n, order := len(h.srv.auth.byKey), len(h.srv.auth.order)
	h.srv.auth.mu.Unlock()
	if n != maxCachedClients || order != n {
		t.Fatalf("%d cached clients (%d in order), want %d", n, order, maxCachedClients)
	}
}

func basicHeader(ak, sk string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(ak+":"+sk))}
}
