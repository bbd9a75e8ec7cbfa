package namesrv

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v, want nil", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Config{ExpiryFactor: -1, MinExpiry: -1, DownRetention: -1, SweepInterval: -1, MaxFrame: 10}
	err := cfg.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"Listen", "ExpiryFactor", "MinExpiry", "DownRetention", "SweepInterval", "MaxFrame"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if !strings.HasPrefix(err.Error(), "namesrv: ") {
		t.Errorf("error %q lacks the namesrv: prefix", err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(Config{Listen: "127.0.0.1:0", ExpiryFactor: 5000})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
}
