package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rmq:", err)
		os.Exit(1)
	}
}

// run is the whole CLI; tests call it directly with their own writers.
// Results go to stdout, logs and progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var stopProfile func() // set by --cpuprofile
	var notFound error     // set by CommandNotFound
	app := &cli.App{
		Name:      "rmq",
		Usage:     "a RocketMQ-style message broker whose Raft log is the CommitLog",
		Version:   version(),
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "namesrv", Value: "127.0.0.1:9876", EnvVars: []string{"RMQ_NAMESRV"},
				Usage: "NameServer address(es), comma-separated"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "time limit for one command's requests"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "result format: table or json"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"RMQ_LOG_LEVEL"}, Usage: "trace, debug, info, warn or error"},
			&cli.StringFlag{Name: "access-key", EnvVars: []string{"RMQ_ACCESS_KEY"}, Usage: "access key of a broker ACL account (signs every request; see README, Access control)"},
			&cli.StringFlag{Name: "secret-key", EnvVars: []string{"RMQ_SECRET_KEY"}, Usage: "secret key of --access-key"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write this command's CPU profile to a file (for profiling clients and benches)"},
		}, clientTLSFlags()...), // tls.go
		Before: func(c *cli.Context) error {
			if o := c.String("output"); o != "table" && o != "json" {
				return fmt.Errorf("--output %q: use table or json", o)
			}
			if err := loadClientTLS(c, true); err != nil { // tls.go
				return err
			}
			if path := c.String("cpuprofile"); path != "" {
				f, err := os.Create(path)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
			}
			return nil
		},
		Commands:        commands(),
		HideHelpCommand: true,
		CommandNotFound: func(c *cli.Context, name string) {
			notFound = fmt.Errorf("unknown command %q; commands: %s (see 'rmq --help')", name, commandNames(c.App.Commands))
		},
		// Errors are printed once, by main; usage errors say what is wrong.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%w (see 'rmq %s --help')", err, c.Command.FullName())
		},
	}
	err := app.RunContext(ctx, args)
	if stopProfile != nil {
		stopProfile()
	}
	if err == nil && notFound != nil {
		err = notFound
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // Ctrl-C is a normal way to stop a server or consumer
	}
	return err
}

func commands() []*cli.Command {
	return []*cli.Command{
		devCommand(),
		namesrvCommand(),
		brokerCommand(),
		sendCommand(),
		requestCommand(),
		consumeCommand(),
		topicCommand(),
		groupCommand(),
		dlqCommand(),
		txCommand(),
		messageCommand(),
		clusterCommand(),
		nodeCommand(),
		failoverCommand(),
		benchCommand(),
		dashboardCommand(),
		tlsCommand(), // tls_cmd.go
	}
}

func commandNames(cmds []*cli.Command) string {
	names := make([]string, 0, len(cmds))
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	return strings.Join(names, ", ")
}

// version describes this binary from its build info: the module version
// (a tag for `go install ...@vX`, "(devel)" for a local build) and the VCS
// revision, time and dirty flag that `go build` stamps in a checkout.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build info)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += fmt.Sprintf(" (revision %s, %s%s)", rev, at, dirty)
	}
	return v + ", " + bi.GoVersion
}
