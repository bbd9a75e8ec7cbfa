package client

import (
	"crypto/tls"

	"github.com/rmq-dev/rmq/internal/tlsconf"
)

// LoadTLS builds the TLS config of a client from PEM files: caFile
// verifies the servers (empty: the system roots); certFile and keyFile,
// both or neither, are the client certificate a server may ask for. Put
// the result in the TLS field of ProducerConfig, ConsumerConfig,
// SimpleConsumerConfig or AdminConfig. The name checked against a
// server's certificate is the host of the address dialed (the NameServer
// address given, and the broker addresses it returns).
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	return tlsconf.Config{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}.Client()
}
