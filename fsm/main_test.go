package fsm

import (
	"testing"

	"go.uber.org/goleak"
)

// The FSM starts no goroutines; goleak checks that stays true.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
