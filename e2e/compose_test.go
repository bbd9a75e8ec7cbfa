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

// TestDockerCompose brings up docker-compose.yml (NameServer + three
// brokers, the prebuilt scratch image), sends and consumes from the host
// with the rmq binary, kills the leader's container, watches a new leader
// take over, and brings the container back.
func TestDockerCompose(t *testing.T) {
	compose := composeCmd()
	if compose == nil {
		t.Skip("skipping the docker compose test: neither podman-compose (apt-get install podman podman-compose runc) nor docker compose is installed")
	}
	if testing.Short() {
		t.Skip("compose test")
	}
	engine := "podman"
	if compose[0] == "docker" {
		engine = "docker"
	}
	// A private build context: the compose file, the Dockerfile and a
	// static rmq binary for the prebuilt target.
	dir := t.TempDir()
	for _, f := range []string{"docker-compose.yml", "Dockerfile"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "rmq"), "github.com/rmq-dev/rmq/cmd/rmq")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build static rmq: %v\n%s", err, out)
	}
	project := fmt.Sprintf("rmqe2e%d", time.Now().UnixNano()%1e6)
	ports := map[string]string{}
	// A tag of this run's own, and --build below: compose reuses an image
	// that exists, so a fixed tag ran a stale binary.
	tag := project
	env := append(os.Environ(), "RMQ_BUILD_TARGET=prebuilt", "RMQ_IMAGE_TAG="+tag)
	for _, k := range []string{"RMQ_NAMESRV_PORT", "RMQ_PORT0", "RMQ_PORT1", "RMQ_PORT2"} {
		a := freeAddr(t)
		ports[k] = a[strings.LastIndex(a, ":")+1:]
		env = append(env, k+"="+ports[k])
	}
	run := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	composeArgs := func(args ...string) []string {
		return append(append(append([]string(nil), compose...), "-p", project), args...)
	}
	before := engineObjects(t, run, engine)
	t.Cleanup(func() {
		if t.Failed() { // the containers' last words, before they are removed
			ids, _ := run(30*time.Second, engine, "ps", "-a", "-q", "--filter", "label=com.docker.compose.project="+project)
			for _, id := range strings.Fields(ids) {
				out, _ := run(30*time.Second, engine, "logs", "--tail", "300", id)
				t.Logf("logs of container %s:\n%s", id, out)
			}
		}
		if out, err := run(2*time.Minute, composeArgs("down", "-v")...); err != nil {
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
	if out, err := run(5*time.Minute, composeArgs("up", "-d", "--build")...); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	ns := "127.0.0.1:" + ports["RMQ_NAMESRV_PORT"]
	// The image is this run's binary: its version line must match.
	want, err := exec.Command(filepath.Join(dir, "rmq"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := run(time.Minute, engine, "run", "--rm", "localhost/rmq:"+tag, "--version"); err != nil || got != string(want) {
		t.Fatalf("image localhost/rmq:%s --version: %q (%v), want %q", tag, got, err, want)
	}
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
	id, err := run(30*time.Second, engine, "ps", "-q", "--filter", "label=com.docker.compose.project="+project,
		"--filter", "label=com.docker.compose.service="+svc)
	id = strings.TrimSpace(id)
	if err != nil || id == "" {
		t.Fatalf("find container of %s: %v %q", svc, err, id)
	}
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
