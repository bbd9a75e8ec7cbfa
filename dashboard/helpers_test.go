package dashboard

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// apiHarness is a dashboard Server for a cluster, mounted on httptest.
type apiHarness struct {
	t   *testing.T
	srv *Server
	hs  *httptest.Server

	calls *factoryCalls
}

// factoryCalls counts the Admin factory's calls per access key.
type factoryCalls struct {
	mu sync.Mutex
	n  map[string]int
}

// with is h reporting to t (a subtest's).
func (h *apiHarness) with(t *testing.T) *apiHarness {
	c := *h
	c.t = t
	return &c
}

func newHarness(t *testing.T, nameServers []string, anonymous bool) *apiHarness {
	t.Helper()
	h := &apiHarness{t: t, calls: &factoryCalls{n: map[string]int{}}}
	log := e2e.TestLogger(t)
	srv, err := New(Config{
		Listen:      "127.0.0.1:0",
		Anonymous:   anonymous,
		CallTimeout: 10 * time.Second,
		Logger:      log,
		Admin: func(ak, _ string) (*client.Admin, error) {
			h.calls.mu.Lock()
			h.calls.n[ak]++
			h.calls.mu.Unlock()
			if ak == "refused" {
				return nil, io.ErrUnexpectedEOF // any error: the factory refuses the keys
			}
			return client.NewAdmin(client.AdminConfig{NameServers: nameServers, Timeout: 5 * time.Second, Logger: log})
		},
		Producer: func(_, _ string) (*client.Producer, error) {
			return client.NewProducer(client.ProducerConfig{NameServers: nameServers, AutoCreateQueues: -1, Logger: log, Trace: true})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	h.hs = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		h.hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h
}

// do sends a request (body marshalled as JSON unless a string) and
// decodes the JSON answer into out (if not nil), returning the status.
func (h *apiHarness) do(method, path string, body any, out any, hdr ...string) int {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.hs.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNoContent && ct != "application/json" {
		h.t.Fatalf("%s %s: Content-Type %q, want application/json; body %s", method, path, ct, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// want checks a request's status and, for errors, its code and field.
func (h *apiHarness) want(status int, code, field, method, path string, body any) apiError {
	h.t.Helper()
	var e apiError
	got := h.do(method, path, body, &e)
	if got != status || e.Code != code || e.Field != field {
		h.t.Fatalf("%s %s: got %d %+v, want %d code %q field %q", method, path, got, e, status, code, field)
	}
	if status >= 400 && e.Error == "" {
		h.t.Fatalf("%s %s: error answer without text", method, path)
	}
	return e
}

func (h *apiHarness) ok(status int, method, path string, body, out any) {
	h.t.Helper()
	var raw json.RawMessage
	if got := h.do(method, path, body, &raw); got != status {
		h.t.Fatalf("%s %s: got %d %s, want %d", method, path, got, raw, status)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}
