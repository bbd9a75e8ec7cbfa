package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/internal/tlsconf"
	"github.com/rmq-dev/rmq/namesrv"
)

// devTLSValidity is how long rmq dev --tls's certificates last; each run
// makes new ones.
const devTLSValidity = 30 * 24 * time.Hour

// devTLS is rmq dev --tls's throwaway CA and certificate.
type devTLS struct {
	files tlsconf.DevFiles
	file  fileTLS // every broker's [tls]: TLS on every part
}

// setupDevTLS makes a new CA and certificate in --dir/tls when --tls is
// set and puts TLS on the NameServer; zero otherwise.
func setupDevTLS(c *cli.Context, ncfg *namesrv.Config) (devTLS, error) {
	if !c.Bool("tls") {
		return devTLS{}, nil
	}
	f, err := tlsconf.WriteDev(filepath.Join(c.String("dir"), "tls"), devTLSValidity)
	if err != nil {
		return devTLS{}, err
	}
	if ncfg.TLS, err = f.Config.Server(); err != nil {
		return devTLS{}, err
	}
	ncfg.HTTPTLS = ncfg.TLS // its metrics over HTTPS, like the brokers'

	return devTLS{files: f, file: fileTLS{fileTLSPart: fileTLSPart{Cert: f.Cert, Key: f.Key, CA: f.CA}}}, nil
}

// print tells how to point clients at the CA.
func (d devTLS) print(w io.Writer) {
	if d.files.CA == "" {
		return
	}
	abs, err := filepath.Abs(d.files.CA)
	if err != nil {
		abs = d.files.CA
	}
	fmt.Fprintf(w, "\nTLS is on everywhere (Raft with mutual auth); a throwaway CA, valid until %s:\n", d.files.NotAfter.Format(time.DateOnly))
	fmt.Fprintf(w, "  ca       %s\n", abs)
	fmt.Fprintf(w, "  cert     %s (key %s; for 127.0.0.1, ::1, localhost)\n", d.files.Cert, d.files.Key)
	fmt.Fprintf(w, "Point clients at the CA (or add --tls-ca to each command):\n")
	fmt.Fprintf(w, "  export RMQ_TLS_CA=%s\n", abs)
}

// dashboardTLS is the dashboard's: clients that trust the CA, and HTTPS
// with the certificate; both nil without --tls.
func (d devTLS) dashboardTLS() (clientTLS, serverTLS *tls.Config, err error) {
	if d.files.CA == "" {
		return nil, nil, nil
	}
	if clientTLS, err = (tlsconf.Config{CAFile: d.files.CA}).Client(); err != nil {
		return nil, nil, err
	}
	if serverTLS, err = d.files.Config.Server(); err != nil {
		return nil, nil, err
	}
	return clientTLS, serverTLS, nil
}
