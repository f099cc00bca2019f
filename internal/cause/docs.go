package cause

import (
	"fmt"
	"net/http"
	"strings"
)

// The markers around the generated block of a cause's page. Everything
// between them (and the page's first heading) is rewritten by
// `go generate ./internal/cause`; everything after the end marker is
// written by hand and kept as it is.
const (
	docBeginMarker = "<!-- generated:begin -->"
	docEndMarker   = "<!-- generated:end -->"
)

// docSkeletonMarker marks the hand-written sections of a page that nobody
// has written yet. A page still holding it fails the docs test.
const docSkeletonMarker = "<!-- TODO: write this section -->"

// docHeading returns the first line of the cause's page, "# ID: Title".
func docHeading(c Cause) string {
	return "# " + string(c.ID) + ": " + c.Title
}

// RenderDocBlock returns the generated block of the cause's page, from the
// "<!-- generated:begin -->" marker to the "<!-- generated:end -->" marker
// inclusive, without a final newline: a table of the status, the
// Proxy-Status error type, the hop and whether a retry may help, the
// visitor's and the owner's sentences, and the log patterns by which other
// servers report the same cause.
func RenderDocBlock(c Cause) string {
	var b strings.Builder
	b.WriteString(docBeginMarker + "\n")
	b.WriteString("<!-- Generated from internal/cause/table.go by `go generate ./internal/cause`: edit the table, not this block. -->\n\n")
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| Status the gateway answers | %s |\n", docStatus(c.Status))
	fmt.Fprintf(&b, "| Proxy-Status error type | %s |\n", docProxyStatusError(c.ProxyStatusError))
	fmt.Fprintf(&b, "| Hop at fault | %s |\n", c.Hop)
	fmt.Fprintf(&b, "| Retryable | %s |\n", docRetryable(c.Retryable))
	b.WriteString("\n## What the visitor sees\n\n")
	b.WriteString(c.Visitor + "\n")
	b.WriteString("\n## What to do\n\n")
	b.WriteString(c.Owner + "\n")
	b.WriteString("\n## Other servers say\n\n")
	if len(c.Signatures) == 0 {
		b.WriteString("No other server logs this cause: it is gatewise's own.\n")
	} else {
		b.WriteString("Log lines of other servers that mean the same thing (Go regular expressions, as `gatewise logs` matches them):\n\n")
		for _, s := range c.Signatures {
			fmt.Fprintf(&b, "- %s: %s\n", s.Server, codeSpan(s.Pattern))
		}
	}
	b.WriteString(docEndMarker)
	return b.String()
}

// RenderDocPage returns page, the current text of the cause's page, with
// its heading ("# ID: Title") and generated block brought up to date and the
// rest left as it is. When page is empty it returns a new page whose
// hand-written sections are a skeleton to fill in. It fails when page has no
// well-formed generated block.
func RenderDocPage(page string, c Cause) (string, error) {
	if page == "" {
		return docHeading(c) + "\n\n" + RenderDocBlock(c) + "\n" + docSkeleton, nil
	}
	begin := strings.Index(page, docBeginMarker)
	end := strings.Index(page, docEndMarker)
	switch {
	case begin < 0 || end < 0:
		return "", fmt.Errorf("%s: no generated block: add a line %q and a line %q after the heading", c.DocPath(), docBeginMarker, docEndMarker)
	case end < begin:
		return "", fmt.Errorf("%s: %q comes before %q", c.DocPath(), docEndMarker, docBeginMarker)
	case strings.Count(page, docBeginMarker) > 1 || strings.Count(page, docEndMarker) > 1:
		return "", fmt.Errorf("%s: more than one generated block", c.DocPath())
	}
	before := page[:begin]
	after := page[end+len(docEndMarker):]
	first, rest, _ := strings.Cut(before, "\n")
	if strings.HasPrefix(first, "# ") {
		before = docHeading(c) + "\n" + rest
	} else {
		before = docHeading(c) + "\n\n" + before
	}
	return before + RenderDocBlock(c) + after, nil
}

// docSkeleton is the hand-written part of a new page.
const docSkeleton = `
## How gatewise detects it

` + docSkeletonMarker + `
Which error, in which phase of the attempt, makes the gateway pick this cause.

## How to reproduce it

` + docSkeletonMarker + `
A command an owner can run to see this cause on purpose.

## Fixes

` + docSkeletonMarker + `
Concrete fixes, with commands.
`

// RenderIndex returns docs/causes/README.md: a table of every cause in t's
// order with its status, Proxy-Status error type and hop, linking to its page.
func RenderIndex(t *Table) string {
	var b strings.Builder
	b.WriteString("# Causes\n\n")
	b.WriteString("<!-- Generated from internal/cause/table.go by `go generate ./internal/cause`: edit the table, not this file. -->\n\n")
	b.WriteString("Every failure gatewise sees, and every line about one that `gatewise logs` reads in another server's log, maps to one of these causes. ")
	b.WriteString("The id appears in the `Proxy-Status` header's `details`, the access log, the metrics' `cause` label and the dashboard; ")
	b.WriteString("each page says what the visitor sees, how gatewise detects the cause, how to reproduce it and how to fix it.\n\n")
	b.WriteString("| ID | Status | Proxy-Status error | Hop | Cause |\n|---|---|---|---|---|\n")
	for _, c := range t.All() {
		status := "passed through"
		if c.Status != 0 {
			status = fmt.Sprint(c.Status)
		}
		perr := "none"
		if c.ProxyStatusError != "" {
			perr = "`" + c.ProxyStatusError + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | [%s](%s.md) |\n", c.ID, status, perr, c.Hop, escapeTableCell(c.Title), c.ID)
	}
	return b.String()
}

func docStatus(status int) string {
	switch text := http.StatusText(status); {
	case status == 0:
		return "none: the upstream's own response is passed through"
	case text == "":
		return fmt.Sprintf("%d (a log code, not an HTTP status: no response is sent)", status)
	default:
		return fmt.Sprintf("%d %s", status, text)
	}
}

func docProxyStatusError(e string) string {
	if e == "" {
		return "none"
	}
	return "`" + e + "`"
}

func docRetryable(r bool) string {
	if r {
		return "yes: trying again later may work"
	}
	return "no: it fails the same way until someone fixes it"
}

// codeSpan returns s as a Markdown code span, fenced with more backticks
// than any run inside it and padded when it starts or ends with one.
func codeSpan(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	// CommonMark strips one space from each end of a span that starts and
	// ends with one, and needs one to tell a backtick inside from the fence.
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") ||
		(strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ") && strings.Trim(s, " ") != "") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// escapeTableCell escapes the characters that would break a Markdown
// table's cell.
func escapeTableCell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// Markers around the cause table in the repository's README.md.
const (
	readmeBegin = "<!-- causes:begin -->"
	readmeEnd   = "<!-- causes:end -->"
)

// RenderReadmeCauses returns the cause table that README.md holds between
// its causes:begin and causes:end markers.
func RenderReadmeCauses(t *Table) string {
	var b strings.Builder
	b.WriteString("| cause | status | Proxy-Status error | at fault |\n|---|---|---|---|\n")
	for _, c := range t.All() {
		status := fmt.Sprint(c.Status)
		switch {
		case c.Status == 0:
			status = "the upstream's own"
		case http.StatusText(c.Status) == "":
			status += " (logged; nothing is sent)"
		}
		perr := "—"
		if c.ProxyStatusError != "" {
			perr = c.ProxyStatusError
		}
		fmt.Fprintf(&b, "| [%s](%s) | %s | %s | %s |\n", c.ID, c.DocPath(), status, perr, c.Hop)
	}
	return b.String()
}

// SpliceReadme returns readme with the text between its causes markers
// replaced by RenderReadmeCauses(t). It fails when the markers are missing.
func SpliceReadme(readme string, t *Table) (string, error) {
	i := strings.Index(readme, readmeBegin)
	j := strings.Index(readme, readmeEnd)
	if i < 0 || j < i {
		return "", fmt.Errorf("README.md lacks the %s and %s markers", readmeBegin, readmeEnd)
	}
	return readme[:i+len(readmeBegin)] + "\n" + RenderReadmeCauses(t) + readme[j:], nil
}
