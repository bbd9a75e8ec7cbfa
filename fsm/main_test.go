package fsm

import (
	"testing"

	"github.com/rmq-dev/rmq/internal/leakcheck"
)

// The FSM starts no goroutines; goleak checks that stays true.
func TestMain(m *testing.M) { leakcheck.Main(m) }
