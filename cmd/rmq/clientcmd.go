package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

// This file holds what every client command shares: NameServer addresses,
// the per-command deadline, argument checks and error wording.

// nameServers splits --namesrv on commas.
func nameServers(c *cli.Context) ([]string, error) {
	var out []string
	for _, a := range strings.Split(c.String("namesrv"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--namesrv is empty: give host:port[,host:port...]")
	}
	for _, a := range out {
		if !strings.Contains(a, ":") {
			return nil, fmt.Errorf("--namesrv %q: want host:port", a)
		}
	}
	return out, nil
}

// opContext bounds one command's requests by --timeout.
func opContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, c.Duration("timeout"))
}

// clientLogger is rootLogger for client commands: their lifecycle logs
// (queue acquired, ...) are noise on a terminal, so they log warnings
// and errors unless --log-level (or RMQ_LOG_LEVEL) asks for more.
func clientLogger(c *cli.Context) hclog.Logger {
	level := hclog.Warn
	if c.IsSet("log-level") {
		level = hclog.LevelFromString(c.String("log-level"))
	}
	return hclog.New(&hclog.LoggerOptions{Name: "rmq", Level: level, Output: c.App.ErrWriter})
}

func newAdmin(c *cli.Context) (*client.Admin, error) {
	ns, err := nameServers(c)
	if err != nil {
		return nil, err
	}
	return client.NewAdmin(client.AdminConfig{NameServers: ns, Credentials: credentials(c), TLS: clientTLS(c), Timeout: c.Duration("timeout"), Logger: clientLogger(c)})
}

// withAdmin runs f with an Admin and a --timeout context.
func withAdmin(c *cli.Context, f func(ctx context.Context, a *client.Admin) error) error {
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	defer a.Close()
	ctx, cancel := opContext(c)
	defer cancel()
	return f(ctx, a)
}

// usageError names the command whose help explains the mistake.
func usageError(c *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%w (see 'rmq %s --help')", err, commandPath(c))
}

// commandPath is the command's words after "rmq": "topic create".
func commandPath(c *cli.Context) string {
	var words []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			words = append([]string{ctx.Command.Name}, words...)
		}
	}
	return strings.Join(words, " ")
}

// wantArgs returns the positional arguments, checked against names
// ("TOPIC", "[BODY]": brackets mark optional ones), after applying any
// flags written among or after them (see interspersed).
func wantArgs(c *cli.Context, names ...string) ([]string, error) {
	args, err := interspersed(c)
	if errors.Is(err, errHelp) {
		return nil, err
	}
	if err != nil {
		return nil, usageError(c, err, true)
	}
	required := 0
	for _, n := range names {
		if !strings.HasPrefix(n, "[") {
			required++
		}
	}
	usage := strings.TrimSpace(fmt.Sprintf("usage: rmq %s %s", commandPath(c), strings.Join(names, " ")))
	switch n := len(args); {
	case n < required:
		return nil, fmt.Errorf("missing %s (%s)", names[n], usage)
	case n > len(names):
		return nil, fmt.Errorf("unexpected argument %q (%s)", args[len(names)], usage)
	}
	return args, nil
}

// errHelp means --help was given and the help is printed: the action
// should stop and succeed.
var errHelp = errors.New("help requested")

// clientAction adapts an action that calls wantArgs: --help ends it with
// success.
func clientAction(f cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := f(c); !errors.Is(err, errHelp) {
			return err
		}
		return nil
	}
}

// leaf prepares a client command for interspersed.
func leaf(cmd *cli.Command) *cli.Command {
	cmd.SkipFlagParsing = true
	cmd.HideHelpCommand = true
	cmd.OnUsageError = usageError
	cmd.Action = clientAction(cmd.Action)
	return cmd
}

// interspersed parses the flags of a client command (SkipFlagParsing is
// set on them) and returns the positional arguments. urfave/cli v2 stops
// parsing flags at the first positional argument and rejects global
// flags after the command, but "rmq topic create NAME --queues 8" and
// "rmq cluster status -o json" are the natural way to write commands.
// The command's own flags and the global ones are accepted anywhere;
// "--" ends flags, and "-" alone is an argument (stdin).
func interspersed(c *cli.Context) ([]string, error) {
	in := c.Args().Slice()
	var out []string
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--" {
			out = append(out, in[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			out = append(out, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			return nil, showHelp(c)
		}
		f := findFlag(c, name)
		if f == nil {
			return nil, fmt.Errorf("flag provided but not defined: -%s", name)
		}
		if _, isBool := f.(*cli.BoolFlag); isBool && !hasVal {
			val, hasVal = "true", true
		}
		if !hasVal {
			if i+1 == len(in) {
				return nil, fmt.Errorf("flag needs an argument: -%s", name)
			}
			i++
			val = in[i]
		}
		// Set the canonical name: aliases are separate entries in the
		// flag set, merged only by urfave's own parsing.
		if err := c.Set(f.Names()[0], val); err != nil {
			return nil, fmt.Errorf("invalid value %q for flag -%s: %w", val, name, err)
		}
	}
	if o := c.String("output"); o != "table" && o != "json" {
		return nil, fmt.Errorf("--output %q: use table or json", o)
	}
	if err := loadClientTLS(c, false); err != nil { // tls.go: --tls-* may follow the command
		return nil, err
	}
	return out, nil
}

func showHelp(c *cli.Context) error {
	parent := c
	if l := c.Lineage(); len(l) > 1 {
		parent = l[1]
	}
	if err := cli.ShowCommandHelp(parent, c.Command.Name); err != nil {
		return err
	}
	return errHelp
}

func findFlag(c *cli.Context, name string) cli.Flag {
	for _, flags := range [][]cli.Flag{c.Command.Flags, c.App.Flags} {
		for _, f := range flags {
			for _, n := range f.Names() {
				if n == name {
					return f
				}
			}
		}
	}
	return nil
}

// nounCommand is a command that only groups verbs ("rmq topic"): with
// no verb it prints its help, with an unknown one it says which exist.
func nounCommand(name, usage string, verbs ...*cli.Command) *cli.Command {
	var names []string
	for _, v := range verbs {
		names = append(names, v.Name)
		leaf(v)
	}
	return &cli.Command{
		Name:            name,
		Usage:           usage,
		Subcommands:     verbs,
		HideHelpCommand: true,
		OnUsageError:    usageError,
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.ShowSubcommandHelp(c)
			}
			return fmt.Errorf("unknown command %q for 'rmq %s': want %s", c.Args().First(), name, strings.Join(names, ", "))
		},
	}
}

// explained is an error reworded for the command line; errors.Is and
// errors.As still see the original.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// explain rewords client errors that have a plain meaning for the
// command at hand. topic may be empty.
func explain(err error, topic string) error {
	if err == nil {
		return nil
	}
	var ce *client.Error
	switch {
	case errors.Is(err, client.ErrTopicNotFound) && topic != "":
		return &explained{fmt.Sprintf("topic %q not found", topic), err}
	case errors.Is(err, client.ErrTopicExists) && topic != "":
		return &explained{fmt.Sprintf("topic %q already exists", topic), err}
	case errors.As(err, &ce) && ce.Code == client.ErrInvalidArgument.Code && ce.Message != "":
		return &explained{ce.Message, err}
	}
	return err
}
