package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/e2e"
)

// checkDevDashboard finds the dashboard URL rmq dev printed and asks its
// API for the cluster: the page and the API run inside rmq dev.
func checkDevDashboard(t *testing.T, stdout string) {
	t.Helper()
	m := regexp.MustCompile(`dashboard (http://\S+/)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("rmq dev printed no dashboard URL:\n%s", stdout)
	}
	e2e.Eventually(t, 20*time.Second, func() error {
		resp, err := http.Get(m[1] + "api/v1/cluster")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var groups []struct {
			Leader string `json:"leader"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&groups); err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("GET /api/v1/cluster: %d %v", resp.StatusCode, err)
		}
		if len(groups) != 1 || groups[0].Leader == "" {
			return fmt.Errorf("GET /api/v1/cluster: %+v, want one group with a leader", groups)
		}
		return nil
	})
}

// TestDashboardCommand: rmq dashboard serves the API for --namesrv until
// Ctrl-C; a topic made through the API is the CLI's topic too.
func TestDashboardCommand(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{Nodes: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"rmq", "--namesrv", cl.NamesrvAddr(), "dashboard", "--listen", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	var url string
	e2e.Eventually(t, 10*time.Second, func() error {
		m := regexp.MustCompile(`on (http://\S+/)`).FindStringSubmatch(stdout.String())
		if m == nil {
			return fmt.Errorf("no URL printed yet: %q %q", stdout.String(), stderr.String())
		}
		url = m[1]
		return nil
	})
	resp, err := http.Post(url+"api/v1/topics", "application/json", strings.NewReader(`{"name": "from-api", "queues": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/topics: %d", resp.StatusCode)
	}
	h := &harness{t: t, ns: cl.NamesrvAddr()}
	if out := h.ok("topic", "list"); !strings.Contains(out, "from-api") {
		t.Fatalf("rmq topic list lacks the API's topic:\n%s", out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("rmq dashboard: %v\n%s", err, stderr.String())
	}
}
