package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/e2e"
	"github.com/rmq-dev/rmq/internal/tlsconf"
)

// TestBrokerConfigTLS: the [tls] table and the --tls-* flags of rmq
// broker, shared and per part.
func TestBrokerConfigTLS(t *testing.T) {
	dir := t.TempDir()
	f, err := tlsconf.WriteDev(filepath.Join(dir, "a"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g, err := tlsconf.WriteDev(filepath.Join(dir, "b"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	shared := fmt.Sprintf("[tls]\ncert = %q\nkey = %q\nca = %q\n", f.Cert, f.Key, f.CA)
	type on struct{ client, raft, http, namesrv bool }
	parts := func(c broker.Config) on {
		return on{c.ClientTLS != nil, c.RaftTLS != nil, c.HTTPTLS != nil, c.NameServerTLS != nil}
	}
	tests := []struct {
		name    string
		toml    string
		args    []string
		want    on
		check   func(t *testing.T, c broker.Config)
		wantErr string
	}{
		{name: "off by default", want: on{}},
		{name: "shared block: every part", toml: shared, want: on{true, true, true, true},
			check: func(t *testing.T, c broker.Config) {
				if c.RaftTLS.ClientAuth != tls.RequireAndVerifyClientCert {
					t.Errorf("raft client auth %v, want require and verify", c.RaftTLS.ClientAuth)
				}
				if c.ClientTLS.ClientAuth != tls.NoClientCert {
					t.Errorf("client port client auth %v, want none", c.ClientTLS.ClientAuth)
				}
			}},
		{name: "flags", args: []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA, "--tls-client-auth", "optional"},
			want: on{true, true, true, true},
			check: func(t *testing.T, c broker.Config) {
				if c.ClientTLS.ClientAuth != tls.VerifyClientCertIfGiven {
					t.Errorf("client auth %v, want verify if given", c.ClientTLS.ClientAuth)
				}
			}},
		{name: "only some parts", toml: shared + "on = [\"client\", \"namesrv\"]\n", want: on{client: true, namesrv: true}},
		{name: "--tls-on overrides on", toml: shared + "on = [\"client\"]\n", args: []string{"--tls-on", "raft"}, want: on{raft: true}},
		{name: "per-part override", toml: shared + fmt.Sprintf("[tls.raft]\ncert = %q\nkey = %q\nca = %q\n", g.Cert, g.Key, g.CA),
			want: on{true, true, true, true},
			check: func(t *testing.T, c broker.Config) {
				if bytes.Equal(c.RaftTLS.Certificates[0].Certificate[0], c.ClientTLS.Certificates[0].Certificate[0]) {
					t.Error("raft serves the shared certificate, want its own")
				}
			}},
		{name: "a part table alone turns only that part on", toml: fmt.Sprintf("[tls.client]\ncert = %q\nkey = %q\n", f.Cert, f.Key),
			want: on{client: true}},
		{name: "raft without a CA", toml: fmt.Sprintf("[tls]\ncert = %q\nkey = %q\n", f.Cert, f.Key), wantErr: "tls (raft): tlsconf: invalid TLS config: mutual TLS needs cert, key and ca"},
		{name: "bad client auth", toml: shared + "client_auth = \"sometimes\"\n", wantErr: "tls.client_auth"},
		{name: "unknown part", toml: shared + "on = [\"rafts\"]\n", wantErr: `tls.on: "rafts" is not one of`},
		{name: "missing file", args: []string{"--tls-cert", "/nonexistent/cert.pem", "--tls-key", f.Key, "--tls-on", "client"}, wantErr: "/nonexistent/cert.pem"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := brokerConfigFrom(t, tc.toml, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := parts(cfg); got != tc.want {
				t.Fatalf("TLS on %+v, want %+v", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

// TestClientTLSFlags: a bad --tls-ca fails a client command before it
// dials; RMQ_TLS_CA is read.
func TestClientTLSFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"rmq", "--tls-ca", "/nonexistent/ca.pem", "topic", "list"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--tls-ca") || !strings.Contains(err.Error(), "/nonexistent/ca.pem") {
		t.Fatalf("got %v, want an error naming --tls-ca and the file", err)
	}
	t.Setenv("RMQ_TLS_CA", "/nonexistent/env-ca.pem")
	err = run(context.Background(), []string{"rmq", "topic", "list"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "env-ca.pem") {
		t.Fatalf("got %v, want RMQ_TLS_CA read", err)
	}
}

// TestDevTLS runs the README tour against rmq dev --tls: the CA it prints
// lets the CLI send, consume and see the group; without it a command fails
// at once saying TLS is required.
func TestDevTLS(t *testing.T) {
	dir := t.TempDir()
	base := freeBase(t)
	nsPort := fmt.Sprint(base + 5) // its metrics on base+6
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"rmq", "--log-level", "warn", "dev", "--tls", "--dir", dir, "--dashboard", "127.0.0.1:0",
			"--namesrv-port", nsPort, "--broker-port", fmt.Sprint(base), "--flush", "async"}, &stdout, &stderr)
	}()
	var ca string
	e2e.Eventually(t, 20*time.Second, func() error {
		out := stdout.String()
		_, rest, ok := strings.Cut(out, "export RMQ_TLS_CA=")
		if !ok || !strings.Contains(out, "Press Ctrl-C") {
			return fmt.Errorf("dev has not printed its CA yet: %q", out)
		}
		ca, _, _ = strings.Cut(rest, "\n")
		return nil
	})
	h := &harness{t: t, ns: "127.0.0.1:" + nsPort}
	e2e.Eventually(t, 20*time.Second, func() error {
		out, _, err := h.run("--tls-ca", ca, "cluster", "status")
		if err != nil || strings.Count(out, "broker-a") != 3 || !strings.Contains(out, "leader *") {
			return fmt.Errorf("cluster status: %v\n%s\ndev stderr:\n%s", err, out, stderr.String())
		}
		return nil
	})
	h.ok("--tls-ca", ca, "topic", "create", "tls-topic")  // waits until the NameServer routes it
	h.ok("send", "tls-topic", "over TLS", "--tls-ca", ca) // global flags may follow the command
	t.Setenv("RMQ_TLS_CA", ca)
	if out := h.ok("consume", "tls-topic", "--group", "g", "--from", "first", "--count", "1"); !strings.Contains(out, "over TLS") {
		t.Fatalf("consume over TLS: %s", out)
	}
	t.Setenv("RMQ_TLS_CA", "")
	h.fails("requires TLS", "send", "tls-topic", "plaintext")

	// The dashboard serves HTTPS with the same certificate and reaches the
	// cluster over TLS.
	_, rest, _ := strings.Cut(stdout.String(), "  dashboard ")
	url, _, _ := strings.Cut(rest, "\n")
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("dashboard URL %q, want https", url)
	}
	hc, err := tlsconf.Config{CAFile: ca}.Client()
	if err != nil {
		t.Fatal(err)
	}
	web := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: hc}}
	resp, err := web.Get(url + "api/v1/topics/tls-topic")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"tls-topic"`) {
		t.Fatalf("dashboard over https: %d %s", resp.StatusCode, body)
	}
	// So do the metrics listeners.
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", base+6), fmt.Sprintf("127.0.0.1:%d", base+2)} {
		if !strings.Contains(stdout.String(), "https://"+addr+"/metrics") {
			t.Fatalf("dev output does not list https://%s/metrics:\n%s", addr, stdout.String())
		}
		resp, err := web.Get("https://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
			t.Fatalf("metrics over https at %s: %d %.200s", addr, resp.StatusCode, body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("rmq dev --tls: %v\nstderr:\n%s", err, stderr.String())
	}
}
