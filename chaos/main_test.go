package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// skipWhy is set by TestMain: why the harness cannot run here ("" if it
// can). The binary is built by the first test that needs it.
var (
	skipWhy   string
	buildOnce sync.Once
	testBin   string
	buildDir  string
	binErrMsg string
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if err := Available(ctx); err != nil {
		skipWhy = err.Error()
	} else {
		// Only what dead runs of this harness left (their manifest's
		// owner is gone): never another tool's objects.
		if ids, err := Sweep(ctx, hclog.NewNullLogger()); err != nil || len(ids) > 0 {
			fmt.Fprintf(os.Stderr, "chaos: swept dead runs %v (error %v)\n", ids, err)
		}
	}
	cancel()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildBinary is $RMQ_CHAOS_BIN (a scratch build, say) or cmd/rmq built
// once with -tags rmqfault (storage fault hooks, inert until a schedule
// writes a control file).
func buildBinary(ctx context.Context) (string, string) {
	if b := os.Getenv("RMQ_CHAOS_BIN"); b != "" {
		return b, ""
	}
	dir, err := os.MkdirTemp("", Prefix+"bin-")
	if err != nil {
		return "", err.Error()
	}
	buildDir = dir
	bin := filepath.Join(dir, "rmq")
	out, err := exec.CommandContext(ctx, "go", "build", "-tags", "rmqfault", "-o", bin, "github.com/rmq-dev/rmq/cmd/rmq").CombinedOutput()
	if err != nil {
		return "", fmt.Sprintf("go build: %v\n%s", err, out)
	}
	return bin, ""
}

// needHarness skips t where namespaces are unavailable and fails it if
// the binary did not build.
func needHarness(t *testing.T) {
	t.Helper()
	if skipWhy != "" {
		t.Skipf("chaos harness unavailable: %s", skipWhy)
	}
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		testBin, binErrMsg = buildBinary(ctx)
	})
	if binErrMsg != "" {
		t.Fatal(binErrMsg)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testLogger logs through t (shown for failing or -v tests) at Info, or
// at the level in RMQ_TEST_LOG.
func testLogger(t testing.TB) hclog.Logger {
	level := hclog.Info
	if l := os.Getenv("RMQ_TEST_LOG"); l != "" {
		level = hclog.LevelFromString(l)
	}
	return hclog.New(&hclog.LoggerOptions{Name: "chaos", Level: level, Output: testWriter{t}})
}

// startCluster starts a cluster of n brokers removed by t.Cleanup, with
// the processes' last log lines shown if t failed, and checks afterwards
// that none of its namespaces or links is left.
func startCluster(t *testing.T, n int, storage Storage) *Cluster {
	t.Helper()
	needHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{Bin: testBin, Nodes: n, Storage: storage, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range append([]string{"namesrv"}, nodeNames(n)...) {
				t.Logf("last log lines of %s:\n%s", name, c.Tail(name, 20))
			}
		}
		nss, links := c.Net().Names()
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		for _, ns := range nss {
			if nsExists(ns) {
				t.Errorf("namespace %s left after Close", ns)
			}
		}
		for _, l := range links {
			if exists(l) {
				t.Errorf("link %s left after Close", l)
			}
		}
	})
	return c
}

func nodeNames(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, NodeID(i))
	}
	return out
}
