package audit

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes rows as an aligned table (host, package, installed, latest,
// status, and with verbose the X-Upds-Source), then the reason each unreachable host could
// not be queried, then a summary line.
func WriteTable(w io.Writer, rows []Row, verbose bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "HOST\tPACKAGE\tINSTALLED\tLATEST\tSTATUS"
	if verbose {
		head += "\tSOURCE"
	}
	fmt.Fprintln(tw, head)
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	counts := map[Status]int{}
	for _, r := range rows {
		counts[r.Status]++
		line := strings.Join([]string{r.Host, dash(r.Package), dash(r.Installed), dash(r.Latest), string(r.Status)}, "\t")
		if verbose {
			line += "\t" + dash(r.Source)
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		switch r.Status {
		case Unreachable:
			fmt.Fprintf(w, "%s: %s\n", r.Host, strings.ReplaceAll(r.Error, "\n", "\n    "))
		case Conflict:
			fmt.Fprintf(w, "%s: %s: %s\n", r.Host, r.File, ConflictText(r.File))
		}
	}
	var parts []string
	for _, s := range []Status{Current, Outdated, Ahead, Missing, Conflict, Unreachable} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no installed package comes from the repository"}
	}
	_, err := fmt.Fprintln(w, strings.Join(parts, ", "))
	return err
}

// ConflictText explains a conflict's file: what it holds and what to do.
func ConflictText(file string) string {
	if strings.HasSuffix(file, ".dpkg-old") {
		return "your old version of the configuration file, replaced by the package's: check, then delete it"
	}
	return "the package's new version of a configuration file you changed (yours stays in use): merge, then delete it"
}
