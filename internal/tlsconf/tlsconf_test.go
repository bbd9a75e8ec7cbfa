package tlsconf

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	f, err := WriteDev(dir, time.Hour, "broker-1.internal")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(f.Key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	pool, err := LoadCA(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("got key algorithm %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost", "broker-1.internal"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("verify for %s, usage %v: %v", host, usage, err)
			}
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool}); err == nil {
		t.Error("the dev certificate verified for example.com")
	}
	if d := time.Until(f.NotAfter); d <= 0 || d > time.Hour {
		t.Errorf("NotAfter in %v, want within an hour", d)
	}
}

func TestConfigBuild(t *testing.T) {
	f, err := WriteDev(t.TempDir(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		build   func(Config) (*tls.Config, error)
		cfg     Config
		wantErr string
		check   func(*tls.Config) string
	}{
		{name: "server", build: Config.Server, cfg: Config{CertFile: f.Cert, KeyFile: f.Key},
			check: func(c *tls.Config) string {
				if len(c.Certificates) != 1 || c.ClientAuth != tls.NoClientCert {
					return "want one certificate and no client auth"
				}
				return ""
			}},
		{name: "server optional auth", build: Config.Server, cfg: Config{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA, ClientAuth: Optional},
			check: func(c *tls.Config) string {
				if c.ClientAuth != tls.VerifyClientCertIfGiven || c.ClientCAs == nil {
					return "want VerifyClientCertIfGiven with ClientCAs"
				}
				return ""
			}},
		{name: "server without key", build: Config.Server, cfg: Config{CertFile: f.Cert}, wantErr: "needs a certificate and its key"},
		{name: "server auth without CA", build: Config.Server, cfg: Config{CertFile: f.Cert, KeyFile: f.Key, ClientAuth: Require}, wantErr: "needs a CA file"},
		{name: "missing cert file", build: Config.Server, cfg: Config{CertFile: "/nonexistent.pem", KeyFile: f.Key}, wantErr: "/nonexistent.pem"},
		{name: "bad CA file", build: Config.Client, cfg: Config{CAFile: bad}, wantErr: "no PEM certificate"},
		{name: "client CA only", build: Config.Client, cfg: Config{CAFile: f.CA},
			check: func(c *tls.Config) string {
				if c.RootCAs == nil || len(c.Certificates) != 0 {
					return "want RootCAs and no certificate"
				}
				return ""
			}},
		{name: "client cert without key", build: Config.Client, cfg: Config{CAFile: f.CA, CertFile: f.Cert}, wantErr: "both cert and key"},
		{name: "mutual", build: Config.Mutual, cfg: f.Config,
			check: func(c *tls.Config) string {
				if c.ClientAuth != tls.RequireAndVerifyClientCert || c.RootCAs == nil || c.ClientCAs == nil || len(c.Certificates) != 1 {
					return "want RequireAndVerifyClientCert, both pools and a certificate"
				}
				return ""
			}},
		{name: "mutual without CA", build: Config.Mutual, cfg: Config{CertFile: f.Cert, KeyFile: f.Key}, wantErr: "needs cert, key and ca"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.build(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("got %v, want an ErrInvalid containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.MinVersion != tls.VersionTLS12 {
				t.Errorf("got MinVersion %x, want TLS 1.2", c.MinVersion)
			}
			if msg := tc.check(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestParseClientAuthAndOverride(t *testing.T) {
	for in, want := range map[string]ClientAuth{"": None, "none": None, "optional": Optional, "Require": Require, "verify-if-given": Optional} {
		got, err := ParseClientAuth(in)
		if err != nil || got != want {
			t.Errorf("ParseClientAuth(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseClientAuth("maybe"); err == nil {
		t.Error("ParseClientAuth(maybe) succeeded")
	}
	shared := Config{CertFile: "a.pem", KeyFile: "a-key.pem", CAFile: "ca.pem"}
	got := shared.Override(Config{CertFile: "b.pem", ClientAuth: Require})
	want := Config{CertFile: "b.pem", KeyFile: "a-key.pem", CAFile: "ca.pem", ClientAuth: Require}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if (Config{}).Enabled() || !shared.Enabled() {
		t.Error("Enabled is wrong")
	}
}

// echoServer serves ln, echoing one line per connection, until the test ends.
func echoServer(t *testing.T, ln net.Listener) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(nc).ReadString('\n')
				if err == nil {
					_, _ = io.WriteString(nc, line)
				}
			}()
		}
	}()
}

func listen(t *testing.T, cfg *tls.Config) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil {
		return ln
	}
	return NewListener(ln, cfg, ListenerConfig{})
}

func TestListenerAndDial(t *testing.T) {
	f, err := WriteDev(t.TempDir(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := f.Config.Server()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := Config{CAFile: f.CA}.Client()
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, srv)
	echoServer(t, ln)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("tls", func(t *testing.T) {
		tc, err := Dial(ctx, ln.Addr().String(), cli)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		if _, err := io.WriteString(tc, "hello\n"); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(tc).ReadString('\n')
		if err != nil || line != "hello\n" {
			t.Fatalf("got %q, %v; want hello", line, err)
		}
	})
	t.Run("plaintext client gets an alert", func(t *testing.T) {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write([]byte{0, 0, 0, 20, 1, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(nc)
		if err != nil || string(got) != string(alertUnexpected) {
			t.Fatalf("got %x, %v; want the alert %x then EOF", got, err, alertUnexpected)
		}
	})
	t.Run("plaintext HTTP gets a 400", func(t *testing.T) {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(nc, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
		got, _ := io.ReadAll(nc)
		if !strings.HasPrefix(string(got), "HTTP/1.0 400") {
			t.Fatalf("got %q, want an HTTP 400", got)
		}
	})
	t.Run("wrong CA", func(t *testing.T) {
		other, err := WriteDev(t.TempDir(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ocli, err := Config{CAFile: other.CA}.Client()
		if err != nil {
			t.Fatal(err)
		}
		_, err = Dial(ctx, ln.Addr().String(), ocli)
		var he *HandshakeError
		if !errors.As(err, &he) || !strings.Contains(err.Error(), "check --tls-ca") {
			t.Fatalf("got %v, want a HandshakeError naming the CA", err)
		}
	})
	t.Run("tls client on a plaintext port", func(t *testing.T) {
		plain := listen(t, nil)
		go func() { // a plaintext server that reads a little and hangs up
			nc, err := plain.Accept()
			if err != nil {
				return
			}
			_, _ = nc.Read(make([]byte, 10))
			nc.Close()
		}()
		_, err := Dial(ctx, plain.Addr().String(), cli)
		if err == nil || !strings.Contains(err.Error(), "is TLS off on that port?") {
			t.Fatalf("got %v, want a hint that TLS is off", err)
		}
	})
}

func TestMutual(t *testing.T) {
	dir := t.TempDir()
	good, err := WriteDev(filepath.Join(dir, "good"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := WriteDev(filepath.Join(dir, "rogue"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	gcfg, err := good.Config.Mutual()
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, gcfg)
	echoServer(t, ln)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	roundTrip := func(cfg *tls.Config) error {
		tc, err := Dial(ctx, ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer tc.Close()
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(tc, "x\n"); err != nil {
			return err
		}
		_, err = bufio.NewReader(tc).ReadString('\n')
		return err
	}
	if err := roundTrip(gcfg); err != nil {
		t.Fatalf("a peer of the same CA: %v", err)
	}
	// A client that trusts the group's CA but presents no certificate, or
	// one from another CA, is refused by the server.
	noCert, err := Config{CAFile: good.CA}.Client()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := Config{CertFile: rogue.Cert, KeyFile: rogue.Key, CAFile: good.CA}.Client()
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*tls.Config{"no certificate": noCert, "foreign certificate": foreign} {
		if err := roundTrip(cfg); err == nil || !strings.Contains(err.Error(), "tls") {
			t.Errorf("%s: got %v, want a TLS error", name, err)
		}
	}
}
