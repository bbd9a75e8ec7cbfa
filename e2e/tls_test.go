package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/drill"
	"github.com/rmq-dev/rmq/internal/tlsconf"
	"github.com/rmq-dev/rmq/namesrv"
)

// devTLS writes a throwaway CA and certificate and returns the files and
// the TLS config of a client that trusts the CA.
func devTLS(t testing.TB) (tlsconf.DevFiles, *tls.Config) {
	t.Helper()
	f, err := tlsconf.WriteDev(filepath.Join(t.TempDir(), "tls"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsconf.Config{CAFile: f.CA}.Client()
	if err != nil {
		t.Fatal(err)
	}
	return f, cli
}

// mustTLS builds a TLS config or fails t.
func mustTLS(t testing.TB, build func(tlsconf.Config) (*tls.Config, error), c tlsconf.Config) *tls.Config {
	t.Helper()
	tc, err := build(c)
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// plaintextRefused checks that a client without TLS is told at once that
// the NameServer requires it (not left to time out).
func plaintextRefused(t *testing.T, nsAddr string) {
	t.Helper()
	a, err := client.NewAdmin(client.AdminConfig{NameServers: []string{nsAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = a.ClusterStatus(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "requires TLS") {
		t.Fatalf("plaintext admin: got %v, want an error saying TLS is required", err)
	}
}

// TestTLSFailoverDrillInProcess: a NameServer and a three-node group in
// this process with TLS everywhere (client ports, NameServer, NameServer
// dials, Raft with mutual auth) keep every acknowledged message through
// leader crashes and a graceful leader stop under load.
func TestTLSFailoverDrillInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("failover drill")
	}
	f, cli := devTLS(t)
	server := mustTLS(t, tlsconf.Config.Server, f.Config)
	mutual := mustTLS(t, tlsconf.Config.Mutual, f.Config)
	c := StartCluster(t, Options{
		Namesrv: func(cfg *namesrv.Config) { cfg.TLS = server },
		Broker: func(cfg *broker.Config) {
			cfg.ClientTLS, cfg.RaftTLS, cfg.NameServerTLS = server, mutual, cli
		},
	})
	plaintextRefused(t, c.NamesrvAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := drill.Start(ctx, drill.Config{NameServers: []string{c.NamesrvAddr()}, TLS: cli, Producers: 4, Interval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitMore(t, w, 200)
	for i := range 4 {
		leader := c.LeaderID(20 * time.Second)
		if i == 3 {
			w.Mark("stop leader " + leader)
			c.Stop(leader)
		} else {
			w.Mark("kill leader " + leader)
			c.Kill(leader)
		}
		Eventually(t, 20*time.Second, func() error {
			if id := c.LeaderID(20 * time.Second); id == leader {
				return errors.New(leader + " still leads")
			}
			return nil
		})
		waitMore(t, w, 100)
		c.Restart(leader)
	}
	r := finishDrill(t, w)
	if len(r.Disruptions) != 4 {
		t.Fatalf("got %d disruptions, want 4", len(r.Disruptions))
	}
}

// TestTLSFailoverDrillProcesses: the same with rmq processes started with
// the TLS flags, leaders SIGKILLed and SIGTERMed; the CLI reaches the
// cluster with --tls-ca and is refused without it.
func TestTLSFailoverDrillProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process drill")
	}
	f, cli := devTLS(t)
	flags := []string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-ca", f.CA}
	c := startProcClusterWith(t, cli, flags, flags...)
	plaintextRefused(t, c.nsAddr)

	out, err := exec.Command(c.bin, "--namesrv", c.nsAddr, "--tls-ca", f.CA, "cluster", "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "leader *") {
		t.Fatalf("rmq --tls-ca cluster status: %v\n%s", err, out)
	}
	out, err = exec.Command(c.bin, "--namesrv", c.nsAddr, "cluster", "status").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "requires TLS") {
		t.Fatalf("rmq cluster status without TLS: %v\n%s", err, out)
	}

	w := startDrill(t, c)
	for i := range 4 {
		leader := c.leaderID(20 * time.Second)
		if i == 3 {
			w.Mark("SIGTERM leader " + leader)
			c.stop(leader)
		} else {
			w.Mark("SIGKILL leader " + leader)
			c.kill(leader)
		}
		if id := c.leaderID(20 * time.Second); id == leader {
			t.Fatalf("round %d: %s still leads", i+1, leader)
		}
		waitMore(t, w, 100)
		c.start(leader)
		c.waitCaughtUp(leader, 30*time.Second)
	}
	r := finishDrill(t, w)
	if len(r.Disruptions) != 4 {
		t.Fatalf("got %d disruptions, want 4", len(r.Disruptions))
	}
	if r.StoredDuplicates > 0 {
		t.Errorf("%d messages stored twice", r.StoredDuplicates)
	}
}
