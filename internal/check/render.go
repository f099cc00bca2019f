package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Chain draws the hops on one line, the failing hop marked with an X:
// "you -> nginx (answered) -> [X application]".
func (r *Report) Chain() string {
	var b strings.Builder
	for i, h := range r.Hops {
		if i > 0 {
			b.WriteString(" -> ")
		}
		name := h.Name
		if h.Software != "" && !strings.EqualFold(h.Software, h.Name) {
			name += " (" + h.Software + ")"
		}
		switch h.State {
		case StateFailed:
			b.WriteString("[X " + name + "]")
		case StateAnswered:
			b.WriteString(name + " [answered]")
		case StateUnknown:
			b.WriteString(name + "?")
		default:
			b.WriteString(name)
		}
	}
	return b.String()
}

// WriteText writes the report for people: the verdict, the chain, the
// checks made, the timings, the advice and the message for the owner.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("gatewise check %s  (%s UTC)\n\n", r.URL, r.Time.Format("2006-01-02 15:04:05"))
	p("Verdict:  %s\n", r.Verdict)
	fault := r.AtFault
	if r.Cause != "" {
		fault += ", cause " + string(r.Cause)
	}
	p("At fault: %s (%s)\n\n", fault, r.Pattern)
	p("  %s\n", r.Chain())
	evidence := false
	for _, h := range r.Hops {
		if len(h.Evidence) == 0 && h.ID == "" {
			continue
		}
		if !evidence {
			p("\n")
			evidence = true
		}
		line := "  " + h.Name + ": " + strings.Join(h.Evidence, "; ")
		if h.ID != "" {
			line += " (ID " + h.ID + ")"
		}
		p("%s\n", line)
	}
	p("\nRequests:\n")
	for _, a := range append(append([]Result(nil), r.Attempts...), r.Variants...) {
		mark := "ok  "
		if a.Failed {
			mark = "FAIL"
		}
		by := ""
		if a.AnsweredBy != "" {
			by = " from " + a.AnsweredBy
		}
		if a.Cause != "" {
			by += " [" + string(a.Cause) + "]"
		}
		p("  %s %-44s %s%s  (%s)\n", mark, a.Label, a.describe(), by, a.Timings.Total)
	}
	p("\nChecks:\n")
	d := r.DNS
	switch {
	case d.System.Outcome == DNSSkipped:
		p("  DNS       none: the URL names an address\n")
	default:
		p("  DNS       system: %s (%s)\n", lookupText(d.System), d.System.Duration)
		p("            %s: %s (%s)", d.Second.Resolver, lookupText(d.Second), d.Second.Duration)
		if d.Differ {
			p("  DIFFERENT")
		}
		p("\n")
	}
	if len(r.Controls) == 0 {
		p("  Controls  none\n")
	}
	for i, ctl := range r.Controls {
		label := "          "
		if i == 0 {
			label = "Controls  "
		}
		state := "reached"
		if !ctl.Reached {
			state = "NOT reached: " + ctl.Error
		} else if ctl.Status != 0 {
			state = fmt.Sprintf("reached (%d)", ctl.Status)
		}
		p("  %s%s %s (%s)\n", label, ctl.URL, state, ctl.Duration)
	}
	if r.CookieBytes > 0 {
		p("  Cookies   %d bytes sent with the attempts\n", r.CookieBytes)
	} else {
		p("  Cookies   none given (--cookie or --cookies FILE to compare)\n")
	}
	s := r.Speed
	if s.Connect == 0 {
		p("  Speed     DNS %s; no connection was made\n", s.DNS)
	} else {
		p("  Speed     DNS %s, connect %s", s.DNS, s.Connect)
		if s.TLS > 0 {
			p(", TLS %s", s.TLS)
		}
		p(", first byte %s", s.FirstByte)
		if s.BytesPerSecond > 0 {
			p(", download %s/s", bytesText(s.BytesPerSecond))
		}
		p("\n")
	}
	p("\nWhat you can do:\n")
	for _, a := range r.Advice {
		p("  - %s\n", a)
	}
	if r.OwnerMessage != "" {
		p("\nMessage for the site's owner:\n  %s\n", r.OwnerMessage)
	}
	return ew.err
}

func lookupText(l Lookup) string {
	switch l.Outcome {
	case DNSOK:
		return strings.Join(l.Addrs, ", ")
	case DNSSkipped:
		return "not asked"
	}
	return strings.ToUpper(l.Outcome) + ": " + l.Error
}

func bytesText(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f kB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
