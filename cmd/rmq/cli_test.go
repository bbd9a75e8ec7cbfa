package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rmq-dev/rmq/e2e"
	"github.com/rmq-dev/rmq/namesrv"
	"github.com/rmq-dev/rmq/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// harness runs rmq commands against one in-process cluster.
type harness struct {
	t  *testing.T
	ns string
}

func newCLI(t *testing.T) *harness {
	c := e2e.StartCluster(t, e2e.Options{})
	return &harness{t: t, ns: c.NamesrvAddr()}
}

// run calls run() with the cluster's NameServer and returns stdout,
// stderr and the error; a command has 60s before the test gives up.
func (c *harness) run(args ...string) (string, string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return c.runCtx(ctx, args...)
}

func (c *harness) runCtx(ctx context.Context, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	err := run(ctx, append([]string{"rmq", "--namesrv", c.ns, "--log-level", "warn"}, args...), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// ok runs a command that must succeed and returns its stdout.
func (c *harness) ok(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("rmq %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// fails runs a command that must fail with an error containing want.
func (c *harness) fails(want string, args ...string) {
	c.t.Helper()
	out, _, err := c.run(args...)
	if err == nil {
		c.t.Fatalf("rmq %s: succeeded, want error %q\nstdout:\n%s", strings.Join(args, " "), want, out)
	}
	if !strings.Contains(err.Error(), want) {
		c.t.Errorf("rmq %s: got error %q, want it to contain %q", strings.Join(args, " "), err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		c.t.Errorf("rmq %s: error %q spans lines, want one line", strings.Join(args, " "), err)
	}
	if out != "" {
		c.t.Errorf("rmq %s: failed but printed to stdout:\n%s", strings.Join(args, " "), out)
	}
}

func decode[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, out)
	}
	return v
}

// jsonLines decodes consume's --output json stream.
func jsonLines(t *testing.T, out string) []consumedMessage {
	t.Helper()
	var msgs []consumedMessage
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m consumedMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("decode line %q: %v", line, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func bodies(msgs []consumedMessage) map[string]int {
	out := map[string]int{}
	for _, m := range msgs {
		out[m.Body]++
	}
	return out
}

// Values that change from run to run, replaced before comparing with a
// golden file.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "<time>"},
	{regexp.MustCompile(`[0-9A-F]{32}`), "<msg-id>"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "<addr>"},
}

// golden compares got, with volatile values masked, to testdata/name.
func golden(t *testing.T, name, got string) {
	t.Helper()
	for _, v := range volatile {
		got = v.re.ReplaceAllString(got, v.with)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got), go test -update rewrites it:\n%s", name, diff)
	}
}

// withStdin points os.Stdin at a file holding content (or at /dev/null
// when content is nil) until the test ends. Tests using it must not be
// parallel.
func withStdin(t *testing.T, content []byte) {
	t.Helper()
	path := os.DevNull
	if content != nil {
		path = filepath.Join(t.TempDir(), "stdin")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = f
	t.Cleanup(func() {
		os.Stdin = old
		_ = f.Close()
	})
}

// TestTopicSendConsumeGroup walks through a topic's life on one cluster:
// create, list, send every way, consume every way, group progress and
// reset, delete.
func TestTopicSendConsumeGroup(t *testing.T) {
	c := newCLI(t)

	t.Run("topic create", func(t *testing.T) {
		out := c.ok("topic", "create", "orders", "--queues", "4")
		golden(t, "topic_create.golden", out)
		c.ok("topic", "create", "tagged", "--queues", "1", "--output", "json")
		c.fails(`topic "orders" already exists`, "topic", "create", "orders")
	})

	t.Run("topic list", func(t *testing.T) {
		golden(t, "topic_list.golden", c.ok("topic", "list"))
		golden(t, "topic_list.json.golden", c.ok("topic", "list", "-o", "json"))
		rows := decode[topicRows](t, c.ok("--output", "json", "topic", "list"))
		if len(rows) != 2 || rows[0].Topic != "orders" || rows[0].Queues != 4 || rows[0].Perm != 6 {
			t.Errorf("topic list: got %+v, want orders (4 queues, perm 6) and tagged", rows)
		}
	})

	sent := 0 // messages in "orders"
	t.Run("send argument", func(t *testing.T) {
		out := c.ok("send", "orders", "hello", "--tag", "paid", "--key", "k1", "--key", "k2",
			"--property", "a=1,2", "--property", "b=x=y", "--sharding-key", "customer-7")
		golden(t, "send.golden", out)
		rows := decode[sendRows](t, c.ok("-o", "json", "send", "orders", "hello again", "--sharding-key", "customer-7"))
		if len(rows) != 1 || rows[0].Topic != "orders" || rows[0].Offset != 1 || len(rows[0].MsgID) != 32 {
			t.Errorf("send: got %+v, want one row at offset 1 of the sharding key's queue", rows)
		}
		sent += 2
	})
	t.Run("send stdin", func(t *testing.T) {
		withStdin(t, []byte("from stdin dash"))
		c.ok("send", "orders", "-")
		withStdin(t, []byte("from stdin file flag"))
		c.ok("send", "orders", "--file", "-")
		withStdin(t, []byte("from stdin piped"))
		c.ok("send", "orders")
		sent += 3
	})
	t.Run("send file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "body.txt")
		if err := os.WriteFile(path, []byte("from a file"), 0o600); err != nil {
			t.Fatal(err)
		}
		c.ok("send", "orders", "-f", path)
		sent++
	})
	t.Run("send count", func(t *testing.T) {
		rows := decode[sendRows](t, c.ok("send", "orders", "copy", "--count", "4", "-o", "json"))
		ids := map[string]bool{}
		for _, r := range rows {
			ids[r.MsgID] = true
		}
		if len(rows) != 4 || len(ids) != 4 {
			t.Errorf("send --count 4: got %+v, want 4 rows with distinct ids", rows)
		}
		out := c.ok("send", "orders", "bulk", "--count", "40")
		if !strings.HasPrefix(out, "sent 40 messages to orders in ") || !strings.Contains(out, "0 failed") {
			t.Errorf("send --count 40: got %q, want a summary of 40 sent, 0 failed", out)
		}
		s := decode[sendSummary](t, c.ok("send", "orders", "bulk", "--count", "40", "-o", "json"))
		total := 0
		for _, q := range s.Queues {
			total += q.Messages
		}
		if s.Sent != 40 || s.Failed != 0 || total != 40 || len(s.Queues) != 4 {
			t.Errorf("send --count 40 json: got %+v, want 40 sent over 4 queues", s)
		}
		sent += 84
	})

	t.Run("topic describe", func(t *testing.T) {
		d := decode[topicDescription](t, c.ok("topic", "describe", "orders", "-o", "json"))
		if d.Messages != uint64(sent) || len(d.Queues) != 4 {
			t.Errorf("describe: got %d messages in %d queues, want %d in 4", d.Messages, len(d.Queues), sent)
		}
		out := c.ok("topic", "describe", "tagged")
		golden(t, "topic_describe_empty.golden", out)
	})

	t.Run("consume from first", func(t *testing.T) {
		out, errOut, err := c.run("consume", "orders", "--group", "g1", "--from", "first", "--count", fmt.Sprint(sent), "-o", "json")
		if err != nil {
			t.Fatalf("consume: %v\n%s", err, errOut)
		}
		msgs := jsonLines(t, out)
		got := bodies(msgs)
		want := map[string]int{"hello": 1, "hello again": 1, "from stdin dash": 1, "from stdin file flag": 1,
			"from stdin piped": 1, "from a file": 1, "copy": 4, "bulk": 80}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("consumed bodies (-want +got):\n%s", diff)
		}
		for _, m := range msgs {
			if m.Body == "hello" {
				wantMsg := consumedMessage{Topic: "orders", Tags: "paid", Keys: []string{"k1", "k2"},
					Properties: map[string]string{"a": "1,2", "b": "x=y"}, Body: "hello"}
				gotMsg := consumedMessage{Topic: m.Topic, Tags: m.Tags, Keys: m.Keys, Properties: m.Properties, Body: m.Body}
				if diff := cmp.Diff(wantMsg, gotMsg); diff != "" {
					t.Errorf("message with tag, keys and properties (-want +got):\n%s", diff)
				}
			}
		}
		if !strings.Contains(errOut, fmt.Sprintf("consumed %d messages", sent)) {
			t.Errorf("stderr %q, want the consumed count", errOut)
		}
	})

	t.Run("group describe", func(t *testing.T) {
		// Producers start round robin at a random queue, so per-queue
		// offsets vary run to run; the totals are checked below.
		rowOffsets := regexp.MustCompile(`(?m)^(orders\s+broker-a\s+\d+\s+)\d\d(\s+)\d\d`)
		jsonOffsets := regexp.MustCompile(`"(broker_offset|consumer_offset)": \d+`)
		golden(t, "group_describe.golden", rowOffsets.ReplaceAllString(c.ok("group", "describe", "g1"), "${1}NN${2}NN"))
		golden(t, "group_describe.json.golden", jsonOffsets.ReplaceAllString(c.ok("group", "describe", "g1", "-o", "json"), `"$1": N`))
		d := decode[groupDescription](t, c.ok("group", "describe", "g1", "-o", "json"))
		total := uint64(0)
		for _, q := range d.Queues {
			total += q.BrokerOffset
		}
		if total != uint64(sent) {
			t.Errorf("describe g1: broker offsets add up to %d, want %d", total, sent)
		}
		if d.Lag != 0 || len(d.Members) != 0 || len(d.Queues) != 4 {
			t.Errorf("describe g1: got %+v, want 4 queues without lag and no members", d)
		}
	})

	t.Run("group reset-offset replays", func(t *testing.T) {
		out := c.ok("group", "reset-offset", "g1", "--topic", "orders", "--to", "earliest")
		golden(t, "group_reset_offset.golden", out)
		d := decode[groupDescription](t, c.ok("group", "describe", "g1", "-o", "json"))
		if d.Lag != uint64(sent) {
			t.Errorf("lag after reset: got %d, want %d", d.Lag, sent)
		}
		// --from last does not apply: the group has (reset) offsets.
		out = c.ok("consume", "orders", "--group", "g1", "--count", fmt.Sprint(sent), "-o", "json")
		if n := len(jsonLines(t, out)); n != sent {
			t.Errorf("replay after reset: got %d messages, want %d", n, sent)
		}
		for _, to := range []string{"now", "10m", time.Now().Add(-time.Hour).Format(time.RFC3339)} {
			c.ok("group", "reset-offset", "g1", "--topic", "orders", "--to", to)
		}
	})

	t.Run("consume tag filter", func(t *testing.T) {
		for _, tag := range []string{"c", "a", "b"} {
			c.ok("send", "tagged", "body-"+tag, "--tag", tag)
		}
		out := c.ok("consume", "tagged", "-g", "tags", "--from", "first", "--tag", "a || b", "--count", "2")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "QUEUE") ||
			!strings.HasSuffix(lines[1], " a           -           body-a") || !strings.HasSuffix(lines[2], " b           -           body-b") {
			t.Errorf("consume --tag 'a || b': got\n%s\nwant a header, body-a and body-b", out)
		}
	})

	t.Run("consume broadcast", func(t *testing.T) {
		for range 2 {
			out := c.ok("consume", "tagged", "--broadcast", "--from", "first", "--count", "3", "-o", "json")
			if got := bodies(jsonLines(t, out)); len(got) != 3 {
				t.Errorf("broadcast: got %v, want body-a, body-b and body-c", got)
			}
		}
	})

	t.Run("consume orderly", func(t *testing.T) {
		out := c.ok("consume", "orders", "-g", "ordered", "--orderly", "--from", "first", "--count", fmt.Sprint(sent), "-o", "json")
		msgs := jsonLines(t, out)
		last := map[uint32]uint64{}
		for _, m := range msgs {
			if prev, ok := last[m.QueueID]; ok && m.Offset != prev+1 {
				t.Errorf("queue %d: offset %d after %d, want consecutive", m.QueueID, m.Offset, prev)
			}
			last[m.QueueID] = m.Offset
		}
		if len(msgs) != sent {
			t.Errorf("orderly: got %d messages, want %d", len(msgs), sent)
		}
	})

	t.Run("consume from time", func(t *testing.T) {
		first := decode[sendRows](t, c.ok("send", "tagged", "early", "-o", "json"))[0]
		// Send until a message lands in a later millisecond than "early".
		var from time.Time
		var body string
		for i := 0; !from.After(first.StoreTime); i++ {
			body = fmt.Sprintf("late-%d", i)
			from = decode[sendRows](t, c.ok("send", "tagged", body, "-o", "json"))[0].StoreTime
		}
		out := c.ok("consume", "tagged", "-g", "fromtime", "--from", from.Format(time.RFC3339Nano), "--count", "1", "-o", "json")
		if msgs := jsonLines(t, out); len(msgs) != 1 || msgs[0].Body != body {
			t.Errorf("consume --from %s: got %+v, want %s", from.Format(time.RFC3339Nano), msgs, body)
		}
	})

	t.Run("consume until ctrl-c", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var stdout syncBuffer
		done := make(chan error, 1)
		go func() {
			var stderr bytes.Buffer
			done <- run(ctx, []string{"rmq", "--namesrv", c.ns, "consume", "tagged", "-g", "ctrlc", "--from", "first"}, &stdout, &stderr)
		}()
		e2e.Eventually(t, 20*time.Second, func() error {
			if !strings.Contains(stdout.String(), "body-c") {
				return errors.New("body-c not printed yet")
			}
			return nil
		})
		// While it runs, the group has one member owning the queue.
		e2e.Eventually(t, 10*time.Second, func() error {
			out := c.ok("group", "describe", "ctrlc")
			if !strings.Contains(out, "(clustering), total lag 0, members: ") || strings.Contains(out, "members: none") ||
				!strings.Contains(out, "@") {
				return fmt.Errorf("describe of a running group:\n%s\nwant clustering, no lag, a member owning the queue", out)
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consume after Ctrl-C: got %v, want nil (exit 0)", err)
		}
		d := decode[groupDescription](t, c.ok("group", "describe", "ctrlc", "-o", "json"))
		if len(d.Members) != 0 {
			t.Errorf("members after Ctrl-C: got %v, want none (left cleanly)", d.Members)
		}
	})

	t.Run("group list", func(t *testing.T) {
		out := c.ok("group", "list")
		for _, g := range []string{"g1", "tags", "ordered", "ctrlc"} {
			if !strings.Contains(out, "\n"+g+"\n") {
				t.Errorf("group list:\n%s\nwant %s", out, g)
			}
		}
		rows := decode[groupRows](t, c.ok("group", "list", "-o", "json"))
		if len(rows) < 4 {
			t.Errorf("group list json: got %+v, want 4 or more groups", rows)
		}
	})

	t.Run("send auto-creates", func(t *testing.T) {
		rows := decode[sendRows](t, c.ok("send", "fresh", "x", "-o", "json"))
		if len(rows) != 1 || rows[0].Offset != 0 {
			t.Errorf("send to a new topic: got %+v, want offset 0", rows)
		}
	})

	t.Run("topic update", func(t *testing.T) {
		c.ok("topic", "create", "audit", "--queues", "12")
		golden(t, "topic_update.golden", c.ok("topic", "update", "audit", "--perm", "r"))
		rows := decode[topicRows](t, c.ok("topic", "update", "audit", "--queues", "16", "-o", "json"))
		if len(rows) != 1 || rows[0].Queues != 16 || rows[0].Perm != 4 {
			t.Errorf("update --queues 16 of a read-only topic: got %+v, want 16 queues, perm 4 kept", rows)
		}
		rows = decode[topicRows](t, c.ok("topic", "update", "audit", "--perm", "6", "-o", "json"))
		if len(rows) != 1 || rows[0].Queues != 16 || rows[0].Perm != 6 {
			t.Errorf("update --perm 6: got %+v, want 16 queues kept, perm 6", rows)
		}
		c.fails(`topic "audit" has 16 queues, asked for 8: queues can be added, not removed`, "topic", "update", "audit", "--queues", "8")
		c.fails(`topic "nosuch" not found`, "topic", "update", "nosuch", "--perm", "rw")
	})

	t.Run("topic delete", func(t *testing.T) {
		golden(t, "topic_delete.golden", c.ok("topic", "delete", "tagged"))
		c.fails(`topic "tagged" not found`, "topic", "delete", "tagged")
		c.fails(`topic "tagged" not found`, "topic", "describe", "tagged")
	})
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestClusterStatus(t *testing.T) {
	c := newCLI(t)
	var st clusterStatusView
	e2e.Eventually(t, 10*time.Second, func() error {
		st = decode[clusterStatusView](t, c.ok("cluster", "status", "-o", "json"))
		if len(st) != 1 || len(st[0].Nodes) != 3 || st[0].Leader == "" {
			return fmt.Errorf("cluster status %+v: want one group, 3 nodes and a leader", st)
		}
		// A follower of a new group that did not bootstrap itself is at
		// term 0 until the first election; its registration may be one
		// heartbeat older than that.
		for _, n := range st[0].Nodes {
			if n.Term == 0 {
				return fmt.Errorf("node %s registered term 0", n.Node)
			}
		}
		return nil
	})
	leaders := 0
	for _, n := range st[0].Nodes {
		if n.Role == "leader" {
			leaders++
			if n.Node != st[0].Leader || n.Term != st[0].Term {
				t.Errorf("leader row %+v does not match group leader %s term %d", n, st[0].Leader, st[0].Term)
			}
		}
		if n.Addr == "" || n.Term == 0 {
			t.Errorf("node %+v: want an address and a term", n)
		}
		if r := n.DiskUsedRatio; r == nil || *r <= 0 || *r > 1 || n.DiskFull != "" {
			t.Errorf("node %+v: want its disk use (0, 1] and no disk-full refusal", n)
		}
	}
	if leaders != 1 {
		t.Errorf("got %d leaders, want 1", leaders)
	}

	out := c.ok("cluster", "status")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "BROKER GROUP  NODE  ROLE") {
		t.Fatalf("cluster status table:\n%s\nwant a header and 3 nodes", out)
	}
	if n := strings.Count(out, "leader *"); n != 1 {
		t.Errorf("cluster status table:\n%s\nwant one row marked leader *", out)
	}
}

// TestErrors checks that mistakes fail with one clear line and print
// nothing on stdout.
func TestErrors(t *testing.T) {
	c := newCLI(t)
	c.ok("topic", "create", "known", "--queues", "1")
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, 5000000), 0o600); err != nil {
		t.Fatal(err)
	}
	withStdin(t, nil)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown topic", []string{"send", "nosuch", "x", "--no-auto-create"}, `topic "nosuch" not found`},
		{"oversized body", []string{"send", "known", "-f", big}, "body is 5000000 bytes; the limit is 4194304"},
		{"invalid topic name", []string{"send", "bad topic", "x"}, `topic name "bad topic" has illegal character ' '`},
		{"invalid topic create", []string{"topic", "create", "a/b"}, `topic name "a/b" has illegal character '/'`},
		{"bad output", []string{"--output", "yaml", "topic", "list"}, `--output "yaml": use table or json`},
		{"bad from", []string{"consume", "known", "-g", "x", "--from", "yesterday"}, `--from "yesterday": want last, first or an RFC3339 time`},
		{"bad to", []string{"group", "reset-offset", "x", "--topic", "known", "--to", "soon"}, `--to "soon": want an RFC3339 time, earliest, now or a duration ago such as 10m`},
		{"bad tag", []string{"consume", "known", "-g", "x", "--tag", "a ||"}, `--tag "a ||"`},
		{"bad property", []string{"send", "known", "x", "--property", "novalue"}, `--property "novalue": want k=v`},
		{"bad count", []string{"send", "known", "x", "--count", "0"}, "--count 0: want 1 or more"},
		{"bad queues", []string{"topic", "create", "q", "--queues", "0"}, "--queues 0: want 1 to 1024"},
		{"bad perm", []string{"topic", "create", "q", "--perm", "9"}, "--perm 9: want 2 (write), 4 (read) or 6 (read and write)"},
		{"no body", []string{"send", "known"}, "no body: give BODY, --file PATH, or pipe it to stdin"},
		{"body twice", []string{"send", "known", "x", "-f", big}, "give the body as BODY or --file, not both"},
		{"missing file", []string{"send", "known", "-f", "/nonexistent/body"}, "read body: open /nonexistent/body"},
		{"missing topic arg", []string{"send"}, "missing TOPIC (usage: rmq send TOPIC [BODY])"},
		{"extra arg", []string{"topic", "describe", "a", "b"}, `unexpected argument "b" (usage: rmq topic describe NAME)`},
		{"missing group", []string{"consume", "known"}, "--group is required (or use --broadcast)"},
		{"consume unknown topic", []string{"consume", "nosuch", "-g", "x"}, `topic "nosuch" not found`},
		{"unknown flag", []string{"send", "--bogus", "known", "x"}, "flag provided but not defined: -bogus (see 'rmq send --help')"},
		{"missing required flag", []string{"group", "reset-offset", "g"}, "--topic and --to are required"},
		{"unknown flag after args", []string{"topic", "create", "q", "--bogus"}, "flag provided but not defined: -bogus (see 'rmq topic create --help')"},
		{"flag without value", []string{"topic", "create", "q", "--queues"}, "flag needs an argument: -queues"},
		{"bad output after args", []string{"topic", "list", "-o", "yaml"}, `--output "yaml": use table or json`},
		{"unknown verb", []string{"topic", "frob"}, `unknown command "frob" for 'rmq topic': want create, update, list, describe, delete`},
		{"update nothing", []string{"topic", "update", "known"}, "nothing to update: give --queues, --perm or both"},
		{"bad update perm", []string{"topic", "update", "known", "--perm", "x"}, `--perm "x": want r, w or rw (or 4, 2, 6)`},
		{"bad update queues", []string{"topic", "update", "known", "--queues", "0"}, "--queues 0: want 1 to 1024"},
		{"unknown group", []string{"group", "describe", "nobody"}, `group "nobody" not found`},
		{"reset unknown topic", []string{"group", "reset-offset", "g", "--topic", "nosuch", "--to", "now"}, `topic "nosuch" not found`},
		{"bad namesrv", []string{"--namesrv", "nope", "topic", "list"}, `--namesrv "nope": want host:port`},
	} {
		t.Run(tc.name, func(t *testing.T) { c.fails(tc.want, tc.args...) })
	}
}

func TestParseResetTime(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"earliest", time.UnixMilli(0)},
		{"now", now},
		{"10m", now.Add(-10 * time.Minute)},
		{"2h ago", now.Add(-2 * time.Hour)},
		{"2025-02-28T10:00:00Z", time.Date(2025, 2, 28, 10, 0, 0, 0, time.UTC)},
	} {
		got, err := parseResetTime(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseResetTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "-5m", "yesterday", "2025-02-28"} {
		if _, err := parseResetTime(bad, now); err == nil {
			t.Errorf("parseResetTime(%q): got nil error, want one", bad)
		}
	}
}

func TestClusterStatusWait(t *testing.T) {
	// A NameServer no broker has registered with: --wait gives up with the
	// reason and a non-zero exit.
	ns, _ := startNamesrv(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"rmq", "--namesrv", ns.Addr(), "cluster", "status", "--wait", "600ms"}, &stdout, &stderr)
	if want := "not ready after 600ms: no broker group has registered with the NameServer"; err == nil || err.Error() != want {
		t.Fatalf("cluster status --wait on an empty NameServer: got %v, want %q", err, want)
	}

	// A cluster that is starting: --wait returns once a leader serves.
	c := &harness{t: t, ns: e2e.StartCluster(t, e2e.Options{}).NamesrvAddr()}
	st := decode[clusterStatusView](t, c.ok("cluster", "status", "--wait", "30s", "-o", "json"))
	if len(st) != 1 || st[0].Leader == "" {
		t.Fatalf("cluster status --wait returned %+v, want one group with a leader", st)
	}
	served := false
	for _, n := range st[0].Nodes {
		served = served || (n.Node == st[0].Leader && n.Serving)
	}
	if !served {
		t.Fatalf("cluster status --wait returned before the leader served: %+v", st)
	}
}

// TestClusterStatusDownNode: a killed node stays in "cluster status" as
// down, with the age of its last registration and no indexes or lag,
// instead of disappearing; once restarted it is listed as live again.
func TestClusterStatusDownNode(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{})
	c := &harness{t: t, ns: cl.NamesrvAddr()}
	leader := cl.LeaderID(10 * time.Second)
	victim := ""
	for _, id := range cl.NodeIDs() {
		if id != leader {
			victim = id
		}
	}
	row := func(st clusterStatusView) (nodeRow, error) {
		if len(st) != 1 || len(st[0].Nodes) != 3 {
			return nodeRow{}, fmt.Errorf("cluster status %+v: want one group of 3 nodes", st)
		}
		for _, n := range st[0].Nodes {
			if n.Node == victim {
				return n, nil
			}
		}
		return nodeRow{}, fmt.Errorf("cluster status %+v: no row for %s", st, victim)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		n, err := row(decode[clusterStatusView](t, c.ok("cluster", "status", "-o", "json")))
		if err == nil && (n.Down || n.AppliedIndex == nil) {
			err = fmt.Errorf("%s: %+v, want live with an applied index", victim, n)
		}
		return err
	})

	cl.Kill(victim)
	var down nodeRow
	e2e.Eventually(t, 10*time.Second, func() error {
		st := decode[clusterStatusView](t, c.ok("cluster", "status", "-o", "json"))
		n, err := row(st)
		if err != nil {
			return err
		}
		if !n.Down || n.Role != "down" {
			return fmt.Errorf("killed %s: %+v, want down", victim, n)
		}
		if n.LastSeenMillis <= 0 {
			return fmt.Errorf("killed %s: last seen %dms ago, want a positive age", victim, n.LastSeenMillis)
		}
		down = n
		return nil
	})
	if down.Serving || down.CommitIndex != nil || down.AppliedIndex != nil || down.Lag != nil || down.Addr == "" {
		t.Errorf("down row %+v: want not serving, null commit/applied/lag, and its last address", down)
	}
	out := c.ok("cluster", "status")
	var line string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == victim {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) < 9 || f[2] != "down" || f[4] != "-" || f[5] != "-" || f[6] != "-" || !strings.HasSuffix(line, " ago") {
		t.Errorf("cluster status table:\n%s\nwant %s's row as: down, - for commit, applied and lag, and a last-seen age", out, victim)
	}
	// The group still has a serving leader: --wait is satisfied.
	c.ok("cluster", "status", "--wait", "10s")

	cl.Restart(victim)
	e2e.Eventually(t, 15*time.Second, func() error {
		n, err := row(decode[clusterStatusView](t, c.ok("cluster", "status", "-o", "json")))
		if err == nil && (n.Down || n.Role == "down" || n.AppliedIndex == nil) {
			err = fmt.Errorf("restarted %s: %+v, want live again", victim, n)
		}
		return err
	})
}

// TestClusterStatusWaitIgnoresDownLeader: a leader that stopped
// registering is listed as down, and --wait does not take its last
// (serving) status for a serving leader.
func TestClusterStatusWaitIgnoresDownLeader(t *testing.T) {
	ns, ctx := startNamesrv(t)
	conn, err := wire.Dial(ctx, ns.Addr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := wire.NodeStatus{Cluster: "rmq", Group: "broker-a", NodeID: "n0", Addr: "127.0.0.1:1", Role: "leader", Serving: true,
		Term: 2, CommitIndex: 9, AppliedIndex: 9}
	if err := conn.Call(ctx, wire.CodeRegisterBroker, &wire.RegisterBrokerRequest{Node: st, HeartbeatMillis: 1000}, nil); err != nil {
		t.Fatal(err)
	}
	if err := conn.Call(ctx, wire.CodeUnregisterBroker, &wire.UnregisterBrokerRequest{Group: "broker-a", NodeID: "n0"}, nil); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"rmq", "--namesrv", ns.Addr(), "-o", "json", "cluster", "status", "--wait", "600ms"}, &stdout, &stderr)
	if want := "not ready after 600ms: broker group broker-a has no leader (0 node(s) registered, 1 down)"; err == nil || err.Error() != want {
		t.Fatalf("cluster status --wait with only a down leader: got %v, want %q", err, want)
	}
	v := decode[clusterStatusView](t, stdout.String())
	if len(v) != 1 || v[0].Leader != "" || len(v[0].Nodes) != 1 || !v[0].Nodes[0].Down || v[0].Nodes[0].Serving {
		t.Errorf("cluster status printed %+v, want broker-a without a leader and n0 down, not serving", v)
	}
}

// startNamesrv runs a NameServer no broker knows, until the test ends; ctx
// ends with it.
func startNamesrv(t *testing.T) (*namesrv.Server, context.Context) {
	t.Helper()
	cfg := namesrv.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Logger = e2e.TestLogger(t)
	ns, err := namesrv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ns.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return ns, ctx
}
