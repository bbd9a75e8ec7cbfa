package client_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/rmq-dev/rmq/internal/leakcheck"
)

// TestMain checks that Producers, Consumers, Admins and the clusters
// they talk to stop every goroutine they started. Raft's transport
// connection handlers of killed nodes are not ours (they end when the
// peer's connection closes), so they are ignored.
func TestMain(m *testing.M) {
	leakcheck.Main(m,
		goleak.IgnoreAnyFunction("github.com/hashicorp/raft.(*NetworkTransport).handleConn"),
		// Raft v1.7.3 leaves some futures unanswered on Shutdown; the
		// goroutine waiting for one outlives its node (broker/apply.go,
		// await), seen under load.
		goleak.IgnoreAnyFunction("github.com/rmq-dev/rmq/broker.waitFuture"),
	)
}
