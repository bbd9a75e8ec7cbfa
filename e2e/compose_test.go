package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
)

// composeCmd returns the compose command available here, or "" if none.
func composeCmd() []string {
	if _, err := exec.LookPath("podman-compose"); err == nil {
		if _, err := exec.LookPath("podman"); err == nil {
			return []string{"podman-compose"}
		}
	}
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err == nil && bytes.Contains(out, []byte("version")) {
		return []string{"docker", "compose"}
	}
	return nil
}

// composeProject is one compose file brought up under a project name of
// its own, from a private build context holding the file, the Dockerfile
// and a static rmq binary of this run (the prebuilt target). Cleanup
// takes it down with its volumes, image and networks, and fails the
// test if anything new is left.
type composeProject struct {
	t       *testing.T
	engine  string
	project string
	tag     string
	dir     string
	ports   map[string]string // port variable -> host port
	run     func(timeout time.Duration, args ...string) (string, error)
	compose func(args ...string) []string
}

// upCompose brings up file with a free host port for each of portVars.
func upCompose(t *testing.T, file string, portVars ...string) *composeProject {
	compose := composeCmd()
	if compose == nil {
		t.Skip("skipping the docker compose test: neither podman-compose (apt-get install podman podman-compose runc) nor docker compose is installed")
	}
	if testing.Short() {
		t.Skip("compose test")
	}
	c := &composeProject{t: t, engine: "podman", dir: t.TempDir(), ports: map[string]string{}}
	if compose[0] == "docker" {
		c.engine = "docker"
	}
	for _, f := range []string{file, "Dockerfile"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(c.dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(c.dir, "rmq"), "github.com/rmq-dev/rmq/cmd/rmq")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build static rmq: %v\n%s", err, out)
	}
	c.project = fmt.Sprintf("rmqe2e%d", time.Now().UnixNano()%1e6)
	// A tag of this run's own, and --build below: compose reuses an image
	// that exists, so a fixed tag ran a stale binary.
	c.tag = c.project
	env := append(os.Environ(), "RMQ_BUILD_TARGET=prebuilt", "RMQ_IMAGE_TAG="+c.tag)
	for _, k := range portVars {
		a := freeAddr(t)
		c.ports[k] = a[strings.LastIndex(a, ":")+1:]
		env = append(env, k+"="+c.ports[k])
	}
	c.run = func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir, cmd.Env = c.dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	c.compose = func(args ...string) []string {
		return append(append(append([]string(nil), compose...), "-f", file, "-p", c.project), args...)
	}
	run, engine, project, tag := c.run, c.engine, c.project, c.tag
	before := engineObjects(t, run, engine)
	t.Cleanup(func() {
		if t.Failed() { // the containers' last words, before they are removed
			ids, _ := run(30*time.Second, engine, "ps", "-a", "-q", "--filter", "label=com.docker.compose.project="+project)
			for _, id := range strings.Fields(ids) {
				out, _ := run(30*time.Second, engine, "logs", "--tail", "300", id)
				t.Logf("logs of container %s:\n%s", id, out)
			}
		}
		if out, err := run(2*time.Minute, c.compose("down", "-v")...); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
		if out, err := run(time.Minute, engine, "rmi", "localhost/rmq:"+tag); err != nil {
			t.Logf("remove image: %v\n%s", err, out)
		}
		// podman-compose 1.0's down leaves the project network.
		if out, err := run(time.Minute, engine, "network", "ls", "--format", "{{.Name}}"); err == nil {
			for _, n := range strings.Fields(out) {
				if strings.HasPrefix(n, project+"_") {
					if out, err := run(time.Minute, engine, "network", "rm", n); err != nil {
						t.Logf("remove network %s: %v\n%s", n, err, out)
					}
				}
			}
		}
		for kind, names := range engineObjects(t, run, engine) {
			for n := range names {
				if !before[kind][n] {
					t.Errorf("the compose test left %s %q behind", kind, n)
				}
			}
		}
	})
	if out, err := run(5*time.Minute, c.compose("up", "-d", "--build")...); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	// The image is this run's binary: its version line must match.
	want, err := exec.Command(filepath.Join(c.dir, "rmq"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := run(time.Minute, engine, "run", "--rm", "localhost/rmq:"+tag, "--version"); err != nil || got != string(want) {
		t.Fatalf("image localhost/rmq:%s --version: %q (%v), want %q", tag, got, err, want)
	}
	return c
}

// container returns the id of service svc's container.
func (c *composeProject) container(svc string) string {
	c.t.Helper()
	id, err := c.run(30*time.Second, c.engine, "ps", "-q", "--filter", "label=com.docker.compose.project="+c.project,
		"--filter", "label=com.docker.compose.service="+svc)
	id = strings.TrimSpace(id)
	if err != nil || id == "" {
		c.t.Fatalf("find container of %s: %v %q", svc, err, id)
	}
	return id
}

// TestDockerCompose brings up docker-compose.yml (NameServer + three
// brokers, the prebuilt scratch image), sends and consumes from the host
// with the rmq binary, kills the leader's container, watches a new leader
// take over, and brings the container back.
func TestDockerCompose(t *testing.T) {
	c := upCompose(t, "docker-compose.yml", "RMQ_NAMESRV_PORT", "RMQ_PORT0", "RMQ_PORT1", "RMQ_PORT2")
	run, engine, dir := c.run, c.engine, c.dir
	ns := "127.0.0.1:" + c.ports["RMQ_NAMESRV_PORT"]
	admin, err := client.NewAdmin(client.AdminConfig{NameServers: []string{ns}})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var lastStatus string // what the NameServer last said, for failure messages
	leader := func() (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		gs, err := admin.ClusterStatus(ctx)
		lastStatus = fmt.Sprintf("%+v (error %v)", gs, err)
		if err != nil || len(gs) != 1 {
			return "", 0
		}
		return gs[0].Leader, len(gs[0].Nodes)
	}
	var first string
	Eventually(t, 60*time.Second, func() error {
		if l, n := leader(); l == "" || n != 3 {
			return fmt.Errorf("leader %q, %d nodes registered", l, n)
		}
		first, _ = leader()
		return nil
	})
	rmq := filepath.Join(dir, "rmq")
	host := func(args ...string) string {
		t.Helper()
		out, err := run(30*time.Second, append([]string{rmq, "--namesrv", ns}, args...)...)
		if err != nil {
			t.Fatalf("rmq %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	host("send", "compose-demo", "hello from the host")
	if out := host("consume", "compose-demo", "--group", "g", "--from", "first", "--count", "1"); !strings.Contains(out, "hello from the host") {
		t.Fatalf("consume printed %q, want the message", out)
	}
	// Kill the leader's container: a new leader must take over.
	svc := "broker" + strings.TrimPrefix(first, "n")
	id := c.container(svc)
	start := time.Now()
	if out, err := run(30*time.Second, engine, "kill", "--signal", "KILL", id); err != nil {
		t.Fatalf("kill %s: %v\n%s", svc, err, out)
	}
	Eventually(t, 30*time.Second, func() error {
		if l, _ := leader(); l == "" || l == first {
			return fmt.Errorf("leader still %q; cluster status %s", l, lastStatus)
		}
		return nil
	})
	second, _ := leader()
	t.Logf("leader %s killed; NameServer names %s after %s", first, second, time.Since(start))
	host("send", "compose-demo", "written after the failover")
	if out, err := run(30*time.Second, engine, "start", id); err != nil {
		t.Fatalf("start %s: %v\n%s", svc, err, out)
	}
	Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		gs, err := admin.ClusterStatus(ctx)
		if err != nil || len(gs) != 1 || len(gs[0].Nodes) != 3 {
			return fmt.Errorf("%d groups (%v)", len(gs), err)
		}
		for _, n := range gs[0].Nodes {
			if n.NodeID == first && !n.Down && n.Lag == 0 && n.AppliedIndex > 0 {
				return nil
			}
		}
		return fmt.Errorf("%s has not rejoined and caught up", first)
	})
	if out := host("consume", "compose-demo", "--group", "g", "--count", "1"); !strings.Contains(out, "written after the failover") {
		t.Fatalf("consume after failover printed %q", out)
	}
}

// engineObjects lists the engine's containers, volumes, networks and
// images by name, to find what a test left behind.
func engineObjects(t *testing.T, run func(time.Duration, ...string) (string, error), engine string) map[string]map[string]bool {
	t.Helper()
	objs := map[string]map[string]bool{}
	for kind, args := range map[string][]string{
		"container": {"ps", "-a", "--format", "{{.Names}}"},
		"volume":    {"volume", "ls", "--format", "{{.Name}}"},
		"network":   {"network", "ls", "--format", "{{.Name}}"},
		"image":     {"images", "--format", "{{.Repository}}:{{.Tag}}"},
	} {
		out, err := run(time.Minute, append([]string{engine}, args...)...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", engine, strings.Join(args, " "), err, out)
		}
		objs[kind] = map[string]bool{}
		for _, n := range strings.Fields(out) {
			objs[kind][n] = true
		}
	}
	return objs
}

// TestDockerComposeGroups brings up docker-compose.groups.yml (two
// NameServers, broker-a and broker-b with three nodes each), creates a
// topic on both groups and produces and consumes across them with the Go
// client from the host; then kills the first NameServer's container and
// broker-b's leader's container together: sends keep succeeding, the
// second NameServer names broker-b's new leader, and every acknowledged
// message is consumed.
func TestDockerComposeGroups(t *testing.T) {
	c := upCompose(t, "docker-compose.groups.yml", "RMQ_NAMESRV_PORT", "RMQ_NAMESRV2_PORT",
		"RMQ_PORT0", "RMQ_PORT1", "RMQ_PORT2", "RMQ_PORT3", "RMQ_PORT4", "RMQ_PORT5")
	nss := []string{"127.0.0.1:" + c.ports["RMQ_NAMESRV_PORT"], "127.0.0.1:" + c.ports["RMQ_NAMESRV2_PORT"]}
	status := func(ns string) (map[string]client.GroupStatus, error) {
		a, err := client.NewAdmin(client.AdminConfig{NameServers: []string{ns}})
		if err != nil {
			return nil, err
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		gs, err := a.ClusterStatus(ctx)
		if err != nil {
			return nil, err
		}
		out := map[string]client.GroupStatus{}
		for _, g := range gs {
			out[g.Group] = g
		}
		return out, nil
	}
	ready := func(ns string) error {
		gs, err := status(ns)
		if err != nil {
			return err
		}
		for _, g := range []string{"broker-a", "broker-b"} {
			if gs[g].Leader == "" || len(gs[g].Nodes) != 3 {
				return fmt.Errorf("namesrv %s: %s has leader %q and %d nodes", ns, g, gs[g].Leader, len(gs[g].Nodes))
			}
		}
		return nil
	}
	for _, ns := range nss {
		Eventually(t, 90*time.Second, func() error { return ready(ns) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a, err := client.NewAdmin(client.AdminConfig{NameServers: nss})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if infos, err := a.CreateTopic(ctx, client.TopicSpec{Name: "orders", Queues: 4}); err != nil || len(infos) != 2 {
		t.Fatalf("create topic on both groups: %+v, %v", infos, err)
	}
	Eventually(t, 30*time.Second, func() error {
		st, err := a.TopicStatus(ctx, "orders")
		if err != nil || len(st) != 8 {
			return fmt.Errorf("topic status %d queues (%v), want 8", len(st), err)
		}
		return nil
	})
	p, err := client.NewProducer(client.ProducerConfig{NameServers: nss, Logger: TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	sent := map[string]bool{}
	perGroup := map[string]int{}
	send := func(n int, prefix string) {
		for i := 0; i < n; i++ {
			body := fmt.Sprint(prefix, i)
			res, err := p.Send(ctx, &client.Message{Topic: "orders", Body: []byte(body)})
			if err != nil {
				t.Fatalf("send %s: %v", body, err)
			}
			sent[body] = true
			perGroup[res.Group]++
		}
	}
	send(40, "before-")
	if perGroup["broker-a"] == 0 || perGroup["broker-b"] == 0 {
		t.Fatalf("sends per group %v, want both groups", perGroup)
	}
	gs, err := status(nss[1])
	if err != nil {
		t.Fatal(err)
	}
	leaderB := gs["broker-b"].Leader
	victims := []string{c.container("namesrv"), c.container("brokerb" + strings.TrimPrefix(leaderB, "n"))}
	start := time.Now()
	for _, id := range victims {
		if out, err := c.run(30*time.Second, c.engine, "kill", "--signal", "KILL", id); err != nil {
			t.Fatalf("kill %s: %v\n%s", id, err, out)
		}
	}
	send(40, "after-")
	t.Logf("40 sends after killing namesrv and broker-b's leader %s took %s; per group over the run %v",
		leaderB, time.Since(start).Round(time.Millisecond), perGroup)
	Eventually(t, 30*time.Second, func() error {
		gs, err := status(nss[1])
		if err != nil {
			return err
		}
		if l := gs["broker-b"].Leader; l == "" || l == leaderB {
			return fmt.Errorf("namesrv2 names %q as broker-b's leader", l)
		}
		return nil
	})
	cons, err := client.NewConsumer(client.ConsumerConfig{NameServers: nss, Group: "compose-readers",
		Subscriptions: map[string]string{"orders": "*"}, From: client.FromFirst, Logger: TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close(context.Background())
	got := map[string]bool{}
	for b, err := range cons.Batches(ctx) {
		if err != nil {
			t.Fatalf("consume: %v (got %d of %d)", err, len(got), len(sent))
		}
		for _, m := range b.Messages() {
			got[string(m.Body)] = true
		}
		if err := cons.Commit(ctx, b); err != nil {
			t.Logf("commit: %v", err)
		}
		if len(got) >= len(sent) {
			break
		}
	}
	for body := range sent {
		if !got[body] {
			t.Errorf("acknowledged message %q not consumed", body)
		}
	}
}
