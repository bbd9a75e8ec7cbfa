package namesrv

import (
	"testing"

	"github.com/rmq-dev/rmq/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
