package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOnIncidentReportsElectionAndLostLeadership: a leadership transfer
// makes the old leader report that it lost leadership and the new one that
// it stood for election, each with its ID and term.
func TestOnIncidentReportsElectionAndLostLeadership(t *testing.T) {
	var mu sync.Mutex
	var got []string
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.OnIncident = func(reason string) {
			mu.Lock()
			got = append(got, reason)
			mu.Unlock()
		}
	})
	old := c.leader(10 * time.Second)
	mu.Lock()
	got = nil // the group's first election
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var to string
	for _, id := range c.ids {
		if id != old.cfg.NodeID {
			to = id
			break
		}
	}
	if err := old.TransferLeadership(ctx, to); err != nil {
		t.Fatal(err)
	}
	want := []string{old.cfg.NodeID + "-lost-leadership-term-", to + "-election-term-"}
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range want {
			if !slices.ContainsFunc(got, func(r string) bool { return strings.HasPrefix(r, w) }) {
				return fmt.Errorf("incidents %q, want ones starting %q", got, want)
			}
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, r := range got {
		if strings.ContainsAny(r, " /:") {
			t.Errorf("reason %q is not file-name safe", r)
		}
	}
}
