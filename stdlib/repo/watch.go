package repo

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// WatchOptions configure Watch.
type WatchOptions struct {
	PublishOptions
	// Interval between scans of incoming/ (default 500ms). A publish starts once the
	// set of finished uploads (names, sizes, mtimes) has stayed the same for one interval.
	Interval time.Duration
}

// Watch publishes whenever finished uploads appear in DIR/incoming (names ending in
// .tmp and other partial names are ignored), until ctx is cancelled. When the
// repository sets Valid-For, it also re-publishes after half that time without uploads,
// so that Release never expires. onPublish, if not
// nil, is called after every publish with its report or error; a failed publish (or a
// rejected upload) does not stop the watch. Watch returns nil when ctx is cancelled (a
// publish under way then stops as Publish says, and is not reported), or an error if the
// repository cannot be read at all.
func Watch(ctx context.Context, dir string, opt WatchOptions, onPublish func(*PublishReport, error)) error {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return err
	}
	// With Valid-For set, Release must be re-signed before it expires: publish again
	// after half the validity even when nothing arrives.
	lastPublish := time.Now()
	interval := opt.Interval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	inc := filepath.Join(dir, IncomingDir)
	last := ""
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		snap, err := snapshot(inc)
		switch {
		case err != nil:
			if onPublish != nil {
				onPublish(nil, err)
			}
			last = ""
		case snap == "":
			last = ""
			if cfg.ValidFor > 0 && time.Since(lastPublish) > cfg.ValidFor/2 {
				rep, err := Publish(ctx, dir, opt.PublishOptions)
				lastPublish = time.Now()
				if err != nil && ctx.Err() != nil {
					return nil
				}
				if onPublish != nil {
					onPublish(rep, err)
				}
			}
		case snap == last:
			// Stable for one interval: publish.
			rep, err := Publish(ctx, dir, opt.PublishOptions)
			lastPublish = time.Now()
			if err != nil && ctx.Err() != nil {
				return nil // stopped in the middle of that publish
			}
			if onPublish != nil {
				onPublish(rep, err)
			}
			last = ""
			if err != nil {
				// Do not retry in a tight loop: wait until incoming/ changes.
				last = snap + "\x00failed"
				if s2, _ := snapshot(inc); s2 == snap {
					if !waitChange(ctx, inc, snap, interval) {
						return nil
					}
				}
			}
		default:
			last = snap
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// waitChange waits until incoming/ differs from snap; false when ctx ends first.
func waitChange(ctx context.Context, inc, snap string, interval time.Duration) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
		if s, _ := snapshot(inc); s != snap {
			return true
		}
	}
}

// snapshot describes the finished uploads in incoming/; "" when there are none.
func snapshot(inc string) (string, error) {
	ents, err := os.ReadDir(inc)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, e := range ents {
		if e.IsDir() || !uploadName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // gone meanwhile
		}
		parts = append(parts, e.Name()+"\x00"+strconv.FormatInt(fi.Size(), 10)+"\x00"+strconv.FormatInt(fi.ModTime().UnixNano(), 10))
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n"), nil
}
