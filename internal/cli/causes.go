package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/gatewise/gatewise/internal/cause"
)

// runCauses prints the cause taxonomy: `gatewise causes [--json] [ID]`.
func runCauses(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("causes", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: gatewise causes [--json] [ID]\n\nLists every cause gatewise reports, or explains one.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	t := cause.NewTable()
	list := t.All()
	if fs.NArg() > 1 {
		return usageError("want at most one cause ID")
	}
	if fs.NArg() == 1 {
		c, ok := t.Lookup(cause.ID(fs.Arg(0)))
		if !ok {
			return usageError("unknown cause %q (run 'gatewise causes' for the list)", fs.Arg(0))
		}
		list = []cause.Cause{c}
		if !*asJSON {
			fmt.Fprintf(stdout, "%s: %s\n  status %s, Proxy-Status error %s, at fault: %s\n  visitor: %s\n  owner:   %s\n  docs:    %s\n",
				c.ID, c.Title, statusText(c.Status), orNone(c.ProxyStatusError), c.Hop, c.Visitor, c.Owner, c.DocPath())
			return nil
		}
	}
	if *asJSON {
		type row struct {
			ID, Title, ProxyStatusError, Hop, Visitor, Owner, Doc string
			Status                                                int
			Retryable                                             bool
		}
		out := make([]row, 0, len(list))
		for _, c := range list {
			out = append(out, row{ID: string(c.ID), Title: c.Title, ProxyStatusError: c.ProxyStatusError, Hop: string(c.Hop),
				Visitor: c.Visitor, Owner: c.Owner, Doc: c.DocPath(), Status: c.Status, Retryable: c.Retryable})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CAUSE\tSTATUS\tPROXY-STATUS ERROR\tAT FAULT\tTITLE")
	for _, c := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, statusText(c.Status), orNone(c.ProxyStatusError), c.Hop, c.Title)
	}
	return tw.Flush()
}

func statusText(code int) string {
	if code == 0 {
		return "passed through"
	}
	return fmt.Sprint(code)
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
