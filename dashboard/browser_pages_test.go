package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestBrowser clicks through the dashboard in headless Chromium against a
// real in-process cluster: log in, create a topic, send from the page and
// find the message with its trace, grow and delete topics, reset a
// group's offsets, resend a message a consumer dead-lettered, see open
// transactions and transfer the leadership. One browser session; every
// wait is a bounded poll. Each page builds on the ones before.
func TestBrowser(t *testing.T) {
	if chromium() == "" {
		t.Skip("no Chromium: install the Debian package (apt-get install chromium) or set RMQ_CHROMIUM; .ci/run installs it")
	}
	cl := e2e.StartCluster(t, e2e.Options{Broker: func(cfg *broker.Config) {
		// Retries come back at once, so a failing consumer dead-letters
		// its message within the test.
		cfg.DelayLevels = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
		cfg.TimerPoll = 10 * time.Millisecond
	}})
	ns := []string{cl.NamesrvAddr()}
	log := e2e.TestLogger(t)
	b := startBrowser(t, startDashboard(t, ns, log, true))

	pageLogin(b, startDashboard(t, ns, log, false))
	oldLeader := pageCluster(b)
	pageCreateTopic(b)
	closeConsumer := startFailingConsumer(t, ns, log)
	pageMessages(b)
	pageTopics(b)
	pageGroup(b, closeConsumer)
	pageTransactions(b, ns, log)
	pageTransfer(b, oldLeader)

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %v", errs)
	}
}

// startDashboard serves a dashboard for ns and returns its URL. Without
// anonymous use it knows one access key, "ops".
func startDashboard(t *testing.T, ns []string, log hclog.Logger, anonymous bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Listener: ln, Anonymous: anonymous, Logger: log,
		Admin: func(ak, _ string) (*client.Admin, error) {
			if !anonymous && ak != "ops" {
				return nil, errors.New("unknown access key")
			}
			return client.NewAdmin(client.AdminConfig{NameServers: ns, Logger: log})
		},
		Producer: func(_, _ string) (*client.Producer, error) {
			return client.NewProducer(client.ProducerConfig{NameServers: ns, AutoCreateQueues: -1, Logger: log, Trace: true})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Run(ctx) }() // ends with stop
	t.Cleanup(func() {
		stop()
		if err := errors.Join(<-served, srv.Close()); err != nil {
			t.Errorf("dashboard: %v", err)
		}
	})
	return srv.URL()
}

// pageLogin: a server that needs credentials asks for them, logs in (the
// session cookie) and shows who is logged in.
func pageLogin(b *browser, url string) {
	b.step("login form", chromedp.Navigate(url+"#/cluster"), chromedp.WaitVisible(chromedp.CSS("#login-ak")))
	b.shot("0-login")
	b.step("log in",
		chromedp.SendKeys(chromedp.CSS("#login-ak"), "ops"),
		chromedp.SendKeys(chromedp.CSS("#login-sk"), "secret"),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("tr[data-node] .badge.leader")))
	b.wait("logged in as ops", `document.querySelector("#user").textContent.includes("ops")`)
}

// pageCluster: three nodes, one leader, whose id it returns.
func pageCluster(b *browser) string {
	b.open("#/cluster", "tr[data-node] .badge.leader")
	b.wait("three nodes", `document.querySelectorAll("tr[data-node]").length === 3`)
	leader := b.text(".leader-id")
	b.shot("1-cluster")
	return leader
}

// pageCreateTopic creates topic jobs from the form.
func pageCreateTopic(b *browser) {
	b.open("#/topics", "#create-topic")
	b.step("create topic",
		chromedp.SendKeys(chromedp.CSS("#new-topic-name"), "jobs"),
		chromedp.SetValue(chromedp.CSS(`#create-topic input[name="queues"]`), "2"),
		chromedp.Click(chromedp.CSS("#create-topic-submit")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-topic="jobs"]`)))
}

// startFailingConsumer starts a consumer of group workers on jobs that
// fails "poison" messages every time, so the broker dead-letters them. It
// returns the consumer's (idempotent) Close.
func startFailingConsumer(t *testing.T, ns []string, log hclog.Logger) func() {
	t.Helper()
	cons, err := client.NewConsumer(client.ConsumerConfig{NameServers: ns, Group: "workers", Subscriptions: map[string]string{"jobs": "*"},
		From: client.FromFirst, MaxReconsume: 1, Trace: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Start(context.Background(), func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		for _, m := range msgs {
			if strings.Contains(string(m.Body), "poison") {
				return client.ConsumeRetryLater
			}
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeConsumer := func() {
		once.Do(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := cons.Close(cctx); err != nil {
				t.Errorf("close consumer: %v", err)
			}
		})
	}
	t.Cleanup(closeConsumer)
	return closeConsumer
}

// pageMessages sends two messages from the page and finds them by time
// and key; the detail shows properties, body and the trace timeline
// with the consumer's verdict.
func pageMessages(b *browser) {
	b.open("#/messages?topic=jobs", "#send-form")
	b.step("send a message",
		chromedp.SendKeys(chromedp.CSS("#send-body"), `{"job": 1, "note": "hello from the page"}`),
		chromedp.SendKeys(chromedp.CSS("#send-keys"), "job-1"),
		chromedp.SendKeys(chromedp.CSS("#send-tag"), "greeting"),
		chromedp.SendKeys(chromedp.CSS("#send-props"), "origin=dashboard"),
		chromedp.Click(chromedp.CSS("#send-submit")))
	b.wait("send result", `document.querySelector("#send-result").textContent.includes("sent")`)
	b.step("send a poison pill",
		chromedp.SendKeys(chromedp.CSS("#send-body"), "poison pill"),
		chromedp.Click(chromedp.CSS("#send-submit")))
	b.wait("both in the list", `[...document.querySelectorAll("#messages-live .body-preview")].map(e => e.textContent).join("|").includes("hello from the page") &&
		[...document.querySelectorAll("#messages-live .body-preview")].map(e => e.textContent).join("|").includes("poison pill")`)
	b.shot("2-messages")
	// The other searches: by key, and a range that ends before them.
	b.step("by key", chromedp.Click(chromedp.CSS(`#mode-tabs button[data-mode="key"]`)),
		chromedp.SendKeys(chromedp.CSS("#find-key"), "job-1"), chromedp.Click(chromedp.CSS("#find-submit")))
	b.wait("two with key job-1", `document.querySelector("#results-note").textContent.startsWith("2 message(s)") &&
		document.querySelectorAll("#messages-live tr[data-msg]").length === 2`)
	b.step("a past range", chromedp.Click(chromedp.CSS(`#mode-tabs button[data-mode="time"]`)),
		// As a person picks "a range…" and a date (chromedp's SetValue
		// does not take datetime-local inputs).
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#find-since"); s.value = "custom";
			s.dispatchEvent(new Event("change")); })()`),
		chromedp.WaitVisible(chromedp.CSS("#find-until")),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#find-until").value = "2020-01-01T00:00:00"`),
		chromedp.Click(chromedp.CSS("#find-submit")))
	b.wait("none before 2020", `document.querySelector("#messages-live").textContent.includes("No messages found")`)
	b.step("back to the last hour", chromedp.SetValue(chromedp.CSS("#find-since"), "1h"), chromedp.Click(chromedp.CSS("#find-submit")))
	b.wait("two again", `document.querySelectorAll("#messages-live tr[data-msg]").length === 2`)

	// Message detail: properties, body and the trace timeline with the
	// consumer's verdict.
	b.step("open the message", chromedp.Click(chromedp.CSS(`#messages-live tr:last-child a`)), chromedp.WaitVisible(chromedp.CSS("#msg-body")))
	b.wait("detail", `document.querySelector("#msg-body").textContent.includes("hello from the page") &&
		document.querySelector("#msg-live").textContent.includes("origin")`)
	b.wait("trace with send and consume", `document.querySelector("#trace-live li.trace-send") && document.querySelector("#trace-live li.trace-consume")`)
	b.shot("3-message-trace")
}

// pageTopics: the list counts the messages; a scratch topic is deleted
// with its button and jobs grows to three queues on its page.
func pageTopics(b *browser) {
	b.open("#/topics", `tr[data-topic="jobs"]`)
	b.wait("two messages", `document.querySelector('tr[data-topic="jobs"] td:nth-child(5)').textContent === "2"`)
	b.shot("4-topics")
	// A scratch topic, deleted with its button.
	b.step("create scratch", chromedp.SendKeys(chromedp.CSS("#new-topic-name"), "scratch"),
		chromedp.Click(chromedp.CSS("#create-topic-submit")), chromedp.WaitVisible(chromedp.CSS(`tr[data-topic="scratch"]`)))
	b.step("delete scratch", chromedp.Click(chromedp.CSS(`tr[data-topic="scratch"] .delete-topic`)))
	b.confirm()
	b.step("scratch gone", chromedp.WaitNotPresent(chromedp.CSS(`tr[data-topic="scratch"]`)))
	// The topic's page: grow it to three queues.
	b.step("open jobs", chromedp.Click(chromedp.CSS(`tr[data-topic="jobs"] td a`)), chromedp.WaitVisible(chromedp.CSS("#queues-live tr")))
	b.wait("settings filled", `document.querySelector('#update-topic input[name="queues"]').value === "2"`)
	b.step("update jobs", chromedp.SetValue(chromedp.CSS(`#update-topic input[name="queues"]`), "3"),
		chromedp.Click(chromedp.CSS("#update-topic-submit")))
	b.wait("three queues", `document.querySelectorAll("#queues-live tr").length === 3`)
	b.shot("4b-topic")
}

// pageGroup: the poison pill reaches the dead-letter queue; the consumer
// leaves, a reset brings the lag back and the dead letter is resent.
func pageGroup(b *browser, closeConsumer func()) {
	b.open("#/groups/workers", "#dlq-live")
	b.wait("dead letter listed", `document.querySelector("#dlq-live tr[data-msg]")`)
	b.shot("5-group-dlq")
	// The dead letter's trace: its failed deliveries and the dead-lettering.
	b.step("open the dead letter", chromedp.Click(chromedp.CSS("#dlq-live tr[data-msg] a")), chromedp.WaitVisible(chromedp.CSS("#msg-body")))
	b.wait("trace to the DLQ", `[...document.querySelectorAll("#trace-live li")].some(e => e.textContent.includes("dlq"))`)
	b.shot("5b-dead-letter-trace")
	b.open("#/groups/workers", "#dlq-live tr[data-msg]")
	closeConsumer() // it committed its offsets: lag 0 from here on
	b.wait("lag 0 after the consumer left", `document.querySelector('[data-stat="Total lag"]').textContent === "0"`)

	// Reset to earliest: the lag is both messages again.
	b.step("reset offsets",
		chromedp.SetValue(chromedp.CSS("#reset-to"), "earliest"),
		chromedp.Click(chromedp.CSS("#reset-submit")))
	b.confirm()
	b.wait("lag 2 after the reset", `document.querySelector('[data-stat="Total lag"]').textContent === "2"`)

	// Resend the dead letter: it goes back through the retry queue.
	b.step("resend", chromedp.Click(chromedp.CSS("#dlq-live tr[data-msg] .resend")))
	b.wait("resent toast", `[...document.querySelectorAll(".toast")].some(e => e.textContent.startsWith("Resent 1 message"))`)
	b.wait("retry lag 1", `document.querySelector('[data-stat="Retry lag"]').textContent === "1"`)
	b.shot("6-group-after-reset-and-resend")

	b.open("#/groups", `tr[data-group="workers"]`)
	b.shot("7-groups")
}

// pageTransactions: one transaction committed, one left open (its
// producer answers "unknown" to every check-back).
func pageTransactions(b *browser, ns []string, log hclog.Logger) {
	t := b.t
	t.Helper()
	unknown := func(context.Context, *client.MessageExt) client.TxState { return client.TxUnknown }
	txp, err := client.NewProducer(client.ProducerConfig{NameServers: ns, Group: "billing", TransactionChecker: unknown, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = txp.Close(context.Background()) })
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	for body, st := range map[string]client.TxState{"invoice 41: paid": client.TxCommit, "invoice 42: pending": client.TxUnknown} {
		if _, _, err := txp.SendInTransaction(tctx, &client.Message{Topic: "jobs", Body: []byte(body)},
			func(context.Context, *client.Message) client.TxState { return st }); err != nil {
			t.Fatal(err)
		}
	}
	tcancel()
	b.open("#/transactions", "#tx-live")
	b.wait("the open transaction", `document.querySelector("#tx-live").textContent.includes("invoice 42") &&
		document.querySelector("#tx-stats").textContent.includes("Committed1")`)
	b.shot("8-transactions")
}

// pageTransfer moves the leadership away from the current leader with
// the button. On a loaded machine leadership may have moved on its own
// since pageCluster (oldLeader), or be between leaders (the button is
// disabled then): wait for a leader and take it from the page.
func pageTransfer(b *browser, oldLeader string) {
	b.open("#/cluster", ".transfer")
	b.wait("a leader to transfer from", `(() => { const l = document.querySelector(".leader-id"); const btn = document.querySelector(".transfer");
		return l && l.textContent !== "none" && btn && !btn.disabled; })()`)
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	current, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(".leader-id").textContent`))
	cancel()
	if err == nil && current != oldLeader {
		b.t.Logf("leadership moved on its own from %s to %s before the transfer", oldLeader, current)
		oldLeader = current
	}
	b.step("transfer", chromedp.Click(chromedp.CSS(".transfer")))
	b.confirm()
	b.wait("new leader", fmt.Sprintf(`(() => { const l = document.querySelector(".leader-id"); return l && l.textContent !== %q && l.textContent !== "none"; })()`, oldLeader))
	b.shot("9-cluster-after-transfer")
}
