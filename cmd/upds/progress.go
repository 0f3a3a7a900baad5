package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/upds/upds/interp"
)

// progressMode is how a run shows its progress on stderr.
type progressMode int

const (
	progressPlain progressMode = iota // a line per finished, failed or cancelled action, a summary
	progressLive                      // the same with a status line redrawn on a terminal
	progressNone                      // nothing but the tasks' own output
)

// progressNames are the values of --progress: auto is live when stderr is a terminal and
// plain otherwise; plain and none name their modes.
var progressNames = []string{"auto", "plain", "none"}

// parseProgress turns a value of --progress (one of progressNames) into a mode.
func parseProgress(flag string) progressMode {
	switch flag {
	case "plain":
		return progressPlain
	case "none":
		return progressNone
	}
	if term.IsTerminal(int(os.Stderr.Fd())) && os.Getenv("TERM") != "dumb" {
		return progressLive
	}
	return progressPlain
}

// output shows a run: task output lines, and either a live status line (a terminal), plain
// progress lines, or nothing. It is the interp.Reporter of the run.
type output struct {
	mode       progressMode
	mu         sync.Mutex
	w          io.Writer // stderr
	taskStdout io.Writer // where the tasks' stdout goes: os.Stdout, or os.Stderr under --json
	running    map[string]time.Time
	done       int
	cached     int
	failed     int
	cancelled  int
	total      int
	begin      time.Time
	status     bool // a status line is on screen
	tick       *time.Ticker
	quit       chan struct{}
}

func newOutput(mode progressMode) *output {
	return &output{mode: mode, w: os.Stderr, taskStdout: os.Stdout, running: map[string]time.Time{}}
}

// lineWriter passes whole lines to the terminal, clearing and redrawing the status line.
type lineWriter struct {
	o *output
	w io.Writer
}

func (l lineWriter) Write(b []byte) (int, error) {
	l.o.mu.Lock()
	defer l.o.mu.Unlock()
	l.o.clear()
	n, err := l.w.Write(b)
	l.o.draw()
	return n, err
}

func (o *output) stdout() io.Writer { return lineWriter{o, o.taskStdout} }
func (o *output) stderr() io.Writer { return lineWriter{o, os.Stderr} }

func (o *output) start() {
	o.begin = time.Now()
	if o.mode != progressLive {
		return
	}
	o.tick = time.NewTicker(100 * time.Millisecond)
	o.quit = make(chan struct{})
	go func() {
		for {
			select {
			case <-o.tick.C:
				o.mu.Lock()
				o.clear()
				o.draw()
				o.mu.Unlock()
			case <-o.quit:
				return
			}
		}
	}()
}

func (o *output) stop(err error) {
	if o.tick != nil {
		o.tick.Stop()
		close(o.quit)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clear()
	if o.mode == progressNone {
		return
	}
	el := time.Since(o.begin).Round(time.Millisecond)
	state := "done"
	switch {
	case err != nil && o.failed == 0 && o.cancelled > 0:
		state = "interrupted"
	case err != nil:
		state = "FAILED"
	}
	stopped := ""
	if o.cancelled > 0 {
		stopped = fmt.Sprintf(", %d cancelled", o.cancelled)
	}
	fmt.Fprintf(o.w, "upds: %s: %d actions (%d cached, %d failed%s) in %s\n", state, o.done, o.cached, o.failed, stopped, el)
}

// Event implements interp.Reporter.
func (o *output) Event(e interp.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.total = e.Total
	switch e.Kind {
	case interp.Started:
		o.running[e.Name] = time.Now()
	case interp.Finished:
		delete(o.running, e.Name)
		o.done++
		if e.Cached {
			o.cached++
		}
		if o.mode == progressPlain {
			how := "done"
			if e.Cached {
				how = "cached"
			}
			fmt.Fprintf(o.w, "upds: %s: %s in %s\n", e.Name, how, e.Elapsed.Round(time.Millisecond))
		} else if o.mode == progressLive {
			o.clear()
			how := "✓"
			if e.Cached {
				how = "✓ (cached)"
			}
			fmt.Fprintf(o.w, "%s %s %s\n", how, e.Name, e.Elapsed.Round(time.Millisecond))
			o.draw()
		}
	case interp.Failed, interp.Cancelled:
		delete(o.running, e.Name)
		how := "cancelled" // stopped by Ctrl-C or by another action's failure
		if e.Kind == interp.Failed {
			how = "FAILED"
			o.done++
			o.failed++
		} else {
			o.cancelled++
		}
		if o.mode != progressNone {
			o.clear()
			fmt.Fprintf(o.w, "upds: %s: %s after %s\n", e.Name, how, e.Elapsed.Round(time.Millisecond))
			o.draw()
		}
	case interp.Skipped:
	}
}

func (o *output) clear() {
	if o.status {
		fmt.Fprint(o.w, "\r\033[K")
		o.status = false
	}
}

func (o *output) draw() {
	if o.mode != progressLive || o.begin.IsZero() || o.quit == nil {
		return
	}
	select {
	case <-o.quit:
		return
	default:
	}
	names := make([]string, 0, len(o.running))
	for n := range o.running {
		names = append(names, n)
	}
	sort.Strings(names)
	line := fmt.Sprintf("[%d/%d] %s", o.done, o.total, time.Since(o.begin).Round(100*time.Millisecond))
	if len(names) > 0 {
		line += "  " + strings.Join(names, ", ")
	}
	if w, _, err := term.GetSize(int(os.Stderr.Fd())); err == nil && w > 4 && len(line) > w-1 {
		line = line[:w-4] + "..."
	}
	fmt.Fprint(o.w, line)
	o.status = true
}
