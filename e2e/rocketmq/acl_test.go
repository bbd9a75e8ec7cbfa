package rocketmq_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/rmq-dev/rmq/client"
)

// TestACLRocketMQClient: unmodified rocketmq-client-go v2.1.2 with
// primitive.Credentials against `rmq dev --acl`: signed sends and a
// signed push consumer are served; an unsigned producer, a wrong secret
// and a topic without PUB are refused with NO_PERMISSION naming why.
func TestACLRocketMQClient(t *testing.T) {
	skipUnderRace(t)
	topic, denied, group := uniqueName(t, "T"), uniqueName(t, "D"), uniqueName(t, "G")
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	rules := fmt.Sprintf(`accounts:
  - accessKey: ops
    secretKey: ops-secret
    admin: true
  - accessKey: app
    secretKey: app-secret
    topicPerms: ["%s=PUB|SUB", "%s=SUB"]
    groupPerms: ["%s=SUB"]
`, topic, denied, group)
	if err := os.WriteFile(path, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDev(t, "--acl", path)

	ops, err := client.NewAdmin(client.AdminConfig{NameServers: []string{d.ns}, Timeout: 5 * time.Second,
		Credentials: client.Credentials{AccessKey: "ops", SecretKey: "ops-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, name := range []string{topic, denied} {
		if _, err := ops.CreateTopic(ctx, client.TopicSpec{Name: name, Queues: 2}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		eventually(t, 10*time.Second, "route of "+name, func() error { _, err := ops.TopicStatus(ctx, name); return err })
	}

	app := primitive.Credentials{AccessKey: "app", SecretKey: "app-secret"}
	p := newProducer(t, d.ns, producer.WithCredentials(app))
	mustSendSync(t, p, primitive.NewMessage(topic, []byte("signed")))

	refused := func(what string, p *rocketProducer, topic, want string) {
		t.Helper()
		sctx, scancel := sendCtx()
		defer scancel()
		_, err := p.SendSync(sctx, primitive.NewMessage(topic, []byte("refused")))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: SendSync error %v, want one naming %q", what, err, want)
		}
	}
	refused("unsigned", newProducer(t, d.ns), topic, "no access key")
	refused("wrong secret", newProducer(t, d.ns, producer.WithCredentials(primitive.Credentials{AccessKey: "app", SecretKey: "guess!"})),
		topic, `signature mismatch for access key "app"`)
	refused("no PUB", p, denied, fmt.Sprintf(`access key "app" has no PUB permission on topic %q`, denied))

	col := newCollector()
	newPushConsumer(t, d.ns, group, topic, subAll, col.handle, consumer.WithCredentials(app))
	col.waitFor(t, 30*time.Second, []string{"signed"})
}
