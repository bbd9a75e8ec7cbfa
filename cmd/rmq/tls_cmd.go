package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/internal/tlsconf"
)

// tlsCommand groups TLS helpers: dev-certs writes what rmq dev --tls
// makes, for processes started by hand (bench scripts, compose, a tour
// with rmq broker).
func tlsCommand() *cli.Command {
	return &cli.Command{
		Name:  "tls",
		Usage: "TLS helpers",
		Subcommands: []*cli.Command{{
			Name:  "dev-certs",
			Usage: "write a throwaway CA (ca.pem) and one certificate (node.pem, node-key.pem) for 127.0.0.1, ::1, localhost and --host; not for production",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Required: true, Usage: "directory to write into (created; earlier files replaced)"},
				&cli.StringFlag{Name: "host", Usage: "more names or IP addresses for the certificate, comma-separated"},
				&cli.DurationFlag{Name: "valid", Value: devTLSValidity, Usage: "how long the CA and certificate last"},
			},
			Action: func(c *cli.Context) error {
				f, err := tlsconf.WriteDev(c.String("dir"), c.Duration("valid"), splitList(c.String("host"))...)
				if err != nil {
					return err
				}
				w := c.App.Writer
				fmt.Fprintf(w, "ca    %s\ncert  %s\nkey   %s\nvalid until %s\n", f.CA, f.Cert, f.Key, f.NotAfter.Format(time.RFC3339))
				fmt.Fprintf(w, "servers: --tls-cert %s --tls-key %s --tls-ca %s\nclients: --tls-ca %s (or RMQ_TLS_CA)\n", f.Cert, f.Key, f.CA, f.CA)
				return nil
			},
		}},
	}
}
