package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/e2e"
)

// TestBrokerTraceDir: rmq broker --trace-dir writes an execution trace
// named after the node's first election (a one-node group elects itself
// at start), and an unusable directory is refused by name.
func TestBrokerTraceDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "traces")
	p := freePorts(t, 0, 1)
	raft := fmt.Sprintf("127.0.0.1:%d", p+1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"rmq", "--log-level", "warn", "broker", "--id", "n0", "--data", t.TempDir(),
			"--listen", fmt.Sprintf("127.0.0.1:%d", p), "--raft", raft, "--peers", "n0=" + raft, "--bootstrap",
			"--trace-dir", dir}, &stdout, &stderr)
	}()
	var file string
	e2e.Eventually(t, 20*time.Second, func() error {
		m, _ := filepath.Glob(filepath.Join(dir, "*-n0-election-term-*.trace"))
		if len(m) == 0 {
			return errors.New("no election trace yet; stderr: " + stderr.String())
		}
		file = m[0]
		return nil
	})
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Errorf("%s does not start like a Go execution trace: %q", file, b[:min(16, len(b))])
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("broker: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("broker did not stop")
	}
	if !strings.Contains(stderr.String(), "wrote the last seconds of execution trace") {
		t.Errorf("no warn line names the trace file:\n%s", stderr.String())
	}

	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"rmq", "broker", "--id", "n0", "--data", t.TempDir(), "--listen", "127.0.0.1:0",
		"--raft", "127.0.0.1:0", "--peers", "n0=127.0.0.1:1", "--trace-dir", notDir}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--trace-dir") {
		t.Errorf("--trace-dir on a file: %v, want an error naming the flag", err)
	}
}
