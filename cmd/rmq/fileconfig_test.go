package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/broker"
)

// brokerConfigFrom loads a TOML file with the given body, applies the
// broker flags in args and converts the result, as `rmq broker` does.
func brokerConfigFrom(t *testing.T, toml string, args ...string) (broker.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	var cfg broker.Config
	var cerr error
	app := &cli.App{Flags: brokerCommand().Flags, Action: func(c *cli.Context) error {
		fc, err := loadFileConfig(path)
		if err != nil {
			return err
		}
		applyBrokerFlags(c, &fc)
		cfg, cerr = fc.brokerConfig()
		return nil
	}}
	if err := app.Run(append([]string{"rmq"}, args...)); err != nil {
		t.Fatalf("flags %v: %v", args, err)
	}
	return cfg, cerr
}

func TestBrokerConfigRetention(t *testing.T) {
	def := broker.DefaultConfig().Retention
	off := broker.RetentionConfig{MaxAge: -1, MaxDiskBytes: -1, ForceDiskRatio: -1, CheckInterval: -1}
	tests := []struct {
		name string
		toml string
		args []string
		want broker.RetentionConfig
	}{
		{"defaults", "", nil, def},
		// A zero duration stays zero here; broker.New reads zero as the default.
		{"explicit zero is the default", "retention_max_age = \"0s\"\nretention_disk_ratio = 0\nretention_max_disk_bytes = \"0\"", nil,
			broker.RetentionConfig{ForceDiskRatio: def.ForceDiskRatio, CheckInterval: def.CheckInterval}},
		{"values", "retention_max_age = \"24h\"\nretention_max_disk_bytes = \"100GiB\"\nretention_disk_ratio = 0.9\nretention_check_interval = \"30s\"", nil,
			broker.RetentionConfig{MaxAge: 24 * time.Hour, MaxDiskBytes: 100 << 30, ForceDiskRatio: 0.9, CheckInterval: 30 * time.Second}},
		{"percent", "retention_disk_ratio = \"90%\"", nil, broker.RetentionConfig{MaxAge: def.MaxAge, ForceDiskRatio: 0.9, CheckInterval: def.CheckInterval}},
		{"all off", "retention_max_age = \"off\"\nretention_max_disk_bytes = \"off\"\nretention_disk_ratio = \"off\"\nretention_check_interval = \"off\"", nil, off},
		{"all -1", "retention_max_age = \"-1\"\nretention_max_disk_bytes = \"-1\"\nretention_disk_ratio = -1\nretention_check_interval = \"-1\"", nil, off},
		{"old name of the budget", "retention_max_bytes = \"1GiB\"", nil, broker.RetentionConfig{MaxAge: def.MaxAge, MaxDiskBytes: 1 << 30, ForceDiskRatio: def.ForceDiskRatio, CheckInterval: def.CheckInterval}},
		{"flags override the file", "retention_disk_ratio = 0.9\nretention_max_bytes = \"1GiB\"",
			[]string{"--retention-max-age", "off", "--retention-max-disk-bytes", "2GiB", "--retention-disk-ratio", "off", "--retention-check-interval", "5s"},
			broker.RetentionConfig{MaxAge: -1, MaxDiskBytes: 2 << 30, ForceDiskRatio: -1, CheckInterval: 5 * time.Second}},
		{"flag percent", "", []string{"--retention-disk-ratio", "95%"}, broker.RetentionConfig{MaxAge: def.MaxAge, ForceDiskRatio: 0.95, CheckInterval: def.CheckInterval}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := brokerConfigFrom(t, tc.toml, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, cfg.Retention); diff != "" {
				t.Fatalf("retention (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBrokerConfigRetentionErrors(t *testing.T) {
	tests := []struct{ toml, want string }{
		{"retention_disk_ratio = 1.5", "retention_disk_ratio: 1.5 is not in (0, 1]"},
		{"retention_disk_ratio = \"lots\"", `retention_disk_ratio: "lots": want a fraction`},
		{"retention_disk_ratio = true", "retention_disk_ratio: true: want a fraction"},
		{"retention_max_age = \"forever\"", "retention_max_age:"},
		{"retention_max_disk_bytes = \"big\"", "retention_max_disk_bytes:"},
		{"retention_max_bytes = \"1GiB\"\nretention_max_disk_bytes = \"1GiB\"", "set only one"},
	}
	for _, tc := range tests {
		_, err := brokerConfigFrom(t, tc.toml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.toml, err, tc.want)
		}
	}
}
