package doctor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
	"github.com/gatewise/gatewise/internal/logs"
)

// defaultLogs are the logs read when none is named, when they exist.
var defaultLogs = []string{
	"/var/log/nginx/error.log",
	"/var/log/apache2/error.log",
	"/var/log/httpd/error_log",
	"/var/log/php*-fpm.log",
	"/var/log/mysql/error.log",
	"/var/log/haproxy.log",
	"/var/log/kern.log",
}

// maxLogCauses is how many causes of the logs become findings.
const maxLogCauses = 5

// logsCheck is check 7; it remembers when the errors began for the
// changes check.
type logsCheck struct {
	e *env

	mu    sync.Mutex
	began time.Time
}

// errorsBegan returns the time of the first failure the logs showed.
func (l *logsCheck) errorsBegan() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.began
}

// run reads the logs through internal/logs and turns its report into
// findings: each chain (a trigger and the failures after it), then the
// causes by count.
func (l *logsCheck) run(ctx context.Context) []Finding {
	e := l.e
	var began time.Time
	defer func() {
		l.mu.Lock()
		l.began = began
		l.mu.Unlock()
	}()
	files := e.opts.Logs
	if len(files) == 0 {
		for _, pat := range defaultLogs {
			for _, p := range e.sys.glob(pat) {
				files = append(files, e.sys.path(p))
			}
		}
	}
	if len(files) == 0 {
		return []Finding{skip("no log to read: name them with --logs (nginx's or Apache's error log, PHP-FPM's, the kernel's)")}
	}
	rd, err := logs.NewReader(logs.Options{Table: e.table, Since: e.opts.Since, Until: e.opts.Now.Add(time.Minute)})
	if err != nil {
		return []Finding{skip("cannot build the log reader: " + err.Error())}
	}
	sum := logs.NewSummary(e.table, 2000)
	var unreadable []string
	for _, name := range files {
		f, src, err := logs.OpenFile(name)
		if err != nil {
			unreadable = append(unreadable, err.Error())
			continue
		}
		src.Name = e.sys.host(name)
		st, err := rd.Scan(ctx, src, sum.Add)
		f.Close()
		st.Source = src.Name
		sum.AddFile(st)
		if err != nil {
			unreadable = append(unreadable, err.Error())
		}
	}
	rep := sum.Report()
	var out []Finding
	var lines int64
	var read []string
	for _, fs := range rep.Files {
		lines += fs.Lines
		read = append(read, fmt.Sprintf("%s (%s, %d lines, %d unreadable)", fs.Source, fs.Format, fs.Lines, fs.Unreadable))
	}
	inChain := map[string]bool{}
	for i, ch := range rep.Chains {
		if i == 3 {
			break
		}
		for _, st := range ch.Steps {
			inChain[st.Label] = true
		}
		var ev []string
		for _, st := range ch.Steps {
			ev = append(ev, fmt.Sprintf("%s ×%d: %s:%d: %s", st.Label, st.Count, st.Evidence.Source, st.Evidence.Line, strings.TrimSpace(st.Evidence.Raw)))
		}
		fix := oomFix
		if first := ch.Steps[0]; first.Evidence.Kind == logs.KindCause {
			fix = e.table.Get(first.Evidence.Cause).Owner
		} else if first.Evidence.Kind != logs.KindOOMKill {
			fix = countFix(rep, first.Label)
		}
		f := newFinding(StatusFail, weightChain, "the logs show a chain: "+ch.Summary, ev, fix)
		f.Cause, f.Time = ch.Steps[0].Label, ch.Start
		out = append(out, f)
	}
	for i, c := range rep.Causes {
		if !c.FirstSeen.IsZero() && isFailure(e.table, cause.ID(c.Cause)) && (began.IsZero() || c.FirstSeen.Before(began)) {
			began = c.FirstSeen
		}
		if i >= maxLogCauses {
			continue
		}
		st, w := StatusWarn, weightLogs
		if isFailure(e.table, cause.ID(c.Cause)) {
			st, w = StatusFail, weightLogs+min(int(c.Count), 20)
		}
		ev := []string{fmt.Sprintf("%s, %s", times(c.Count), seenRange(c))}
		if first := firstEvent(rep, c.Cause); first != nil {
			ev = append(ev, fmt.Sprintf("%s:%d: %s", first.Source, first.Line, strings.TrimSpace(first.Raw)))
		}
		f := newFinding(st, w, fmt.Sprintf("%d × %s (%s) in the logs", c.Count, c.Cause, c.Title), ev, c.Fix)
		f.Cause, f.Time = c.Cause, c.FirstSeen
		out = append(out, f)
	}
	for _, c := range rep.Other {
		if c.Cause == string(logs.KindStatus) && !c.FirstSeen.IsZero() && (began.IsZero() || c.FirstSeen.Before(began)) {
			began = c.FirstSeen
		}
		if c.Cause == string(logs.KindRestart) || inChain[c.Cause] {
			continue // a restart explains nothing alone; a chain shows the rest
		}
		ev := []string{fmt.Sprintf("%s, %s", times(c.Count), seenRange(c))}
		if first := firstEvent(rep, c.Cause); first != nil {
			ev = append(ev, fmt.Sprintf("%s:%d: %s", first.Source, first.Line, strings.TrimSpace(first.Raw)))
		}
		f := newFinding(StatusWarn, weightLogs-10, fmt.Sprintf("%d × %s (%s) in the logs", c.Count, c.Cause, c.Title), ev, c.Fix)
		f.Cause, f.Time = c.Cause, c.FirstSeen
		out = append(out, f)
	}
	if len(unreadable) > 0 {
		out = append(out, skip(fmt.Sprintf("%d log files could not be read", len(unreadable)), unreadable...))
	}
	if len(out) == 0 || (len(out) == len(unreadable) && len(rep.Files) > 0) {
		out = append(out, ok(fmt.Sprintf("no failure in %d lines of %d log files since %s", lines, len(rep.Files), e.opts.Since.Format("2006-01-02 15:04")), read...))
	} else if len(rep.Files) > 0 {
		// Say what was read in the first finding.
		out[0].Evidence = append(out[0].Evidence, "logs read: "+strings.Join(read, "; "))
	}
	return out
}

// isFailure reports whether a cause (or a kind) is a failed request seen by
// a visitor: a 5xx cause of the taxonomy or an upstream's own error status.
func isFailure(t *cause.Table, id cause.ID) bool {
	c, ok := t.Lookup(id)
	if !ok {
		return false
	}
	return c.Status >= 500 || c.ID == cause.UpstreamErrorStatus
}

// firstEvent returns the first kept event of a label.
func firstEvent(rep *logs.Report, label string) *logs.Event {
	for i := range rep.Events {
		if rep.Events[i].Label() == label {
			return &rep.Events[i]
		}
	}
	return nil
}

// countFix returns the fix the report gives a label.
func countFix(rep *logs.Report, label string) string {
	for _, c := range append(rep.Causes, rep.Other...) {
		if c.Cause == label {
			return c.Fix
		}
	}
	return ""
}

// seenRange says when a count's events happened.
func seenRange(c logs.Count) string {
	if c.FirstSeen.IsZero() {
		return "at times the log does not give"
	}
	return fmt.Sprintf("%s .. %s", c.FirstSeen.Format("2006-01-02 15:04:05"), c.LastSeen.Format("2006-01-02 15:04:05"))
}

// times says "1 time" or "N times".
func times(n int64) string {
	if n == 1 {
		return "1 time"
	}
	return fmt.Sprintf("%d times", n)
}
