package broker

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/internal/tlsconf"
	"github.com/rmq-dev/rmq/wire"
)

// testCA makes a CA and, per name, a mutual TLS config of a node it
// certified for 127.0.0.1 (what tlsconf.Config.Mutual builds from files).
func testCA(t testing.TB, names ...string) map[string]*tls.Config {
	t.Helper()
	ca, err := tlsconf.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*tls.Config{}
	for _, name := range names {
		leaf, err := ca.Issue(name, "127.0.0.1", "localhost")
		if err != nil {
			t.Fatal(err)
		}
		out[name] = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{leaf.TLS},
			RootCAs:      ca.Pool(),
			ClientCAs:    ca.Pool(),
			ClientAuth:   tls.RequireAndVerifyClientCert,
		}
	}
	return out
}

// tlsTransport is a Raft network transport over the TLS stream layer.
func tlsTransport(t *testing.T, cfg *tls.Config) *raft.NetworkTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{log: testLogger(t)}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &tlsStreamLayer{Listener: n.wrapTLS("raft", ln, cfg), adv: ln.Addr(), cfg: cfg},
		MaxPool: 1,
		Timeout: 5 * time.Second,
		Logger:  testLogger(t).Named("raft-net"),
	})
	t.Cleanup(func() { tr.Close() })
	return tr
}

// The TLS stream layer carries Raft RPCs between nodes of one CA and
// refuses, in both directions, a node whose certificate another CA
// signed.
func TestTLSStreamLayer(t *testing.T) {
	group := testCA(t, "n0", "n1")
	rogue := testCA(t, "n2")["n2"]
	n0, n1, n2 := tlsTransport(t, group["n0"]), tlsTransport(t, group["n1"]), tlsTransport(t, rogue)

	// n0 answers every AppendEntries, and counts them.
	served := make(chan string, 16)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case rpc := <-n0.Consumer():
				req := rpc.Command.(*raft.AppendEntriesRequest)
				served <- string(req.ID)
				rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, Success: true}, nil)
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()

	append := func(from *raft.NetworkTransport, id string, to raft.ServerAddress) error {
		req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id)}, Term: 1}
		var resp raft.AppendEntriesResponse
		if err := from.AppendEntries("peer", to, req, &resp); err != nil {
			return err
		}
		if !resp.Success {
			return errors.New("not successful")
		}
		return nil
	}
	if err := append(n1, "n1", n0.LocalAddr()); err != nil {
		t.Fatalf("n1 -> n0 (same CA): %v", err)
	}
	if got := <-served; got != "n1" {
		t.Fatalf("n0 served %q, want n1", got)
	}
	// n2 dials n0: n2 does not trust n0's certificate (and n0 would refuse n2's).
	if err := append(n2, "n2", n0.LocalAddr()); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("n2 -> n0: got %v, want a TLS error", err)
	}
	// n0 dials n2: n0 does not trust n2's certificate.
	if err := append(n0, "n0", n2.LocalAddr()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("n0 -> n2: got %v, want a certificate error", err)
	}
	// A node that trusts the group's CA but presents a foreign certificate
	// is refused by the accepting end.
	forged := rogue.Clone()
	forged.RootCAs = group["n0"].RootCAs
	n3 := tlsTransport(t, forged)
	if err := append(n3, "n3", n0.LocalAddr()); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("n3 (foreign certificate) -> n0: got %v, want a TLS error", err)
	}
	select {
	case id := <-served:
		t.Fatalf("n0 served an RPC from %s", id)
	default:
	}
}

// A group with TLS on its Raft transport loses a node, whose data is
// wiped; it comes back with a certificate another CA signed. Both sides
// refuse its handshakes, so it cannot rejoin: it gets no entry while the
// other two go on committing.
func TestTLSGroupRefusesForeignNode(t *testing.T) {
	group := testCA(t, "n0", "n1", "n2")
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.RaftTLS = group[cfg.NodeID] })
	c.leader(20 * time.Second)
	createTopic(t, c, "tls-a", 2)

	c.stop("n2")
	c.wipe("n2")
	cfg := c.cfgs["n2"]
	cfg.RaftTLS = testCA(t, "n2")["n2"]
	c.cfgs["n2"] = cfg
	n2 := c.start("n2")
	leader := c.leader(20 * time.Second)
	if leader == n2 {
		t.Fatal("the foreign node leads")
	}
	createTopic(t, c, "tls-b", 2)
	eventually(t, 20*time.Second, func() error {
		if got := c.node("n0").tlsRefused.Load() + c.node("n1").tlsRefused.Load(); got == 0 {
			return errors.New("no handshake refused by n0 or n1 yet")
		}
		if n2.tlsRefused.Load() == 0 {
			return errors.New("no handshake refused by n2 yet")
		}
		return nil
	})
	if st := n2.Status(); st.LastIndex != 0 || st.StateIndex != 0 || st.LeaderID != "" {
		t.Fatalf("n2: last index %d, state index %d, leader %q; want nothing", st.LastIndex, st.StateIndex, st.LeaderID)
	}
}

func TestValidateTLS(t *testing.T) {
	mutual := testCA(t, "n0")["n0"]
	oneWay := mutual.Clone()
	oneWay.ClientAuth = tls.NoClientCert
	cfg := Config{NodeID: "n0", DataDir: "d", RaftBind: "127.0.0.1:0", RaftTLS: oneWay, ClientTLS: &tls.Config{}}.withDefaults()
	err := cfg.Validate()
	for _, want := range []string{"ClientTLS has no certificate", "RaftTLS must require and verify"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to contain %q", err, want)
		}
	}
	cfg.RaftTLS, cfg.ClientTLS = mutual, mutual
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// With ClientTLS the client port serves rmq's protocol and RocketMQ
// remoting inside TLS, sniffed after the handshake; client certificates
// are optional; a plaintext client is told TLS is required.
func TestClientPortTLS(t *testing.T) {
	node := testCA(t, "n0")["n0"]
	server := node.Clone()
	server.ClientAuth = tls.VerifyClientCertIfGiven
	n := remotingNodeWithTLS(t, server)
	cli := &tls.Config{RootCAs: node.RootCAs, MinVersion: tls.VersionTLS12} // no client certificate

	tc, err := tlsconf.Dial(t.Context(), n.ClientAddr(), cli)
	if err != nil {
		t.Fatal(err)
	}
	rc := compat.NewClient(tc)
	defer rc.Close()
	wantCode(t, sendV1(t, rc, "tls", 0, nil, []byte("from-remoting"), 0), compat.RespSuccess)

	conn, err := wire.DialTLS(t.Context(), n.ClientAddr(), 0, node) // with a client certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pr wire.PullResponse
	if err := conn.Call(t.Context(), wire.CodePull, &wire.PullRequest{Topic: "tls"}, &pr); err != nil {
		t.Fatal(err)
	}
	if len(pr.Messages) != 1 || string(pr.Messages[0].Body) != "from-remoting" {
		t.Fatalf("rmq pull over TLS: %+v", pr.Messages)
	}

	plain, err := wire.Dial(t.Context(), n.ClientAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Call(t.Context(), wire.CodePull, &wire.PullRequest{Topic: "tls"}, &pr); !errors.Is(err, wire.ErrTLSRequired) {
		t.Fatalf("plaintext pull: got %v, want ErrTLSRequired", err)
	}
}

// remotingNodeWithTLS is a single serving node whose client port has TLS.
func remotingNodeWithTLS(t *testing.T, server *tls.Config) *Node {
	t.Helper()
	cfg := singleNodeConfig(t)
	cfg.ClientTLS = server
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	go n.Run(t.Context()) //nolint:errcheck // ends with the node
	eventually(t, 10*time.Second, func() error {
		if !n.Status().Serving {
			return errors.New("not serving yet")
		}
		return nil
	})
	return n
}
