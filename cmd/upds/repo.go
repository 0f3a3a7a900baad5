package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/upds/upds/interp/storage"
	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/setup"
)

func newRepoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "repo",
		Short: "Create, publish, watch and serve a signed apt repository",
		Long: `A repository directory holds incoming/ (uploads land here), public/ (what is served:
dists/, pool/, key.asc, setup.sh), rejected/ (refused uploads with a .reason file) and
private/ (the signing key; never served). With --storage s3://BUCKET/PREFIX the published
tree is in that bucket instead of public/, and apt reads it there (see docs/s3.md).`,
	}
	c.AddCommand(newRepoInitCmd(), newRepoPublishCmd(), newRepoWatchCmd(), newRepoServeCmd())
	for _, s := range c.Commands() {
		s.Args = wrapArgs(s.Args)
	}
	return c
}

func newRepoInitCmd() *cobra.Command {
	var opt repo.InitOptions
	var importKey string
	c := &cobra.Command{
		Use:   "init DIR",
		Short: "Create a repository with a new ed25519 signing key",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if importKey != "" {
				b, err := os.ReadFile(importKey)
				if err != nil {
					return usageErr("--import-key: %v", err)
				}
				opt.ImportKey = b
			}
			if opt.URL != "" {
				if err := setup.ValidURL(opt.URL); err != nil {
					return usageErr("--url: %v", err)
				}
			}
			for _, f := range []struct{ name, v string }{{"--storage", opt.Storage}, {"--incoming", opt.Incoming}} {
				if f.v == "" {
					continue
				}
				if _, _, err := storage.ParseS3(f.v); err != nil {
					return usageErr("%s: %v", f.name, err)
				}
			}
			if err := repo.Init(args[0], opt); err != nil {
				return err
			}
			printInit(args[0])
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&opt.Suite, "suite", "", "suite name (default stable)")
	f.StringVar(&opt.Component, "component", "", "component (default main)")
	f.StringSliceVar(&opt.Architectures, "arch", nil, "architectures (default amd64,arm64,all)")
	f.StringVar(&opt.Origin, "origin", "", "Origin field of Release (default upds)")
	f.StringVar(&opt.Label, "label", "", "Label field of Release (default upds)")
	f.StringVar(&importKey, "import-key", "", "use this armored OpenPGP private key instead of generating one")
	f.StringVar(&opt.URL, "url", "", "where clients will reach public/ (e.g. https://apt.example.com/); setup.sh carries it")
	f.StringVar(&opt.KeyName, "key-name", "", "name in a generated key's user ID")
	f.StringVar(&opt.KeyEmail, "key-email", "", "email in a generated key's user ID")
	f.StringVar(&opt.Storage, "storage", "", "publish to a bucket, s3://BUCKET/PREFIX, instead of DIR/public (endpoint and credentials: AWS_* variables)")
	f.StringVar(&opt.Incoming, "incoming", "", "take uploads from s3://BUCKET/PREFIX instead of DIR/incoming")
	return c
}

// uploadsFrom is where the repository in dir takes its uploads from: repo.conf's Incoming
// (a bucket prefix) or DIR/incoming.
func uploadsFrom(dir string, cfg repo.Config) string {
	if cfg.Incoming != "" {
		return cfg.Incoming
	}
	return dir + "/incoming"
}

// printInit says where the parts of the new repository in dir are.
func printInit(dir string) {
	cfg, err := repo.ReadConfig(dir)
	inc := uploadsFrom(dir, cfg) + "/"
	if err != nil || cfg.Storage == "" {
		fmt.Printf("repository created in %s\n  uploads go to  %s\n  serve          %s/public/ (upds repo serve %s, or any web server)\n  clients trust  %s/public/key.asc\n  servers run    curl -fsSL URL/setup.sh | sudo sh -s -- ROLE\n",
			dir, inc, dir, dir, dir)
		return
	}
	fmt.Printf("repository created in %s, published to %s\n  uploads go to  %s\n  apt reads      %s\n  clients trust  %s/key.asc (also %s/key.asc)\n  servers run    curl -fsSL %s/setup.sh | sudo sh -s -- ROLE\n",
		dir, cfg.Storage, inc, cfg.URL, dir, strings.TrimSuffix(cfg.URL, "/"), strings.TrimSuffix(cfg.URL, "/"))
}

// printReport prints what a publish did: pool files it could not read on stderr, the
// rest on stdout.
func printReport(rep *repo.PublishReport, asJSON bool) error {
	for _, b := range rep.Broken {
		fmt.Fprintf(os.Stderr, "upds repo: skipping pool file %s: %s\n", b.Path, b.Reason)
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	for _, a := range rep.Added {
		fmt.Printf("added     %s\n", a)
	}
	for _, u := range rep.Unchanged {
		fmt.Printf("unchanged %s\n", u)
	}
	for _, r := range rep.Removed {
		fmt.Printf("removed   %s\n", r)
	}
	for _, r := range rep.Rejected {
		fmt.Printf("REJECTED  %s: %s\n", r.File, r.Reason)
	}
	fmt.Printf("published %d packages in %s\n", rep.Packages, rep.Duration.Round(time.Millisecond))
	return nil
}

// verifyFlag adds --verify to a publishing command; its value is read with repo.ParseVerify.
func verifyFlag(c *cobra.Command, v *string) {
	c.Flags().StringVar(v, "verify", "", "how much of each upload to read: basic (ar, control, upload hashes; data.tar not decompressed) or full (also every data.tar path and md5sum); default: repo.conf's Verify, else basic")
}

// publishOptions are the options of publish and watch, --verify checked.
func publishOptions(keep int, verify string) (repo.PublishOptions, error) {
	opt := repo.PublishOptions{KeepVersions: keep}
	if verify != "" {
		v, err := repo.ParseVerify(verify)
		if err != nil {
			return opt, usageErr("--%v", err)
		}
		opt.Verify = v
	}
	return opt, nil
}

func newRepoPublishCmd() *cobra.Command {
	var keep int
	var asJSON bool
	var verify string
	c := &cobra.Command{
		Use:   "publish DIR",
		Short: "Move valid uploads from incoming/ into the pool and sign new indexes",
		Long: `Validate every .deb in DIR/incoming (a readable package, control fields valid, name, version
and architecture matching its file name, not a different package under a published name; with
--verify=full also every data.tar path and md5sum). Refused uploads move to DIR/rejected/ with a .reason file;
the rest go to the pool, and Packages, Release, InRelease and Release.gpg are rewritten
atomically (by-hash keeps the previous generation reachable). Exit 1 if anything was rejected.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opt, err := publishOptions(keep, verify)
			if err != nil {
				return err
			}
			rep, err := repo.Publish(c.Context(), args[0], opt)
			if err != nil {
				return err
			}
			if err := printReport(rep, asJSON); err != nil {
				return err
			}
			if len(rep.Rejected) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d upload(s) rejected (see %s/rejected/)", len(rep.Rejected), args[0])}
			}
			return nil
		},
	}
	c.Flags().IntVar(&keep, "keep", 0, "keep only the N newest versions of each package (0: keep all)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	verifyFlag(c, &verify)
	return c
}

func newRepoWatchCmd() *cobra.Command {
	var keep int
	var interval time.Duration
	var verify string
	c := &cobra.Command{
		Use:   "watch DIR",
		Short: "Publish whenever uploads arrive in DIR/incoming",
		Long:  "Publish whenever finished uploads (not *.tmp) arrive in DIR/incoming (or repo.conf's Incoming\nprefix in a bucket), until interrupted. Bad uploads are rejected and the watch goes on.",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opt, err := publishOptions(keep, verify)
			if err != nil {
				return err
			}
			cfg, err := repo.ReadConfig(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "upds: watching %s (Ctrl-C to stop)\n", uploadsFrom(args[0], cfg))
			return repo.Watch(c.Context(), args[0], repo.WatchOptions{PublishOptions: opt, Interval: interval},
				func(rep *repo.PublishReport, err error) {
					if err != nil {
						fmt.Fprintf(os.Stderr, "upds: publish: %v\n", err)
						return
					}
					printReport(rep, false)
				})
		},
	}
	c.Flags().IntVar(&keep, "keep", 0, "keep only the N newest versions of each package (0: keep all)")
	c.Flags().DurationVar(&interval, "interval", 500*time.Millisecond, "how often incoming/ is scanned")
	verifyFlag(c, &verify)
	return c
}

func newRepoServeCmd() *cobra.Command {
	var addr string
	var idle time.Duration
	c := &cobra.Command{
		Use:   "serve DIR",
		Short: "Serve DIR/public over HTTP (tests and small setups; production: nginx)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if idle <= 0 {
				return usageErr("--idle-timeout must be positive, not %s", idle)
			}
			h, err := repo.Handler(args[0])
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			srv := repo.NewServer(h, idle)
			fmt.Fprintf(os.Stderr, "upds: serving %s/public on http://%s/\n", args[0], ln.Addr())
			go func() {
				<-c.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	c.Flags().DurationVar(&idle, "idle-timeout", repo.IdleTimeout, "close a keep-alive connection idle this long")
	return c
}
