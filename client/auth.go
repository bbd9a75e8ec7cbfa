package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rmq-dev/rmq/wire"
)

// Credentials are an account of the brokers' access control (their ACL
// file): every request is then signed with SecretKey (HMAC-SHA256 over
// the request code, a timestamp and the body; see wire.Auth) and carries
// AccessKey. Leave them empty for brokers without access control. The
// same field is on ProducerConfig, ConsumerConfig, SimpleConsumerConfig
// and AdminConfig; an HTTP front end that acts for a logged-in user
// builds an Admin with that user's Credentials.
type Credentials struct {
	AccessKey string
	SecretKey string
}

// ErrAccessDenied matches a request the broker's access control refused:
// unsigned, an unknown access key, a wrong signature, a timestamp outside
// the broker's window, a source address outside a white list, or a
// missing permission. The message names which, e.g.
// `acl: access key "ak1" has no PUB permission on topic "orders"`.
var ErrAccessDenied = sentinel(wire.CodeAccessDenied)

// validate checks the credentials as a config's field.
func (c Credentials) validate() error {
	switch {
	case c.AccessKey == "" && c.SecretKey == "":
		return nil
	case c.AccessKey == "":
		return errors.New("Credentials.SecretKey is set without an AccessKey")
	case c.SecretKey == "":
		return fmt.Errorf("Credentials.AccessKey %q has no SecretKey", c.AccessKey)
	case len(c.AccessKey) > wire.MaxAccessKey || strings.ContainsAny(c.AccessKey, " \t\r\n"):
		return fmt.Errorf("Credentials.AccessKey must be at most %d bytes without spaces", wire.MaxAccessKey)
	}
	return nil
}

// withCredentials makes p sign every request on its connections.
func (p *pool) withCredentials(c Credentials) *pool {
	p.creds = wire.Credentials{AccessKey: c.AccessKey, SecretKey: c.SecretKey}
	return p
}
