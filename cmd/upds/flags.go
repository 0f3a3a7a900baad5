package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/interp/cache"
	"github.com/upds/upds/stdlib/rules"
	"github.com/upds/upds/stdlib/version"
)

// globalFlags holds the flags of a command line. -C and --progress belong to every command;
// the others are registered only on the commands they apply to (addLibFlag, addJobsFlag,
// addBuildFlags), so that a command's help shows what it takes.
type globalFlags struct {
	dir       string
	progress  string
	jobs      int
	keepGoing bool
	noCache   bool
	cache     string // --cache: the shared action cache
	builds    bool   // the command builds (upds run): it uses the shared cache
	libs      []string
}

// addGlobal registers the flags every command takes.
func (g *globalFlags) addGlobal(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVarP(&g.dir, "directory", "C", ".", "start in DIR, like git -C: where BUILD.star is, and the base of relative paths")
	root.MarkPersistentFlagDirname("directory")
	addChoice(root, true, &g.progress, "progress", progressNames, "progress display: a status line on a terminal (auto), a line per action (plain) or nothing (none)")
}

// progressMode is the progress display --progress selects on this terminal.
func (g *globalFlags) progressMode() progressMode { return parseProgress(g.progress) }

// addLibFlag registers --lib on a command that evaluates BUILD.star.
func (g *globalFlags) addLibFlag(c *cobra.Command) {
	c.Flags().StringArrayVar(&g.libs, "lib", nil, "map a rule library: NAME=DIR, loaded as @NAME//file.star (also UPDS_LIB_NAME=DIR)")
}

// addJobsFlag registers -j on a command that does things in parallel; what says what.
func (g *globalFlags) addJobsFlag(c *cobra.Command, what string) {
	c.Flags().VarP(positiveInt{&g.jobs}, "jobs", "j", what)
}

// addBuildFlags registers the flags of a command that builds: -j, --keep-going, --no-cache
// and --lib.
func (g *globalFlags) addBuildFlags(c *cobra.Command) {
	g.addJobsFlag(c, "parallel actions (default: the number of CPUs)")
	c.Flags().BoolVar(&g.keepGoing, "keep-going", false, "keep building what does not depend on a failure")
	c.Flags().BoolVar(&g.noCache, "no-cache", false, "bypass the action cache in .upds/")
	c.Flags().StringVar(&g.cache, "cache", "", "share the action cache with other machines: s3://BUCKET/PREFIX or a directory (also UPDS_CACHE)")
	g.addLibFlag(c)
}

// positiveInt is an int flag that must be at least 1 when given: -j 0 and -j -3 are usage
// errors, not "no limit".
type positiveInt struct{ p *int }

func (v positiveInt) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v positiveInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return fmt.Errorf("want a whole number of at least 1")
	}
	*v.p = n
	return nil
}

func (v positiveInt) Type() string { return "N" }

// choice is a string flag that takes one of a few values: another is a usage error.
type choice struct {
	p     *string
	names []string
}

// addChoice registers a choice flag on c (persistent: for its subcommands too) defaulting to
// names[0], with shell completion of its values.
func addChoice(c *cobra.Command, persistent bool, p *string, name string, names []string, usage string) {
	*p = names[0]
	fs := c.Flags()
	if persistent {
		fs = c.PersistentFlags()
	}
	fs.Var(choice{p, names}, name, usage)
	c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(names, cobra.ShellCompDirectiveNoFileComp))
}

func (v choice) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v choice) Set(s string) error {
	if !slices.Contains(v.names, s) {
		return fmt.Errorf("want %s or %s", strings.Join(v.names[:len(v.names)-1], ", "), v.names[len(v.names)-1])
	}
	*v.p = s
	return nil
}

func (v choice) Type() string { return strings.Join(v.names, "|") }

// libMap merges UPDS_LIB_NAME=DIR from the environment with --lib NAME=DIR flags.
func (g *globalFlags) libMap() (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if name, ok := strings.CutPrefix(k, "UPDS_LIB_"); ok && name != "" && v != "" {
			m[strings.ToLower(name)] = v
		}
	}
	for _, l := range g.libs {
		name, dir, ok := strings.Cut(l, "=")
		if !ok || name == "" || dir == "" {
			return nil, usageErr("--lib %q: want NAME=DIR", l)
		}
		m[name] = dir
	}
	return m, nil
}

// sharedCache opens the shared action cache that --cache or UPDS_CACHE names (nil: none),
// for upds run: the commands that do not build neither open it nor check UPDS_CACHE. Its
// problems (an unreachable store, a corrupt object) are reported on stderr and never fail a
// build: the action runs instead.
func (g *globalFlags) sharedCache(ctx context.Context, stderr io.Writer) (*cache.Remote, error) {
	loc, flag := g.cache, "--cache"
	if loc == "" {
		loc, flag = os.Getenv("UPDS_CACHE"), "UPDS_CACHE"
	}
	if loc == "" || g.noCache || !g.builds {
		return nil, nil
	}
	r, err := cache.OpenRemote(ctx, loc)
	if err != nil {
		return nil, usageErr("%s: %v", flag, err)
	}
	r.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, "upds: "+format+"\n", args...) }
	return r, nil
}

// load evaluates BUILD.star; ctx stops the evaluation (Ctrl-C).
func (g *globalFlags) load(ctx context.Context, out *output) (*interp.Build, error) {
	return g.loadTo(ctx, out.stdout(), out.stderr())
}

// loadTo evaluates BUILD.star with print() and task output going to stdout and stderr.
func (g *globalFlags) loadTo(ctx context.Context, stdout, stderr io.Writer) (*interp.Build, error) {
	libs, err := g.libMap()
	if err != nil {
		return nil, err
	}
	shared, err := g.sharedCache(ctx, stderr)
	if err != nil {
		return nil, err
	}
	return interp.Load(interp.Options{
		SharedCache: shared,
		Dir:         g.dir,
		Builtins:    builtins(),
		Rules:       rules.FS,
		Libs:        libs,
		NoCache:     g.noCache,
		ToolVersion: toolVersion,
		Stdout:      stdout,
		Stderr:      stderr,
		VersionFunc: version.ReadProject,
		Ctx:         ctx,
	})
}
