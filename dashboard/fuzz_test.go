package dashboard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/client"
)

var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut}

// FuzzAPI sends arbitrary requests (method, path with query, JSON body,
// a session cookie) to the dashboard's HTTP API with no cluster behind it
// (the NameServer address refuses connections). Every API answer must be
// JSON with a status from the API's table and, for an error, a message;
// bad input is a 4xx, never a 500.
func FuzzAPI(f *testing.F) {
	for _, s := range []struct {
		method      uint8
		path, body  string
		jsonContent bool
	}{
		{0, "/api/v1/cluster", "", false},
		{1, "/api/v1/topics", `{"name":"t","queues":4,"perm":6}`, true},
		{2, "/api/v1/topics/t", `{"queues":8}`, true},
		{3, "/api/v1/topics/t", "", false},
		{0, "/api/v1/groups/g", "", false},
		{1, "/api/v1/groups/g/reset-offset", `{"topic":"t","to":"10m"}`, true},
		{0, "/api/v1/groups/g/dlq?limit=10", "", false},
		{1, "/api/v1/groups/g/dlq/resend", `{"ids":["AB"]}`, true},
		{0, "/api/v1/messages?topic=t&since=10m&until=now&key=k&limit=5", "", false},
		{1, "/api/v1/messages", `{"topic":"t","body":"hi","tags":"a","keys":["k"],"properties":{"a":"b"},"delay_level":2}`, true},
		{0, "/api/v1/messages/7F000001000000000000000000000001?topic=t", "", false},
		{0, "/api/v1/messages/x/trace", "", false},
		{0, "/api/v1/transactions?group=pg", "", false},
		{1, "/api/v1/login", `{"access_key":"a","secret_key":"b"}`, true},
		{1, "/api/v1/cluster/groups/ga/transfer", `{"to":"n1"}`, true},
		{0, "/api/v1/whoami", "", false},
		{0, "/api/v1/nothing", "", false},
		{1, "/api/v1/topics", `{"name":1}`, true},
		{1, "/api/v1/topics", `not json`, false},
	} {
		f.Add(s.method, s.path, s.body, s.jsonContent)
	}
	srv, err := New(Config{
		Listen:      "127.0.0.1:0",
		Anonymous:   true,
		CallTimeout: 100 * time.Millisecond,
		Logger:      hclog.NewNullLogger(),
		Admin: func(_, _ string) (*client.Admin, error) {
			return client.NewAdmin(client.AdminConfig{NameServers: []string{"127.0.0.1:1"}, Timeout: 100 * time.Millisecond, Logger: hclog.NewNullLogger()})
		},
		Producer: func(_, _ string) (*client.Producer, error) {
			return client.NewProducer(client.ProducerConfig{NameServers: []string{"127.0.0.1:1"}, AutoCreateQueues: -1, Logger: hclog.NewNullLogger()})
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, method uint8, path, body string, jsonContent bool) {
		if !strings.HasPrefix(path, "/api/") {
			return // the static pages are http.FileServer's
		}
		req, err := http.NewRequest(fuzzMethods[int(method)%len(fuzzMethods)], "http://dashboard"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		if jsonContent {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		status := rec.Code
		if status == http.StatusNoContent || status >= 300 && status < 400 ||
			status == http.StatusMethodNotAllowed && rec.Header().Get("Content-Type") != "application/json" {
			return // the mux's redirect to a clean path, or its 405 for a path of another method
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: status %d, Content-Type %q", req.Method, path, status, ct)
		}
		if status == http.StatusInternalServerError {
			t.Fatalf("%s %s %q: 500 %s", req.Method, path, body, rec.Body.Bytes())
		}
		if status >= 400 {
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Code == "" {
				t.Fatalf("%s %s: error %d body %s is not an API error", req.Method, path, status, rec.Body.Bytes())
			}
		}
	})
}
