package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/namesrv"
)

func scrapeMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %v, status %d", addr, err, resp.StatusCode)
	}
	return string(b)
}

// sampleSum sums the samples of name whose labels contain every
// k="v" pair of want.
func sampleSum(text, name string, want ...string) float64 {
	total := 0.0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		metric, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(metric, "#") {
			continue
		}
		mname, labels, _ := strings.Cut(metric, "{")
		if mname != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			match = match && strings.Contains(labels, want[i]+`="`+want[i+1]+`"`)
		}
		if v, err := strconv.ParseFloat(value, 64); match && err == nil {
			total += v
		}
	}
	return total
}

// TestMetricsWithClients produces and consumes with the Go client against
// a group whose nodes and NameServer serve /metrics: messages in (on the
// leader) and out (summed over the nodes the consumer pulled from) match
// what the client sent and received, and every metric the Grafana
// dashboard (deploy/grafana/rmq.json) queries is served.
func TestMetricsWithClients(t *testing.T) {
	c := StartCluster(t, Options{
		Broker:  func(cfg *broker.Config) { cfg.MetricsListen = "127.0.0.1:0" },
		Namesrv: func(cfg *namesrv.Config) { cfg.MetricsListen = "127.0.0.1:0" },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := c.Leader(10 * time.Second)
	if _, err := leader.CreateTopic(ctx, brokerTopic("metered")); err != nil {
		t.Fatal(err)
	}
	// Wait until the NameServer routes the topic: a producer that finds
	// no route auto-creates with its own queue count and may pick a queue
	// the topic does not have (see the note on issue #16).
	a, err := client.NewAdmin(client.AdminConfig{NameServers: []string{c.NamesrvAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, func() error {
		_, err := a.TopicStatus(ctx, "metered")
		return err
	})
	a.Close()
	const total = 200
	p, err := client.NewProducer(client.ProducerConfig{NameServers: []string{c.NamesrvAddr()}, Logger: TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer ccancel()
		_ = p.Close(cctx)
	}()
	for i := 0; i < total; i++ {
		if _, err := p.Send(ctx, &client.Message{Topic: "metered", Body: []byte(fmt.Sprintf("message %03d", i))}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}

	var mu sync.Mutex
	seen, deliveries := map[string]bool{}, 0
	cons, err := client.NewConsumer(client.ConsumerConfig{NameServers: []string{c.NamesrvAddr()}, Group: "mg",
		From: client.FromFirst, Subscriptions: map[string]string{"metered": "*"}, Logger: TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer closeConsumer(t, cons)
	if err := cons.Start(ctx, func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			seen[m.MsgID] = true
			deliveries++
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < total {
			return errorf("consumed %d of %d", len(seen), total)
		}
		return nil
	})
	// One message to the dead-letter queue, so its counter is served too.
	if _, err := leader.SendBack(ctx, broker.SendBackRequest{Group: "mg", Topic: "metered", QueueID: 0, Offset: 0, DelayLevel: -1}); err != nil {
		t.Fatal(err)
	}

	scrapeAll := func() (string, []string) {
		var texts []string
		for _, n := range c.Live() {
			texts = append(texts, scrapeMetrics(t, n.MetricsAddr()))
		}
		return scrapeMetrics(t, leader.MetricsAddr()), append(texts, scrapeMetrics(t, c.namesrvs[0].srv.MetricsAddr()))
	}
	Eventually(t, 10*time.Second, func() error {
		lt, all := scrapeAll()
		if got := sampleSum(lt, "rocketmq_messages_in_total", "topic", "metered"); got != total {
			return errorf("messages in: got %v, want %d", got, total)
		}
		out := 0.0
		for _, text := range all {
			out += sampleSum(text, "rocketmq_messages_out_total", "topic", "metered", "consumer_group", "mg")
		}
		mu.Lock()
		d := deliveries
		mu.Unlock()
		if out != float64(d) {
			return errorf("messages out: got %v, want the %d deliveries the consumer saw", out, d)
		}
		if got := sampleSum(lt, "rocketmq_consumer_connections", "consumer_group", "mg", "consume_mode", "clustering"); got != 1 {
			return errorf("consumer connections of mg: got %v, want 1", got)
		}
		return nil
	})

	_, all := scrapeAll()
	served := strings.Join(all, "\n")
	names := dashboardMetrics(t)
	if len(names) < 20 {
		t.Fatalf("the dashboard queries only %d metrics: %v", len(names), names)
	}
	for _, name := range names {
		if !regexp.MustCompile(`(?m)^` + name + `(_bucket|_count|_sum)?[{ ]`).MatchString(served) {
			t.Errorf("the dashboard queries %s, which no node serves", name)
		}
	}
}

// dashboardMetrics lists the metric names the dashboard's queries use.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "rmq.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/rmq.json: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	re := regexp.MustCompile(`\b(rocketmq|rmq|go|process)_[a-z_]+\b`)
	set := map[string]bool{}
	for _, e := range exprs {
		for _, m := range re.FindAllString(e, -1) {
			for _, suf := range []string{"_bucket", "_count", "_sum"} {
				m = strings.TrimSuffix(m, suf)
			}
			set[m] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
