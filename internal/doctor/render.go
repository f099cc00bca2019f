package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// facts gathers the system facts for the report.
func (e *env) facts() []Fact {
	var out []Fact
	add := func(name, value string) {
		if value != "" {
			out = append(out, Fact{Name: name, Value: Redact(value)})
		}
	}
	read := func(p string) string {
		b, err := e.sys.read(p)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	add("host name", read("/proc/sys/kernel/hostname"))
	if b, err := e.sys.read("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				add("system", strings.Trim(v, `"`))
			}
		}
	}
	add("kernel", read("/proc/sys/kernel/osrelease"))
	if s, err := e.sys.uptime(); err == nil {
		add("up", (time.Duration(s) * time.Second).String())
	}
	if c := e.sys.cores(); c > 0 {
		add("cores", fmt.Sprint(c))
	}
	if mi, err := e.sys.meminfo(); err == nil {
		add("memory", fmt.Sprintf("%s total, %s available", mib(mi.total), mib(mi.available)))
		add("swap", fmt.Sprintf("%s total, %s free", mib(mi.swapTotal), mib(mi.swapFree)))
	}
	if l := read("/proc/loadavg"); l != "" {
		f := strings.Fields(l)
		if len(f) >= 3 {
			add("load average", strings.Join(f[:3], " "))
		}
	}
	add("window", fmt.Sprintf("%s .. %s", e.opts.Since.Format("2006-01-02 15:04:05 MST"), e.opts.Now.Format("2006-01-02 15:04:05 MST")))
	if e.opts.Root == "/" {
		add("gatewise built with", runtime.Version())
	}
	return out
}

// WriteJSON prints the result as one JSON document:
// {"findings":[{"rank","check","target","status","cause","summary","evidence","fix","time"}, ...],
// "checks", "facts", "timeline", "errors_began", "since", "now"}.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Headline returns the one-line summary: the counts by status and the most
// likely cause.
func (r *Result) Headline() string {
	c := r.Counts()
	var parts []string
	for _, s := range []struct {
		st   Status
		name string
	}{{StatusFail, "failed"}, {StatusWarn, "warned"}, {StatusOK, "ok"}, {StatusSkip, "could not run"}} {
		if c[s.st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[s.st], s.name))
		}
	}
	h := "doctor: " + strings.Join(parts, ", ")
	if len(r.Findings) > 0 && r.Findings[0].Status.severity() >= StatusWarn.severity() {
		h += ". Most likely: " + r.Findings[0].label() + ": " + r.Findings[0].Summary
	} else {
		h += ". Nothing wrong found."
	}
	return h
}

// label names the finding's check and target.
func (f *Finding) label() string {
	if f.Target == "" {
		return f.Check
	}
	return f.Check + " " + f.Target
}

// WriteLine prints one finding on one line, as the progress of a check
// that ended.
func (f *Finding) WriteLine(w io.Writer) {
	fmt.Fprintf(w, "%-4s  %s: %s\n", strings.ToUpper(string(f.Status)), f.label(), f.Summary)
}

// WriteText prints the findings ranked, for a terminal or a pipe: each
// problem with its evidence and fix, the ok checks one per line, and the
// headline.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Findings since %s, most likely cause first:\n\n", r.Since.Format("2006-01-02 15:04"))
	var oks []Finding
	for i := range r.Findings {
		f := &r.Findings[i]
		if f.Status == StatusOK {
			oks = append(oks, *f)
			continue
		}
		cause := ""
		if f.Cause != "" {
			cause = "  [" + f.Cause + "]"
		}
		fmt.Fprintf(&b, "%2d. %-4s  %s: %s%s\n", f.Rank, strings.ToUpper(string(f.Status)), f.label(), f.Summary, cause)
		for _, ev := range f.Evidence {
			fmt.Fprintf(&b, "      | %s\n", ev)
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, "      Fix: %s\n", f.Fix)
		}
		b.WriteString("\n")
	}
	if len(oks) > 0 {
		b.WriteString("OK:\n")
		for _, f := range oks {
			fmt.Fprintf(&b, "      %s: %s\n", f.label(), f.Summary)
		}
		b.WriteString("\n")
	}
	if !r.ErrorsBegan.IsZero() {
		fmt.Fprintf(&b, "Errors began %s (first failure in the logs).\n", r.ErrorsBegan.Format("2006-01-02 15:04:05"))
	}
	b.WriteString(r.Headline() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// ReportInput is what the owner adds to a support report.
type ReportInput struct {
	// Problem describes what visitors see. Default "Visitors see
	// 502 Bad Gateway errors."
	Problem string
	// Tried lists what the owner already tried. Default none.
	Tried []string
	// Version is gatewise's version. Default "dev".
	Version string
}

// WriteReport writes the Markdown support report: the problem, the
// timeline, what was checked, what was found (ranked, with evidence and
// fixes), what was already tried, and the system facts. Every text goes
// through Redact.
func (r *Result) WriteReport(w io.Writer, in ReportInput) error {
	if in.Problem == "" {
		in.Problem = "Visitors see 502 Bad Gateway errors."
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	host := "this host"
	for _, f := range r.Facts {
		if f.Name == "host name" {
			host = f.Value
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Support report: %s\n\n", md(host))
	fmt.Fprintf(&b, "Written by `gatewise doctor` (%s) at %s. Passwords, cookies, tokens and keys are replaced by `[REDACTED]`.\n\n", md(in.Version), r.Now.Format("2006-01-02 15:04:05 MST"))

	b.WriteString("## The problem\n\n")
	b.WriteString(md(in.Problem) + "\n\n")
	if !r.ErrorsBegan.IsZero() {
		fmt.Fprintf(&b, "The logs show the first failure at %s.\n", r.ErrorsBegan.Format("2006-01-02 15:04:05 MST"))
	}
	c := r.Counts()
	fmt.Fprintf(&b, "doctor found %d failures and %d warnings", c[StatusFail], c[StatusWarn])
	if len(r.Findings) > 0 && r.Findings[0].Status.severity() >= StatusWarn.severity() {
		fmt.Fprintf(&b, "; the most likely cause: **%s**: %s", md(r.Findings[0].label()), md(r.Findings[0].Summary))
	}
	b.WriteString(".\n\n")

	b.WriteString("## Timeline\n\n")
	if len(r.Timeline) == 0 {
		b.WriteString("No dated event (package change, OOM kill, error) in the window.\n\n")
	} else {
		b.WriteString("| time | event |\n|---|---|\n")
		for _, t := range r.Timeline {
			fmt.Fprintf(&b, "| %s | %s |\n", t.Time.Format("2006-01-02 15:04:05"), cell(t.What))
		}
		b.WriteString("\n")
	}

	b.WriteString("## What was checked\n\n| check | target | result |\n|---|---|---|\n")
	for _, ch := range r.Checks {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(ch.Check), cell(ch.Target), ch.Status)
	}
	b.WriteString("\n")

	b.WriteString("## What was found\n\nMost likely cause first.\n\n")
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "### %d. %s: %s\n\n", f.Rank, strings.ToUpper(string(f.Status)), md(f.label()))
		b.WriteString(md(f.Summary) + "\n\n")
		if f.Cause != "" {
			fmt.Fprintf(&b, "Cause: `%s`", f.Cause)
			if _, ok := r.lookupCause(f.Cause); ok {
				fmt.Fprintf(&b, " (docs/causes/%s.md)", f.Cause)
			}
			b.WriteString("\n\n")
		}
		if len(f.Evidence) > 0 {
			b.WriteString("```\n")
			for _, ev := range f.Evidence {
				b.WriteString(strings.ReplaceAll(ev, "```", "'''") + "\n")
			}
			b.WriteString("```\n\n")
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, "Fix: %s\n\n", md(f.Fix))
		}
	}

	b.WriteString("## What was already tried\n\n")
	if len(in.Tried) == 0 {
		b.WriteString("- Nothing recorded besides this report (`gatewise doctor --tried TEXT` adds a line).\n")
	}
	for _, t := range in.Tried {
		fmt.Fprintf(&b, "- %s\n", md(t))
	}
	fmt.Fprintf(&b, "- `gatewise doctor` ran the %d checks above.\n\n", len(r.Checks))

	b.WriteString("## System facts\n\n| fact | value |\n|---|---|\n")
	for _, f := range r.Facts {
		fmt.Fprintf(&b, "| %s | %s |\n", cell(f.Name), cell(f.Value))
	}
	_, err := io.WriteString(w, Redact(b.String()))
	return err
}

// lookupCause reports whether id is a cause of the taxonomy.
func (r *Result) lookupCause(id string) (cause.Cause, bool) {
	t := r.table
	if t == nil {
		t = cause.NewTable()
	}
	return t.Lookup(cause.ID(id))
}

// md makes one line of text safe in Markdown prose: newlines become
// spaces and HTML's angle brackets are escaped.
func md(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(s)
}

// cell makes text safe in a Markdown table cell.
func cell(s string) string {
	if s == "" {
		return "—"
	}
	return strings.ReplaceAll(md(s), "|", `\|`)
}
