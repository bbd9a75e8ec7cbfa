package main

import (
	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

// credentials are the global --access-key/--secret-key (env
// RMQ_ACCESS_KEY, RMQ_SECRET_KEY) every client command signs with.
func credentials(c *cli.Context) client.Credentials {
	return client.Credentials{AccessKey: c.String("access-key"), SecretKey: c.String("secret-key")}
}
