package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority held in memory: for development clusters
// and tests, never for production.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA makes a self-signed ECDSA P-256 CA named name, valid from an hour
// ago (clock skew) for validFor.
func NewCA(name string, validFor time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"rmq dev"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: CA certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

// Pool is a cert pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf is a certificate the CA issued, with its key, in PEM and parsed.
type Leaf struct {
	CertPEM, KeyPEM []byte
	TLS             tls.Certificate
}

// Issue makes a certificate for name, usable by servers and clients
// alike, valid for the hosts given (IP addresses become IP SANs, others
// DNS SANs) for as long as the CA.
func (ca *CA) Issue(name string, hosts ...string) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"rmq dev"}},
		NotBefore:    ca.Cert.NotBefore,
		NotAfter:     ca.Cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: key: %w", err)
	}
	l := &Leaf{CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("EC PRIVATE KEY", kder)}
	if l.TLS, err = tls.X509KeyPair(l.CertPEM, l.KeyPEM); err != nil {
		return nil, fmt.Errorf("tlsconf: key pair: %w", err)
	}
	return l, nil
}

// DevFiles are the files WriteDev wrote.
type DevFiles struct {
	Dir      string
	CA       string // ca.pem: the CA certificate (its key is not kept)
	Cert     string // node.pem: the leaf certificate every listener serves
	Key      string // node-key.pem
	Config   Config // the three files, for servers (client auth none)
	NotAfter time.Time
}

// devHosts are the SANs of a local cluster's certificate.
var devHosts = []string{"127.0.0.1", "::1", "localhost"}

// WriteDev makes a throwaway CA and one certificate for 127.0.0.1, ::1 and
// localhost (plus extra hosts), valid for validFor, and writes them into
// dir (created 0700; keys 0600), replacing earlier ones. The CA's key is
// discarded: nothing else can be issued from it.
func WriteDev(dir string, validFor time.Duration, extraHosts ...string) (DevFiles, error) {
	ca, err := NewCA("rmq dev CA", validFor)
	if err != nil {
		return DevFiles{}, err
	}
	leaf, err := ca.Issue("rmq dev node", append(append([]string{}, devHosts...), extraHosts...)...)
	if err != nil {
		return DevFiles{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DevFiles{}, fmt.Errorf("tlsconf: %w", err)
	}
	f := DevFiles{Dir: dir, CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "node.pem"),
		Key: filepath.Join(dir, "node-key.pem"), NotAfter: ca.Cert.NotAfter}
	var errs []error
	for _, w := range []struct {
		path string
		b    []byte
		mode os.FileMode
	}{{f.CA, ca.CertPEM, 0o644}, {f.Cert, leaf.CertPEM, 0o644}, {f.Key, leaf.KeyPEM, 0o600}} {
		errs = append(errs, os.WriteFile(w.path, w.b, w.mode))
	}
	if err := errors.Join(errs...); err != nil {
		return DevFiles{}, fmt.Errorf("tlsconf: write dev certificates: %w", err)
	}
	f.Config = Config{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA}
	return f, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("tlsconf: crypto/rand failed: %v", err)) // crypto/rand does not fail on supported systems
	}
	return n
}
