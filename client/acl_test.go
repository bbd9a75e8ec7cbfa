package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

const clientRules = `
accounts:
  - accessKey: ops
    secretKey: ops-secret
    admin: true
  - accessKey: app
    secretKey: app-secret
    topicPerms: ["orders=PUB|SUB"]
    groupPerms: ["billing=SUB"]
`

// TestAccessControl: the client signs with Credentials; the brokers'
// refusals match ErrAccessDenied and name what is missing; an Admin
// with an admin account's credentials manages topics (what an HTTP front
// end acting for its user does).
func TestAccessControl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	if err := os.WriteFile(path, []byte(clientRules), 0o600); err != nil {
		t.Fatal(err)
	}
	c := e2e.StartCluster(t, e2e.Options{Nodes: 1, Broker: func(cfg *broker.Config) { cfg.ACLFile = path }})
	ns := []string{c.NamesrvAddr()}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	anon, err := client.NewAdmin(client.AdminConfig{NameServers: ns, Logger: e2e.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.CreateTopic(ctx, client.TopicSpec{Name: "orders", Queues: 2}); !errors.Is(err, client.ErrAccessDenied) ||
		!strings.Contains(err.Error(), "no access key") {
		t.Fatalf("unsigned create topic: %v, want ErrAccessDenied naming the missing access key", err)
	}
	ops, err := client.NewAdmin(client.AdminConfig{NameServers: ns, Logger: e2e.TestLogger(t),
		Credentials: client.Credentials{AccessKey: "ops", SecretKey: "ops-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	for _, topic := range []string{"orders", "other"} {
		if _, err := ops.CreateTopic(ctx, client.TopicSpec{Name: topic, Queues: 2}); err != nil {
			t.Fatalf("admin creates %s: %v", topic, err)
		}
		e2e.Eventually(t, 10*time.Second, func() error { _, err := ops.TopicStatus(ctx, topic); return err })
	}

	app := client.Credentials{AccessKey: "app", SecretKey: "app-secret"}
	p := newProducer(t, c, func(cfg *client.ProducerConfig) { cfg.Credentials = app; cfg.AutoCreateQueues = -1 })
	if _, err := p.Send(ctx, &client.Message{Topic: "orders", Body: []byte("hello")}); err != nil {
		t.Fatalf("authorised send: %v", err)
	}
	_, err = p.Send(ctx, &client.Message{Topic: "other", Body: []byte("no")})
	if !errors.Is(err, client.ErrAccessDenied) || !strings.Contains(err.Error(), `access key "app" has no PUB permission on topic "other"`) {
		t.Fatalf("unauthorised send: %v, want ErrAccessDenied naming PUB on other", err)
	}
	bad := newProducer(t, c, func(cfg *client.ProducerConfig) {
		cfg.Credentials = client.Credentials{AccessKey: "app", SecretKey: "wrong-secret"}
		cfg.SendTimeout = 5 * time.Second
	})
	if _, err := bad.Send(ctx, &client.Message{Topic: "orders", Body: []byte("x")}); !errors.Is(err, client.ErrAccessDenied) ||
		!strings.Contains(err.Error(), "signature mismatch") {
		t.Fatalf("wrong secret: %v, want ErrAccessDenied naming the signature", err)
	}

	cons := newConsumer(t, c, "billing", map[string]string{"orders": "*"}, func(cfg *client.ConsumerConfig) { cfg.Credentials = app })
	deadline := time.Now().Add(20 * time.Second)
	for got := false; !got; {
		if time.Now().After(deadline) {
			t.Fatal("the authorised consumer received nothing in 20s")
		}
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		b, err := cons.Poll(pctx)
		pcancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		for _, qb := range b.Queues {
			if qb.Err != nil {
				t.Fatalf("poll %v: %v", qb.Queue, qb.Err)
			}
			for _, m := range qb.Messages {
				got = got || string(m.Body) == "hello"
			}
		}
		if err := cons.Commit(ctx, b); err != nil {
			t.Fatalf("authorised commit: %v", err)
		}
	}

	// A consumer of a group the account may not use fails its first Poll.
	other := newConsumer(t, c, "other", map[string]string{"orders": "*"}, func(cfg *client.ConsumerConfig) { cfg.Credentials = app })
	if _, err := other.Poll(ctx); !errors.Is(err, client.ErrAccessDenied) || !strings.Contains(err.Error(), `no SUB permission on group "other"`) {
		t.Fatalf("poll of a refused group: %v, want ErrAccessDenied naming the group", err)
	}

	if _, err := client.NewProducer(client.ProducerConfig{NameServers: ns, Credentials: client.Credentials{AccessKey: "app"}}); err == nil {
		t.Fatal("an access key without a secret key passed Validate")
	}
}
