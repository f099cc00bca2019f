package doctor

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Change is one change to the host: a package installed, upgraded or
// removed, the gateway's config edited, a plugin or theme changed.
type Change struct {
	// Time is when it happened.
	Time time.Time
	// What is "upgrade", "install", "remove", "purge", "config" or
	// "plugin".
	What string
	// Name is the package (without its architecture), the config file or
	// the plugin's directory.
	Name string
	// From and To are the versions of a package change.
	From, To string
	// Source is the file that says so.
	Source string
}

// String describes the change in words.
func (c Change) String() string {
	switch c.What {
	case "upgrade":
		return fmt.Sprintf("%s was upgraded (%s → %s)", c.Name, c.From, c.To)
	case "install":
		return fmt.Sprintf("%s %s was installed", c.Name, c.To)
	case "remove", "purge":
		return fmt.Sprintf("%s %s was removed", c.Name, c.From)
	case "config":
		return fmt.Sprintf("the config %s was changed", c.Name)
	case "plugin":
		return fmt.Sprintf("%s changed", c.Name)
	}
	return c.What + " " + c.Name
}

// rollback says how to undo the change.
func (c Change) rollback() string {
	switch c.What {
	case "upgrade":
		return fmt.Sprintf("Roll it back with `apt-get install %s=%s` (then `apt-mark hold %s` until a fixed version comes), or look in its changelog for what changed.", c.Name, c.From, c.Name)
	case "install":
		return fmt.Sprintf("Remove it to test (`apt-get remove %s`), or read what it changed.", c.Name)
	case "remove", "purge":
		return fmt.Sprintf("Reinstall it (`apt-get install %s=%s`).", c.Name, c.From)
	case "config":
		return "Compare it with the previous version (your backup or version control), run `gatewise config validate` on it, and restore the last good one (send gatewise SIGHUP to reload)."
	case "plugin":
		return fmt.Sprintf("Disable it to test: rename its directory (mv %s %s.off) or `wp plugin deactivate`; `gatewise bisect` finds which of several plugins breaks the site.", c.Name, c.Name)
	}
	return ""
}

// correlateWindow is how long before the errors began a change is taken
// as their likely cause.
const correlateWindow = time.Hour

// changesLookback is how far back changes are listed.
const changesLookback = 7 * 24 * time.Hour

// maxChanges bounds the changes kept.
const maxChanges = 5000

// changes is check 6: package upgrades (dpkg.log, apt's history), the
// config file and plugin directories changed recently, set against when
// the errors began.
func (e *env) changes(ctx context.Context, errorsBegan time.Time) []Finding {
	since := e.opts.Since.Add(-changesLookback)
	var all []Change
	var read []string
	for _, name := range e.sys.glob("/var/log/dpkg.log*") {
		cs, err := readLogFile(e.sys.path(name), func(r io.Reader) []Change { return parseDpkgLog(r, name, since) })
		if err == nil {
			all = append(all, cs...)
			read = append(read, name)
		}
	}
	for _, name := range e.sys.glob("/var/log/apt/history.log*") {
		cs, err := readLogFile(e.sys.path(name), func(r io.Reader) []Change { return parseAptHistory(r, name, since) })
		if err == nil {
			all = append(all, cs...)
			read = append(read, name)
		}
	}
	if e.opts.ConfigFile != "" {
		if fi, err := os.Stat(e.opts.ConfigFile); err == nil && fi.ModTime().After(since) {
			all = append(all, Change{Time: fi.ModTime(), What: "config", Name: e.opts.ConfigFile, Source: "its modification time"})
		}
	}
	all = append(all, e.pluginChanges(since)...)
	all = dedupeChanges(all)
	if ctx.Err() != nil {
		return []Finding{skip("ran out of time reading the change logs")}
	}

	if !errorsBegan.IsZero() {
		var before []Change
		for _, c := range all {
			if !c.Time.After(errorsBegan) && errorsBegan.Sub(c.Time) <= correlateWindow {
				before = append(before, c)
			}
		}
		if len(before) > 0 {
			last := before[len(before)-1]
			gap := errorsBegan.Sub(last.Time).Round(time.Second)
			summary := fmt.Sprintf("errors began %s after %s", humanGap(gap), last.String())
			ev := []string{fmt.Sprintf("errors began %s (first failure in the logs)", errorsBegan.Format("2006-01-02 15:04:05"))}
			for i := len(before) - 1; i >= 0 && len(ev) < 11; i-- {
				c := before[i]
				ev = append(ev, fmt.Sprintf("%s  %s  (%s)", c.Time.Format("2006-01-02 15:04:05"), c.String(), c.Source))
			}
			f := newFinding(StatusWarn, weightChange, summary, ev, last.rollback())
			f.Cause, f.Time = KindChange, last.Time
			return []Finding{f}
		}
	}
	var recent []Change
	for _, c := range all {
		if !c.Time.Before(e.opts.Since.Add(-24 * time.Hour)) {
			recent = append(recent, c)
		}
	}
	if len(read) == 0 && len(all) == 0 {
		return []Finding{skip("no package log (/var/log/dpkg.log, /var/log/apt/history.log) to read")}
	}
	if len(recent) == 0 {
		return []Finding{ok("no package, config or plugin change in the day before the window", "read: "+orNone(read))}
	}
	ev := []string{}
	for i := len(recent) - 1; i >= 0 && len(ev) < 10; i-- {
		c := recent[i]
		ev = append(ev, fmt.Sprintf("%s  %s  (%s)", c.Time.Format("2006-01-02 15:04:05"), c.String(), c.Source))
	}
	why := "no error in the logs to set them against"
	if !errorsBegan.IsZero() {
		why = fmt.Sprintf("none in the hour before the errors began (%s)", errorsBegan.Format("15:04:05"))
	}
	return []Finding{ok(fmt.Sprintf("%d changes in the day before the window and since; %s", len(recent), why), ev...)}
}

// humanGap says a duration the way a person would.
func humanGap(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	case d < 2*time.Minute:
		return "1 minute"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
	return d.Round(time.Minute).String()
}

// readLogFile opens a log (gzip-compressed or not) and parses it.
func readLogFile(path string, parse func(io.Reader) []Change) ([]Change, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(io.LimitReader(f, 256<<20))
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = io.LimitReader(zr, 256<<20)
	}
	return parse(r), nil
}

// parseDpkgLog reads dpkg.log's action lines:
// "2026-11-23 23:08:01 upgrade php8.2-fpm:amd64 8.2.7-1 8.2.8-1".
func parseDpkgLog(r io.Reader, source string, since time.Time) []Change {
	var out []Change
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() && len(out) < maxChanges {
		f := strings.Fields(sc.Text())
		if len(f) != 6 {
			continue
		}
		switch f[2] {
		case "install", "upgrade", "remove", "purge":
		default:
			continue
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05", f[0]+" "+f[1], time.Local)
		if err != nil || t.Before(since) {
			continue
		}
		name, _, _ := strings.Cut(f[3], ":")
		c := Change{Time: t, What: f[2], Name: name, From: f[4], To: f[5], Source: source}
		if c.From == "<none>" {
			c.From = ""
		}
		if c.To == "<none>" {
			c.To = ""
		}
		if c.What == "upgrade" && c.From == "" {
			c.What = "install"
		}
		if c.What == "upgrade" && c.From == c.To {
			continue // a reinstall
		}
		out = append(out, c)
	}
	return out
}

// parseAptHistory reads apt's history.log: blocks of "Start-Date:",
// "Commandline:" and "Upgrade:", "Install:", "Remove:" lines listing
// "pkg:arch (old, new)" entries.
func parseAptHistory(r io.Reader, source string, since time.Time) []Change {
	var out []Change
	var start time.Time
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4<<20)
	for sc.Scan() && len(out) < maxChanges {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Start-Date":
			t, err := time.ParseInLocation("2006-01-02  15:04:05", v, time.Local)
			if err != nil {
				t, err = time.ParseInLocation("2006-01-02 15:04:05", strings.Join(strings.Fields(v), " "), time.Local)
			}
			if err != nil {
				start = time.Time{}
				continue
			}
			start = t
		case "Upgrade", "Install", "Remove", "Purge", "Downgrade":
			if start.IsZero() || start.Before(since) {
				continue
			}
			for _, entry := range splitAptEntries(v) {
				name, vers, _ := strings.Cut(entry, " (")
				name, _, _ = strings.Cut(name, ":")
				vers = strings.TrimSuffix(vers, ")")
				vs := strings.Split(vers, ", ")
				c := Change{Time: start, What: strings.ToLower(k), Name: strings.TrimSpace(name), Source: source}
				switch c.What {
				case "upgrade", "downgrade":
					c.What = "upgrade"
					if len(vs) == 2 {
						c.From, c.To = vs[0], vs[1]
					}
				case "install":
					c.To = vs[0]
				default:
					c.From = vs[0]
				}
				if c.Name != "" {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// splitAptEntries splits "a:amd64 (1, 2), b:amd64 (3)" at the commas
// between entries (not those inside parentheses).
func splitAptEntries(s string) []string {
	var out []string
	depth, startAt := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[startAt:i]))
				startAt = i + 1
			}
		}
	}
	if rest := strings.TrimSpace(s[startAt:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

// dedupeChanges sorts changes by time and drops the same package change
// read from both dpkg.log and apt's history (dpkg.log's is kept: it has
// the time of the package itself).
func dedupeChanges(cs []Change) []Change {
	sort.SliceStable(cs, func(i, j int) bool {
		if !cs[i].Time.Equal(cs[j].Time) {
			return cs[i].Time.Before(cs[j].Time)
		}
		return strings.Contains(cs[i].Source, "dpkg") && !strings.Contains(cs[j].Source, "dpkg")
	})
	var out []Change
	for _, c := range cs {
		dup := false
		for i := len(out) - 1; i >= 0 && c.Time.Sub(out[i].Time) <= 10*time.Minute; i-- {
			o := out[i]
			if o.Name == c.Name && o.What == c.What && o.To == c.To && o.From == c.From {
				if strings.Contains(c.Source, "dpkg") && !strings.Contains(o.Source, "dpkg") {
					out[i] = c // dpkg.log's time is the package's own
				}
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

// pluginChanges lists the WordPress plugins, must-use plugins and themes
// under the FastCGI pools' document roots whose directory changed since.
func (e *env) pluginChanges(since time.Time) []Change {
	if e.opts.Config == nil {
		return nil
	}
	var out []Change
	seen := map[string]bool{}
	for _, p := range e.opts.Config.Pools {
		if p == nil || p.FastCGI == nil || p.FastCGI.Root == "" || seen[p.FastCGI.Root] {
			continue
		}
		seen[p.FastCGI.Root] = true
		for _, sub := range []string{"wp-content/plugins", "wp-content/mu-plugins", "wp-content/themes"} {
			dir := filepath.Join(p.FastCGI.Root, sub)
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for i, ent := range ents {
				if i >= 1000 {
					break
				}
				fi, err := ent.Info()
				if err != nil || !fi.ModTime().After(since) {
					continue
				}
				out = append(out, Change{Time: fi.ModTime(), What: "plugin", Name: filepath.Join(dir, ent.Name()), Source: "its modification time"})
			}
		}
	}
	return out
}

// changesFromBytes parses dpkg.log content, for tests and fuzzing.
func changesFromBytes(b []byte) []Change {
	return parseDpkgLog(bytes.NewReader(b), "dpkg.log", time.Time{})
}
