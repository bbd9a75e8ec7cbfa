package main

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/internal/tlsconf"
	"github.com/rmq-dev/rmq/namesrv"
)

// TLS settings of the servers (rmq broker, rmq namesrv, rmq dev --tls)
// and of the client commands (the global --tls-ca, --tls-cert, --tls-key).

// fileTLS is the [tls] table of a broker's TOML file: a shared identity
// (cert, key, ca, client_auth) used by every part listed in "on", and
// per-part tables ([tls.client], [tls.raft], [tls.http], [tls.namesrv])
// whose keys override the shared ones for that part; a part table with
// a key also turns that part on.
//
//	[tls]
//	cert = "node.pem"
//	key = "node-key.pem"
//	ca = "ca.pem"
//	client_auth = "none"    # none | optional | require (client and http ports)
//	on = ["client", "raft", "http", "namesrv"]   # the default once cert, key or ca is set
//	[tls.raft]
//	cert = "raft.pem"       # another certificate for the Raft transport
type fileTLS struct {
	fileTLSPart
	On         []string     `toml:"on"`
	Client     *fileTLSPart `toml:"client"`
	Raft       *fileTLSPart `toml:"raft"`
	HTTP       *fileTLSPart `toml:"http"`
	NameServer *fileTLSPart `toml:"namesrv"`
}

// fileTLSPart is one set of TLS keys.
type fileTLSPart struct {
	Cert       string `toml:"cert"`
	Key        string `toml:"key"`
	CA         string `toml:"ca"`
	ClientAuth string `toml:"client_auth"`
	ServerName string `toml:"server_name"` // namesrv only: the name the NameServers' certificate must have
}

// tlsParts are the parts of a broker that TLS applies to.
var tlsParts = []string{"client", "raft", "http", "namesrv"}

func (p fileTLSPart) set() bool {
	return p.Cert != "" || p.Key != "" || p.CA != "" || p.ClientAuth != "" || p.ServerName != ""
}

// config converts p, naming bad keys after prefix.
func (p fileTLSPart) config(prefix string) (tlsconf.Config, error) {
	auth, err := tlsconf.ParseClientAuth(p.ClientAuth)
	if err != nil {
		return tlsconf.Config{}, fmt.Errorf("%sclient_auth: %w", prefix, err)
	}
	return tlsconf.Config{CertFile: p.Cert, KeyFile: p.Key, CAFile: p.CA, ClientAuth: auth, ServerName: p.ServerName}, nil
}

// apply sets the broker's TLS configs from the table, reporting every
// problem.
func (ft fileTLS) apply(cfg *broker.Config) []string {
	var errs []string
	shared, err := ft.fileTLSPart.config("tls.")
	if err != nil {
		errs = append(errs, err.Error())
	}
	on := ft.On
	if len(on) == 0 && shared.Enabled() {
		on = tlsParts
	}
	for _, p := range on {
		if !slices.Contains(tlsParts, p) {
			errs = append(errs, fmt.Sprintf("tls.on: %q is not one of %s", p, strings.Join(tlsParts, ", ")))
		}
	}
	parts := []struct {
		name  string
		over  *fileTLSPart
		build func(tlsconf.Config) (*tls.Config, error)
		out   **tls.Config
	}{
		{"client", ft.Client, tlsconf.Config.Server, &cfg.ClientTLS},
		{"raft", ft.Raft, tlsconf.Config.Mutual, &cfg.RaftTLS},
		{"http", ft.HTTP, tlsconf.Config.Server, &cfg.HTTPTLS},
		{"namesrv", ft.NameServer, tlsconf.Config.Client, &cfg.NameServerTLS},
	}
	for _, p := range parts {
		c, enabled := shared, slices.Contains(on, p.name)
		if p.over != nil && p.over.set() {
			o, err := p.over.config("tls." + p.name + ".")
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			c, enabled = c.Override(o), true
		}
		if !enabled {
			continue
		}
		t, err := p.build(c)
		if err != nil {
			errs = append(errs, fmt.Sprintf("tls (%s): %v", p.name, err))
			continue
		}
		*p.out = t
	}
	return errs
}

// serverTLSFlags are the TLS flags of rmq broker and rmq namesrv. They
// are not read from the environment: RMQ_TLS_* are the client commands'.
func serverTLSFlags(broker bool) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "tls-cert", Usage: "serve TLS with this certificate (PEM; with --tls-key)"},
		&cli.StringFlag{Name: "tls-key", Usage: "the private key of --tls-cert (PEM)"},
		&cli.StringFlag{Name: "tls-ca", Usage: "CA certificates (PEM) that verify peers: client certificates, and the servers this process dials"},
		&cli.StringFlag{Name: "tls-client-auth", Usage: "client certificates on the client port: none, optional or require (default none)"},
	}
	if broker {
		flags = append(flags, &cli.StringFlag{Name: "tls-on",
			Usage: "where the TLS flags apply, comma-separated: client (the client port), raft (mutual, needs --tls-ca), http, namesrv (dialing the NameServers) (default all)"})
	}
	return flags
}

// applyTLSFlags overrides the file's [tls] keys with rmq broker's flags.
func applyTLSFlags(c *cli.Context, ft *fileTLS) {
	for _, f := range []struct {
		name string
		dst  *string
	}{{"tls-cert", &ft.Cert}, {"tls-key", &ft.Key}, {"tls-ca", &ft.CA}, {"tls-client-auth", &ft.ClientAuth}} {
		if c.IsSet(f.name) {
			*f.dst = c.String(f.name)
		}
	}
	if c.IsSet("tls-on") {
		ft.On = splitList(c.String("tls-on"))
	}
}

// namesrvTLS is rmq namesrv's TLS config from its flags (nil: off).
func namesrvTLS(c *cli.Context) (*tls.Config, error) {
	p := fileTLSPart{Cert: c.String("tls-cert"), Key: c.String("tls-key"), CA: c.String("tls-ca"), ClientAuth: c.String("tls-client-auth")}
	if !p.set() {
		return nil, nil
	}
	tc, err := p.config("--tls-")
	if err != nil {
		return nil, err
	}
	return tc.Server()
}

// setNamesrvTLS sets cfg.TLS from rmq namesrv's flags.
func setNamesrvTLS(c *cli.Context, cfg *namesrv.Config) error {
	t, err := namesrvTLS(c)
	if err != nil {
		return fmt.Errorf("namesrv TLS: %w", err)
	}
	cfg.TLS, cfg.HTTPTLS = t, t
	return nil
}

// clientTLSFlags are the global flags of the client commands (fresh ones
// per app: urfave/cli keeps an environment value in the flag).
func clientTLSFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls-ca", EnvVars: []string{"RMQ_TLS_CA"},
			Usage: "connect with TLS, verifying servers with these CA certificates (PEM; rmq dev --tls prints its CA)"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"RMQ_TLS_CERT"}, Usage: "client certificate (PEM) for servers that ask for one; implies TLS"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"RMQ_TLS_KEY"}, Usage: "the private key of --tls-cert (PEM)"},
		&cli.StringFlag{Name: "tls-server-name", EnvVars: []string{"RMQ_TLS_SERVER_NAME"},
			Usage: "name the servers' certificates must have (default: the host of each address dialed)"},
	}
}

// clientTLSKey is where loadClientTLS keeps the client commands' TLS
// config for this run (cli.App.Metadata).
const clientTLSKey = "client-tls"

// loadClientTLS builds the client commands' TLS config from the global
// flags before the command runs (the servers', whose flags are their own,
// excepted), and again once a client command parsed flags given after it
// (interspersed).
func loadClientTLS(c *cli.Context, before bool) error {
	if before { // the app's Before: the command is the first argument
		switch c.Args().First() {
		case "broker", "namesrv", "dev", "tls":
			return nil
		}
	}
	ca, cert, key := c.String("tls-ca"), c.String("tls-cert"), c.String("tls-key")
	if ca == "" && cert == "" && key == "" {
		return nil
	}
	t, err := tlsconf.Config{CAFile: ca, CertFile: cert, KeyFile: key, ServerName: c.String("tls-server-name")}.Client()
	if err != nil {
		return fmt.Errorf("--tls-ca/--tls-cert/--tls-key: %w", err)
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[clientTLSKey] = t
	return nil
}

// clientTLS is the client commands' TLS config (nil: plaintext).
func clientTLS(c *cli.Context) *tls.Config {
	t, _ := c.App.Metadata[clientTLSKey].(*tls.Config)
	return t
}
