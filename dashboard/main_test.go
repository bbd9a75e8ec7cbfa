package dashboard

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/rmq-dev/rmq/internal/leakcheck"
)

// TestMain checks that the server, its cached clients and the clusters
// the tests start stop every goroutine (raft's transport handlers end
// when their peer's connection closes, as in client's TestMain).
func TestMain(m *testing.M) {
	leakcheck.Main(m,
		goleak.IgnoreAnyFunction("github.com/hashicorp/raft.(*NetworkTransport).handleConn"),
		// Raft v1.7.3 leaves some futures unanswered on Shutdown; the
		// goroutine waiting for one outlives its node (broker/apply.go,
		// await), seen under load.
		goleak.IgnoreAnyFunction("github.com/rmq-dev/rmq/broker.waitFuture"),
	)
}
