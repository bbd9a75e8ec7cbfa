package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/dashboard"
	"github.com/rmq-dev/rmq/internal/tlsconf"
)

func dashboardCommand() *cli.Command {
	return &cli.Command{
		Name:  "dashboard",
		Usage: "serve the web dashboard and the HTTP admin API (/api/v1/...) for the cluster at --namesrv",
		Description: "Open the printed URL in a browser. The API is documented in dashboard/API.md; the page\n" +
			"uses nothing else. Ctrl-C stops it.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "HTTP address to listen on"},
			&cli.StringFlag{Name: "https-cert", Usage: "serve HTTPS with this certificate (PEM; with --https-key)"},
			&cli.StringFlag{Name: "https-key", Usage: "the private key of --https-cert (PEM)"},
		},
		Action: func(c *cli.Context) error {
			ns, err := nameServers(c)
			if err != nil {
				return err
			}
			var serverTLS *tls.Config
			if c.String("https-cert") != "" || c.String("https-key") != "" {
				if serverTLS, err = (tlsconf.Config{CertFile: c.String("https-cert"), KeyFile: c.String("https-key")}).Server(); err != nil {
					return fmt.Errorf("dashboard: --https-cert/--https-key: %w", err)
				}
			}
			srv, err := newDashboard(ns, c.String("listen"), c.Duration("timeout"), rootLogger(c).Named("dashboard"), clientTLS(c), serverTLS)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "rmq dashboard on %s (NameServer %s); Ctrl-C stops it\n", srv.URL(), c.String("namesrv"))
			return runDashboard(c.Context, srv)
		},
	}
}

// newDashboard makes a dashboard server whose clients talk to the
// NameServers ns. Each caller's keys (the login form or HTTP Basic auth)
// sign that caller's requests, so on a cluster with access control every
// API call runs with the caller's permissions; requests without keys are
// sent unsigned, which such a cluster refuses (the page then asks to log
// in) and one without access control serves.
//
// clientTLS is for its connections to the cluster (nil: plaintext),
// serverTLS for its own listener (nil: plain HTTP).
func newDashboard(ns []string, listen string, timeout time.Duration, log hclog.Logger, clientTLS, serverTLS *tls.Config) (*dashboard.Server, error) {
	return dashboard.New(dashboard.Config{
		Listen:      listen,
		TLS:         serverTLS,
		Logger:      log,
		CallTimeout: timeout,
		Anonymous:   true,
		Admin: func(ak, sk string) (*client.Admin, error) {
			return client.NewAdmin(client.AdminConfig{NameServers: ns, Timeout: timeout, Logger: log.Named("admin"),
				Credentials: client.Credentials{AccessKey: ak, SecretKey: sk}, TLS: clientTLS})
		},
		Producer: func(ak, sk string) (*client.Producer, error) {
			// A send from the page to a missing topic is refused, not
			// auto-created: a typo must not make a topic.
			return client.NewProducer(client.ProducerConfig{NameServers: ns, Group: "RMQ_DASHBOARD_PRODUCER",
				AutoCreateQueues: -1, Logger: log.Named("producer"), Credentials: client.Credentials{AccessKey: ak, SecretKey: sk}, TLS: clientTLS})
		},
	})
}

// runDashboard serves until ctx ends, then closes the server's clients.
func runDashboard(ctx context.Context, srv *dashboard.Server) error {
	err := srv.Run(ctx)
	return errors.Join(err, srv.Close())
}
