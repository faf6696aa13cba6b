package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/troupe-dev/troupe/internal/version"
)

func main() {
	pluginMode = asPlugin()
	os.Exit(execute(context.Background(), newRootCommand(), os.Stderr))
}

// pluginMode: the binary runs as kubectl-troupe, the kubectl plugin, so
// send and request go to the cluster (cluster.go). Set once by main before
// the commands are built.
var pluginMode bool

// Exit statuses every command shares; `troupe chain` gives 1 and 2 the
// more specific names exitBroken and exitUnreadable.
const (
	exitFailed = 1 // the command ran and what it ran failed
	exitUsage  = 2 // a usage or setup error: nothing was run
)

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
	// silent: stderr is gone or blocked (troupe run found it so), so the
	// error is not written there; the run's summary on stdout has it.
	silent bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a usage or setup error of a command: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode is err's exit status. Every error a command's RunE returns
// carries one (see markRunErrors), so an error without one is cobra's own
// (an unknown command or flag, a bad flag value, a wrong number of
// arguments): a usage error.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitUsage
}

// execute runs root, reports an error on stderr and returns the exit
// status.
func execute(ctx context.Context, root *cobra.Command, stderr io.Writer) int {
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var e *exitError
	if errors.As(err, &e) && e.silent {
		return e.code
	}
	fmt.Fprintln(stderr, "troupe:", err)
	if !errors.As(err, &e) && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return exitCode(err)
}

func newRootCommand() *cobra.Command {
	use := "troupe"
	if pluginMode {
		use = "kubectl troupe"
	}
	root := &cobra.Command{
		Use:           use,
		Short:         "Run WebAssembly actors and read their state chains",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCommand())
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	markRunErrors(root)
	return root
}

// markRunErrors makes every error a command's RunE returns without an
// exit status exit 1: the command ran and failed. What is left unmarked
// is then cobra's, a usage error (exitCode).
func markRunErrors(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			err := run(c, args)
			var e *exitError
			if err != nil && !errors.As(err, &e) {
				err = &exitError{code: exitFailed, err: err}
			}
			return err
		}
	}
	for _, c := range cmd.Commands() {
		markRunErrors(c)
	}
}

// exactlyOne accepts one positional argument and names it (as the usage
// line does) when it is missing or there are more.
func exactlyOne(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch len(args) {
		case 1:
			return nil
		case 0:
			return fmt.Errorf("missing %s (usage: %s)", name, cmd.UseLine())
		default:
			return fmt.Errorf("want one %s, got %d arguments: %q", name, len(args), args)
		}
	}
}

// subcommands are registered by the files that define them (chain.go,
// run.go), so each command lives beside its own flags and nothing else.
var subcommands []func() *cobra.Command

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
			return nil
		},
	}
}
