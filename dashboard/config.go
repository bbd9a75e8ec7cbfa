package dashboard

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/client"
)

// AdminFactory returns the Admin that serves requests made with one set of
// credentials. The server calls it once per distinct access key and secret
// and caches the result until Close; an error refuses the request (401
// with the error's text). It is called under the server's lock, so it
// must not block: client.NewAdmin does no I/O, and keys the cluster
// refuses show up as errors of the calls made with them. Anonymous requests (no credentials, when
// Config.Anonymous allows them) use accessKey == secretKey == "".
//
// A factory that puts the keys into the client config (Credentials)
// makes every API call run with the caller's own permissions, as
// cmd/rmq's do.
type AdminFactory func(accessKey, secretKey string) (*client.Admin, error)

// ProducerFactory is AdminFactory for the Producer behind
// POST /api/v1/messages, created on the first send with a set of keys.
type ProducerFactory func(accessKey, secretKey string) (*client.Producer, error)

// Config configures a Server.
type Config struct {
	// Listen is the HTTP address, e.g. 127.0.0.1:8080. Ignored when
	// Listener is set.
	Listen string
	// Listener, if set, is used instead of listening on Listen (tests
	// pass 127.0.0.1:0 listeners).
	Listener net.Listener
	// TLS, if set, serves HTTPS with it (its Certificates; ClientCAs and
	// ClientAuth if clients must show certificates). Nil: plain HTTP.
	TLS *tls.Config
	// Admin makes the Admin of a caller's credentials. Required.
	Admin AdminFactory
	// Producer makes the Producer of a caller's credentials. Nil
	// disables sending (POST /api/v1/messages answers 501).
	Producer ProducerFactory
	// Anonymous serves requests that carry no credentials with
	// Admin("", ""). Without it they get 401 and the page shows its
	// login form. cmd/rmq sets it: brokers without access control serve
	// unsigned requests, brokers with it refuse them (401, the login form).
	Anonymous bool
	// SessionTTL is how long a login cookie stays valid. Default 12h.
	SessionTTL time.Duration
	// CallTimeout bounds the cluster calls of one API request. Default
	// 10s.
	CallTimeout time.Duration
	// Logger receives the server's logs. Default: discard.
	Logger hclog.Logger
	// Now is the clock for sessions and relative times; default
	// time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Admin == nil {
		errs = append(errs, errors.New("dashboard: Admin factory is required"))
	}
	if c.Listener == nil && c.Listen == "" {
		errs = append(errs, errors.New("dashboard: Listen or Listener is required"))
	}
	if c.SessionTTL < 0 || c.CallTimeout < 0 {
		errs = append(errs, errors.New("dashboard: negative SessionTTL or CallTimeout"))
	}
	return errors.Join(errs...)
}
