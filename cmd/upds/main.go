// Command upds builds Python applications into Debian packages from a BUILD.star, publishes
// them to a signed apt repository, sets up servers and audits what runs where.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/upds/upds/interp"
)

// toolVersion is the version of upds; it is part of every cache key.
const toolVersion = "0.1.0"

// exitError carries an exit code: 1 a task or check failed, 2 bad usage or bad BUILD.star.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// exitInterrupted is the exit status after Ctrl-C or SIGTERM (128 + SIGINT, as shells report).
const exitInterrupted = 130

func main() {
	// A package's per-file records are kept in pointer-free arenas, so a collection costs
	// little however big the heap is: a heap goal of 1.5x the live heap (Go's default is 2x)
	// lowered the peak of `upds run` building a 126,000-file zstd package from 95-96 to 83 MiB
	// (/usr/bin/time, GOGC=100 against this) at no measurable CPU (docs/deb-format.md, Performance). GOGC, when set, still
	// decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	// UPDS_CPUPROFILE=FILE writes a CPU profile of the run (for upds's own developers).
	if p := os.Getenv("UPDS_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			code := run(os.Args[1:])
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(code)
		}
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if ctx.Err() != nil && (errors.Is(err, interp.ErrInterrupted) || errors.Is(err, context.Canceled)) {
		err = interp.ErrInterrupted // stopped by the user: one line
	}
	fmt.Fprintln(os.Stderr, "upds: "+interp.FormatError(err))
	return exitCode(ctx, err)
}

// exitCode is the exit status for a command's error: 130 once the user interrupted, 2 for bad
// usage or a mistake in BUILD.star, the code of an exitError, 1 otherwise.
func exitCode(ctx context.Context, err error) int {
	var ee *exitError
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case errors.As(err, &ee):
		return ee.code
	case interp.IsUsage(err):
		return 2
	}
	return 1
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "upds",
		Short: "Build Python applications into .deb packages, publish them, set up and audit servers",
		Long: `upds builds a Python application described by BUILD.star into Debian packages
(a virtualenv package, the application, its configuration, a server role), sends them to
an apt repository that it indexes and signs itself, sets up servers with one command and
audits which versions run where.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       toolVersion, // upds --version; `upds version` is the project's version
	}
	// -C DIR works like git -C and make -C: upds starts in DIR, so BUILD.star and every
	// relative path argument (upds -C DIR repo init repo) are taken from there.
	root.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if g.dir != "" && g.dir != "." {
			if err := os.Chdir(g.dir); err != nil {
				return usageErr("-C %s: %v", g.dir, err)
			}
			g.dir = "."
		}
		return nil
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: 2, err: fmt.Errorf("%v (see %s --help)", err, c.CommandPath())}
	})
	g.addGlobal(root)
	root.AddCommand(
		newRunCmd(g),
		newTasksCmd(g),
		newGraphCmd(g),
		newVersionCmd(g),
		newBumpCmd(g),
		newRepoCmd(),
		newInspectCmd(),
		newCleanCmd(g),
		newInitCmd(g),
		newSetupCmd(g),
		newAuditCmd(g),
		newDeployCmd(g),
		newServersCmd(g),
	)
	root.InitDefaultCompletionCmd()
	forEachCommand(root, func(c *cobra.Command) {
		c.Args = wrapArgs(c.Args)
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = helpOrUnknown
		}
		if c.Example == "" {
			c.Example = examples[c.CommandPath()]
		}
	})
	return root
}

// forEachCommand calls f for c and every command below it.
func forEachCommand(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		forEachCommand(s, f)
	}
}

// helpOrUnknown runs a command that only groups others: alone it prints its help, with an
// argument it is a usage error naming the unknown subcommand (cobra itself would print the
// help and exit 0).
func helpOrUnknown(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return c.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's default, set only when it looks up a command
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	} else {
		msg += fmt.Sprintf(" (see %s --help)", c.CommandPath())
	}
	return &exitError{code: 2, err: errors.New(msg)}
}

// wrapArgs turns cobra's argument errors into usage errors (exit code 2).
func wrapArgs(a cobra.PositionalArgs) cobra.PositionalArgs {
	if a == nil {
		return nil
	}
	return func(c *cobra.Command, args []string) error {
		err := a(c, args)
		var ee *exitError
		if err == nil || errors.As(err, &ee) {
			return err
		}
		return &exitError{code: 2, err: fmt.Errorf("%s: %v (see %s --help)", c.CommandPath(), err, c.CommandPath())}
	}
}
