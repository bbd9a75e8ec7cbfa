package chaos

import (
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
)

// Config shapes a Cluster.
type Config struct {
	// Bin is the rmq binary (go build -o X ./cmd/rmq). Required.
	Bin string
	// Nodes is the number of brokers in the one group, each in its own
	// network namespace. Default 3.
	Nodes int
	// Dir holds the data directories and process logs; it is removed by
	// Close unless KeepDir. Default: a new directory under os.TempDir.
	Dir     string
	KeepDir bool
	// BrokerFlags are appended to every broker's command line (after
	// "broker"), e.g. {"--flush", "async"}.
	BrokerFlags []string
	// Storage makes storage events frequent on every broker (a broker
	// config file): StorageEvents rolls 64 KiB segments and snapshots
	// every second; StorageRetention also has the leader purge sealed
	// segments older than 8 s every 500 ms (so followers that fall behind
	// need a snapshot install). Default StorageDefault: the broker's own
	// defaults.
	Storage Storage
	// LogLevel is the processes' --log-level. Default "info".
	LogLevel string
	// Logger receives the harness's own logs. Default: discard.
	Logger hclog.Logger
}

// Storage selects a broker storage configuration (Config.Storage).
type Storage int

const (
	StorageDefault Storage = iota
	StorageEvents
	StorageRetention
)

// storageEvents makes rolls and snapshots frequent under the workload's
// few hundred messages a second; retention stays off so the checker sees
// every stored message.
const storageEvents = `segment_size = "64KiB"
snapshot_interval = "1s"
snapshot_threshold = 128
retention_check_interval = "off"
`

// storageRetention adds purges: long enough (8 s) for the consumers to
// receive what is purged, which the checker verifies for every send
// retention deleted before the replicas were read.
const storageRetention = `segment_size = "64KiB"
snapshot_interval = "1s"
snapshot_threshold = 128
retention_max_age = "8s"
retention_check_interval = "500ms"
`

func (s Storage) brokerConfig() string {
	switch s {
	case StorageEvents:
		return storageEvents
	case StorageRetention:
		return storageRetention
	}
	return ""
}

// DefaultConfig returns a Config with every default but Bin.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.Bin == "" {
		errs = append(errs, errors.New("Bin is required"))
	} else if st, err := os.Stat(c.Bin); err != nil {
		errs = append(errs, fmt.Errorf("Bin: %w", err))
	} else if st.Mode()&0o111 == 0 {
		errs = append(errs, fmt.Errorf("Bin %s is not executable", c.Bin))
	}
	if c.Storage < StorageDefault || c.Storage > StorageRetention {
		errs = append(errs, fmt.Errorf("Storage %d unknown", c.Storage))
	}
	if c.Nodes < 1 || c.Nodes > 9 {
		errs = append(errs, fmt.Errorf("Nodes %d outside [1, 9]", c.Nodes))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chaos: invalid config: %w", err)
	}
	return nil
}
