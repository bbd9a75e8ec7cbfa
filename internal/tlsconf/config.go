package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrInvalid is wrapped by every config error.
var ErrInvalid = errors.New("tlsconf: invalid TLS config")

// ClientAuth is how a server treats client certificates.
type ClientAuth int

// Client certificate policies. The zero value is None.
const (
	// None: no client certificate is asked for.
	None ClientAuth = iota
	// Optional: a client may present a certificate; if it does, it must
	// verify against the CA (tls.VerifyClientCertIfGiven).
	Optional
	// Require: every client must present a certificate that verifies
	// against the CA (tls.RequireAndVerifyClientCert).
	Require
)

func (a ClientAuth) String() string {
	switch a {
	case Optional:
		return "optional"
	case Require:
		return "require"
	default:
		return "none"
	}
}

// ParseClientAuth parses "none", "optional" or "require" ("" is none).
func ParseClientAuth(s string) (ClientAuth, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none", "no":
		return None, nil
	case "optional", "verify-if-given", "request":
		return Optional, nil
	case "require", "required", "require-and-verify":
		return Require, nil
	}
	return None, fmt.Errorf("%w: client auth %q: want none, optional or require", ErrInvalid, s)
}

func (a ClientAuth) tls() tls.ClientAuthType {
	switch a {
	case Optional:
		return tls.VerifyClientCertIfGiven
	case Require:
		return tls.RequireAndVerifyClientCert
	default:
		return tls.NoClientCert
	}
}

// Config names the PEM files of one TLS identity. The zero value is "no
// TLS".
type Config struct {
	// CertFile and KeyFile are this process's certificate (chain) and
	// private key. A server needs both; a client presents them when set.
	CertFile string
	KeyFile  string
	// CAFile holds the CA certificates that verify peers: the servers a
	// client dials (default: the system roots) and, with ClientAuth, the
	// clients a server accepts.
	CAFile string
	// ClientAuth is a server's client certificate policy. Default None.
	ClientAuth ClientAuth
	// ServerName, for a client, is the name checked against the server's
	// certificate. Default: the host of the address dialed (which may be
	// an IP address: the certificate then needs it as an IP SAN).
	ServerName string
}

// Enabled reports whether any file is named.
func (c Config) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" }

// Override returns c with every field that o sets replacing c's: a
// per-listener block over a shared one.
func (c Config) Override(o Config) Config {
	if o.CertFile != "" {
		c.CertFile = o.CertFile
	}
	if o.KeyFile != "" {
		c.KeyFile = o.KeyFile
	}
	if o.CAFile != "" {
		c.CAFile = o.CAFile
	}
	if o.ClientAuth != None {
		c.ClientAuth = o.ClientAuth
	}
	if o.ServerName != "" {
		c.ServerName = o.ServerName
	}
	return c
}

// Server builds a server config: it needs CertFile and KeyFile, and
// CAFile when ClientAuth is not None.
func (c Config) Server() (*tls.Config, error) {
	var errs []error
	if c.CertFile == "" || c.KeyFile == "" {
		errs = append(errs, errors.New("a server needs a certificate and its key (cert and key)"))
	}
	if c.ClientAuth != None && c.CAFile == "" {
		errs = append(errs, fmt.Errorf("client auth %s needs a CA file to verify clients with", c.ClientAuth))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return c.build(true)
}

// Client builds a client config: CAFile verifies the server (default
// the system roots); CertFile and KeyFile, both or neither, are
// presented when the server asks.
func (c Config) Client() (*tls.Config, error) {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, fmt.Errorf("%w: a client certificate needs both cert and key", ErrInvalid)
	}
	return c.build(false)
}

// Mutual builds the config of a transport whose both ends authenticate
// (the Raft transport): it needs all three files, requires and verifies
// the peer's certificate against CAFile whichever end dialed, and serves
// as both the server and the client config.
func (c Config) Mutual() (*tls.Config, error) {
	if c.CertFile == "" || c.KeyFile == "" || c.CAFile == "" {
		return nil, fmt.Errorf("%w: mutual TLS needs cert, key and ca (the group's CA)", ErrInvalid)
	}
	c.ClientAuth = Require
	return c.build(true)
}

// build loads the files into one config usable at both ends.
func (c Config) build(server bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	var errs []error
	if c.CertFile != "" && c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate %s, key %s: %w", c.CertFile, c.KeyFile, err))
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	if c.CAFile != "" {
		pool, err := LoadCA(c.CAFile)
		if err != nil {
			errs = append(errs, err)
		} else {
			cfg.RootCAs, cfg.ClientCAs = pool, pool
		}
	}
	if server {
		cfg.ClientAuth = c.ClientAuth.tls()
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return cfg, nil
}

// LoadCA reads a PEM bundle of CA certificates.
func LoadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}
