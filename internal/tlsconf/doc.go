// Package tlsconf builds the TLS configurations of rmq's servers and
// clients from PEM files, wraps listeners with TLS, dials with TLS, and
// makes throwaway certificate authorities for development (rmq dev --tls)
// and tests.
//
// # Configs
//
// Config names a certificate, its key and a CA bundle. One *tls.Config
// built from it serves both ends of a connection, as rmq uses it:
//
//	Config{CertFile, KeyFile, CAFile, ClientAuth}
//	   Server()  Certificates = cert/key     (identifies this process)
//	             ClientCAs    = CA           (verifies client certificates,
//	             ClientAuth   = ClientAuth    when asked or required)
//	   Client()  RootCAs      = CA (else the system roots)
//	             Certificates = cert/key if given (a client certificate)
//	   Mutual()  Server() with RequireAndVerifyClientCert, and RootCAs = CA:
//	             the Raft transport, where both ends verify the other
//	             against the group's CA
//
// Go's crypto/tls uses only the server fields when it accepts and only
// the client fields when it dials, so a broker dials its NameServers and
// its Raft peers with the same config it serves with. TLS 1.2 is the
// minimum. Certificates are read once, at start; a changed file needs a
// restart.
//
// # Listeners and dials
//
// NewListener wraps any net.Listener (the client port, the NameServer,
// the Raft transport, an HTTP listener). Its Accept does not block on a
// handshake: a connection's handshake runs on its first Read or Write, in
// the goroutine that serves it, under that connection's deadlines. A peer
// whose first byte is not a TLS handshake record (a plaintext client) is
// answered with a fatal TLS alert, or with an HTTP 400 if it sent a
// letter (an HTTP request), and closed; rmq's wire client reads that alert
// as "the server requires TLS" instead of waiting (wire.ErrTLSRequired).
//
// Dial connects and completes the handshake before it returns, so a
// certificate problem or a plaintext server is an error of the dial
// (*HandshakeError, with a hint), not of a later request.
//
// # Development CA
//
// NewCA makes an ECDSA P-256 CA valid for a limited time; CA.Issue makes
// leaf certificates for both server and client use with the SANs given
// (127.0.0.1 and localhost for a local cluster). WriteDev writes a CA and
// one leaf certificate, used by every listener and by clients that present
// one, into a directory.
//
// The package has no goroutines of its own; its types are safe for
// concurrent use once built.
package tlsconf
