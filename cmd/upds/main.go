// Command upds builds Python applications into Debian packages from a BUILD.star, publishes
// them to a signed apt repository, sets up servers and audits what runs where.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
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

// globalFlags are shared by every command.
type globalFlags struct {
	dir       string
	jobs      int
	keepGoing bool
	progress  string
	noCache   bool
	libs      []string
	json      bool
}

func main() {
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
	fmt.Fprintln(os.Stderr, "upds: "+interp.FormatError(err))
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case interp.IsUsage(err):
		return 2
	case ctx.Err() != nil:
		return 130
	default:
		return 1
	}
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
	pf := root.PersistentFlags()
	pf.StringVarP(&g.dir, "directory", "C", ".", "start in DIR, like git -C: where BUILD.star is, and the base of relative paths")
	pf.IntVarP(&g.jobs, "jobs", "j", 0, "parallel actions (default: the number of CPUs)")
	pf.BoolVar(&g.keepGoing, "keep-going", false, "keep building what does not depend on a failure")
	pf.StringVar(&g.progress, "progress", "auto", "progress display: auto, plain or none")
	pf.BoolVar(&g.noCache, "no-cache", false, "bypass the action cache in .upds/")
	pf.StringArrayVar(&g.libs, "lib", nil, "map a rule library: NAME=DIR, loaded as @NAME//file.star (also UPDS_LIB_NAME=DIR)")
	root.AddCommand(
		newRunCmd(g),
		newTasksCmd(g),
		newVersionCmd(g),
		newBumpCmd(g),
		newRepoCmd(),
		newInspectCmd(),
		newCleanCmd(g),
		newInitCmd(g),
		newSetupCmd(g),
		newAuditCmd(g),
	)
	for _, c := range root.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return root
}

// wrapArgs turns cobra's argument errors into usage errors (exit code 2).
func wrapArgs(a cobra.PositionalArgs) cobra.PositionalArgs {
	if a == nil {
		return nil
	}
	return func(c *cobra.Command, args []string) error {
		if err := a(c, args); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("%s: %v (see %s --help)", c.CommandPath(), err, c.CommandPath())}
		}
		return nil
	}
}
