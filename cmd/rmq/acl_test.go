package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/e2e"
)

// TestAccessKeyFlags: against brokers with an ACL file, client commands
// sign with --access-key/--secret-key (anywhere on the line) or
// RMQ_ACCESS_KEY/RMQ_SECRET_KEY, and a refusal is one line naming what
// is missing.
func TestAccessKeyFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acl.yml")
	if err := os.WriteFile(path, []byte(`accounts:
  - {accessKey: ops, secretKey: ops-secret, admin: true}
  - {accessKey: app, secretKey: app-secret, topicPerms: ["orders=PUB"]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cl := e2e.StartCluster(t, e2e.Options{Nodes: 1, Broker: func(c *broker.Config) { c.ACLFile = path }})
	c := &harness{t: t, ns: cl.NamesrvAddr()}

	c.fails("acl: request carries no access key", "topic", "create", "orders", "--queues", "2")
	c.ok("--access-key", "ops", "--secret-key", "ops-secret", "topic", "create", "orders", "--queues", "2")
	c.fails(`acl: access key "app" is not admin`, "topic", "create", "t2", "--access-key", "app", "--secret-key", "app-secret")
	c.fails(`acl: signature mismatch for access key "app"`, "send", "orders", "x", "--access-key", "app", "--secret-key", "nope")

	t.Setenv("RMQ_ACCESS_KEY", "app")
	t.Setenv("RMQ_SECRET_KEY", "app-secret")
	if out := c.ok("send", "orders", "hello"); !strings.Contains(out, "orders") {
		t.Fatalf("send printed %q, want the stored message", out)
	}
	c.fails(`acl: access key "app" has no SUB permission on group "g"`, "consume", "orders", "--group", "g", "--exit")
}
