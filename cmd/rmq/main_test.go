package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestCommandLineErrors covers mistakes that need no cluster: each must
// fail with one line that names the problem.
func TestCommandLineErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"bogus"}, `unknown command "bogus"; commands: dev, namesrv, broker, send,`},
		{"broker without data", []string{"broker", "--id", "n0"}, "--data is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"rmq"}, tc.args...), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("rmq %s: got error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
			}
			if strings.Contains(stdout.String()+stderr.String(), "No help topic") {
				t.Errorf("urfave's 'No help topic' message leaked:\n%s%s", stdout.String(), stderr.String())
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"rmq", "--version"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	// A test binary has build info with the Go version; the module version
	// is "(devel)" outside a tagged install.
	if got := stdout.String(); !strings.HasPrefix(got, "rmq version ") || !strings.Contains(got, "go1.") {
		t.Fatalf("rmq --version printed %q, want 'rmq version ... go1.x'", got)
	}
}

func TestNamesrvFlagAfterBrokerCommand(t *testing.T) {
	// Parsing must accept --namesrv after the command; --data missing then
	// stops the command before it touches the disk or network.
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"rmq", "broker", "--namesrv", "127.0.0.1:9", "--id", "n0"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--data is required") {
		t.Fatalf("got %v, want the --data error (not a flag error)", err)
	}
}

func TestBenchPlainProgressLine(t *testing.T) {
	// 30 000 messages in 10 s, 5 000 of them in the last 5 s: the last
	// interval's rate and the average are both shown, labelled.
	got := plainLine("produce", 30000, 10*time.Second, 5000, 5*time.Second)
	want := "produce: 30000 msgs in 10s; last 5s: 1000 msgs/s; average: 3000 msgs/s\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
