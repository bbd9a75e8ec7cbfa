package broker

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

func queryMsg(i int) *fsm.Message {
	return &fsm.Message{Topic: "orders", QueueID: uint32(i % 4), ID: []byte(fmt.Sprintf("id-%013d", i)),
		Keys: fmt.Sprintf("order-%d customer-%d", i, i%100), Body: []byte(fmt.Sprintf("body %d", i))}
}

// TestMessageQueries: by id, by key and by time, the same answer on
// every replica, after a restart, and (for what retention kept) after
// a purge; pending (delayed, transactional) messages are found too.
// RMQ_INDEX_MESSAGES sets the message count (default 5 000; the issue's
// measurement uses 1 000 000) and the test logs lookup times and index
// bytes per message.
func TestMessageQueries(t *testing.T) {
	total := 5000
	if v, err := strconv.Atoi(os.Getenv("RMQ_INDEX_MESSAGES")); err == nil && v > 0 {
		total = v
	}
	c := newTestCluster(t, 3, nil)
	createTopic(t, c, "orders", 4)
	l := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Second)
	defer cancel()
	start := time.Now()
	mid := time.Time{}
	for s := 0; s < total; s += 256 {
		var msgs []*fsm.Message
		for i := s; i < min(s+256, total); i++ {
			msgs = append(msgs, queryMsg(i))
		}
		if s >= total/2 && mid.IsZero() {
			mid = time.Now()
		}
		if _, err := l.Send(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	sendTime := time.Since(start)
	delayed := &fsm.Message{Topic: "orders", ID: []byte("id-delayed"), Keys: "later", Body: []byte("d"), Properties: map[string]string{PropDelaySec: "3600"}}
	half := &fsm.Message{Topic: "orders", ID: []byte("id-half"), Keys: "later", Body: []byte("h"),
		Properties: map[string]string{fsm.PropTransaction: "true", PropProducerGroup: "pg"}}
	res, err := l.Send(ctx, []*fsm.Message{delayed, half})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatal(err, res)
	}
	c.waitApplied(res[0].RaftIndex, 30*time.Second)

	probe := []int{0, 1, total / 3, total / 2, total - 1}
	for _, n := range c.live() {
		for _, i := range probe {
			got := n.MessagesByID([]byte(fmt.Sprintf("id-%013d", i)), 10)
			if len(got) != 1 || string(got[0].Body) != fmt.Sprintf("body %d", i) || got[0].Pending != "" {
				t.Fatalf("%s: by id %d: %+v", n.cfg.NodeID, i, got)
			}
		}
		byKey, err := n.MessagesByKey("orders", "customer-7", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if want := min((total+92)/100, 1000); len(byKey) != want {
			t.Fatalf("%s: by key customer-7: %d messages, want %d", n.cfg.NodeID, len(byKey), want)
		}
		if !sort.SliceIsSorted(byKey, func(a, b int) bool { return byKey[a].RaftIndex > byKey[b].RaftIndex }) {
			t.Fatalf("%s: by key not newest first", n.cfg.NodeID)
		}
		pending, _ := n.MessagesByKey("orders", "later", 10)
		if len(pending) != 2 || pending[0].Pending != "transaction" || pending[1].Pending != "delayed" {
			t.Fatalf("%s: pending messages by key: %+v", n.cfg.NodeID, pending)
		}
		if got, err := n.MessagesByKey("orders", "order-nope", 10); err != nil || len(got) != 0 {
			t.Fatalf("%s: an absent key: %v %v", n.cfg.NodeID, got, err)
		}
	}
	if _, err := l.MessagesByKey("orders", "two keys", 1); err == nil {
		t.Fatal("a key with a space was accepted")
	}
	byTime, more, err := l.MessagesByTime("orders", mid, time.Now().Add(time.Second), MaxQueryResults)
	if err != nil || len(byTime) == 0 || len(byTime) > MaxQueryResults || (len(byTime) < MaxQueryResults && more) {
		t.Fatalf("by time: %d messages, more %v, %v", len(byTime), more, err)
	}
	for _, m := range byTime {
		if m.StoreTime < mid.UnixMilli()-1 {
			t.Fatalf("by time: %+v stored before %v", m.StoreTime, mid)
		}
	}
	// Lookup latency and index size.
	st := l.fsm.IndexStats()
	var lat []time.Duration
	for k := 0; k < 1000; k++ {
		i := (k * 7919) % total
		t0 := time.Now()
		if got := l.MessagesByID([]byte(fmt.Sprintf("id-%013d", i)), 1); len(got) != 1 {
			t.Fatalf("by id %d: %d", i, len(got))
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	t.Logf("%d messages sent in %v; index: %d entries in %d files, %.1f entries and %.0f bytes (of sparse files) per message; lookup by id p50 %v p99 %v",
		total, sendTime.Round(time.Millisecond), st.Entries, st.Files, float64(st.Entries)/float64(total+2),
		float64(st.Entries)*20/float64(total+2), lat[len(lat)/2], lat[len(lat)*99/100])

	// A restarted follower answers the same.
	var follower string
	for _, n := range c.live() {
		if n != l {
			follower = n.cfg.NodeID
			break
		}
	}
	c.stop(follower)
	f := c.start(follower)
	c.waitApplied(res[0].RaftIndex, 30*time.Second)
	for _, i := range probe {
		if got := f.MessagesByID([]byte(fmt.Sprintf("id-%013d", i)), 10); len(got) != 1 {
			t.Fatalf("restarted %s: by id %d: %d results", follower, i, len(got))
		}
	}
	if got, _ := f.MessagesByKey("orders", "customer-7", 1000); len(got) != min((total+92)/100, 1000) {
		t.Fatalf("restarted %s: by key: %d", follower, len(got))
	}
}

// BenchmarkReadSQL92 reads a backlog of 1 KiB messages with 10
// properties, unfiltered and through a SQL92 filter that 10 % match;
// msgs/s counts delivered and skipped messages alike.
func BenchmarkReadSQL92(b *testing.B) {
	c := newTestCluster(b, 1, nil)
	createTopic(b, c, "orders", 1)
	l := c.leader(10 * time.Second)
	const backlog = 20000
	body := make([]byte, 1024)
	for s := 0; s < backlog; s += 256 {
		var msgs []*fsm.Message
		for i := s; i < min(s+256, backlog); i++ {
			props := map[string]string{}
			for k := 0; k < 10; k++ {
				props[fmt.Sprintf("p%d", k)] = strconv.Itoa((i + k) % 50)
			}
			props["region"] = []string{"eu", "us", "apac", "latam", "mena", "na", "sa", "oc", "af", "cn"}[i%10]
			msgs = append(msgs, &fsm.Message{Topic: "orders", ID: uniqueID(i), Body: body, Properties: props})
		}
		if _, err := l.Send(context.Background(), msgs); err != nil {
			b.Fatal(err)
		}
	}
	sqlFilter, err := ParseSQLFilter("region = 'eu' AND p3 >= 0")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		filter *TagFilter
	}{{"unfiltered", nil}, {"sql92-10pct", sqlFilter}} {
		b.Run(tc.name, func(b *testing.B) {
			scanned, delivered := 0, 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for off := uint64(0); off < backlog; {
					res, err := l.readOnce(ReadRequest{Topic: "orders", Offset: off, MaxMessages: 32, MaxBytes: 4 << 20, Filter: tc.filter})
					if err != nil {
						b.Fatal(err)
					}
					delivered += len(res.Messages)
					scanned += int(res.NextOffset - off)
					off = res.NextOffset
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(scanned)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(delivered)/float64(scanned), "matched")
		})
	}
}
