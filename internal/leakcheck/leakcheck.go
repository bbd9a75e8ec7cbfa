package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Patience is how long Main waits for goroutines left after the tests to
// end before it reports them as leaked.
const Patience = 10 * time.Second

// Main runs the tests of m and exits the process: with their code if it
// is not 0, otherwise with 1 if goroutines not matched by opts are still
// running after Patience, printing them.
func Main(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := wait(Patience, opts...); err != nil {
			fmt.Fprintf(os.Stderr, "leakcheck: goroutines still running %v after the tests: %v\n", Patience, err)
			code = 1
		}
	}
	os.Exit(code)
}

// wait asks goleak until it finds no leaked goroutine or patience has
// passed; each goleak.Find already retries for about a second, so the
// loop runs about patience/1s times.
func wait(patience time.Duration, opts ...goleak.Option) error {
	deadline := time.Now().Add(patience)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}
