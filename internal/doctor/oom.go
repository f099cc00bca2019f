package doctor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gatewise/gatewise/internal/logs"
)

// maxKmsg bounds what is read of /dev/kmsg.
const maxKmsg = 8 << 20

// oomFix is the fix of an OOM kill.
const oomFix = "The kernel ran out of memory and killed the process named. Find what uses the memory (`free -m`, `ps aux --sort=-rss`), lower PHP-FPM's pm.max_children or memory_limit so the pool fits in RAM, set MySQL's buffers (innodb_buffer_pool_size) to what the host can spare, and add memory or swap."

// oom is check 2: OOM kills in the window, from the kernel's messages
// (/dev/kmsg, the journal, kern.log), /proc/vmstat's oom_kill counter and
// the cgroups' memory.events, naming the victim.
func (e *env) oom(ctx context.Context) []Finding {
	rd, err := logs.NewReader(logs.Options{Table: e.table, Since: e.opts.Since})
	if err != nil {
		return []Finding{skip("cannot build the log reader: " + err.Error())}
	}
	var kills []logs.Event
	var read, notes []string
	add := func(ev logs.Event) {
		if ev.Kind != logs.KindOOMKill {
			return
		}
		for _, k := range kills {
			if k.Process == ev.Process && !k.Time.IsZero() && !ev.Time.IsZero() && absDur(k.Time.Sub(ev.Time)) <= 2*time.Second {
				return // the same kill from another source
			}
		}
		if len(kills) < 1000 {
			kills = append(kills, ev)
		}
	}
	scan := func(name string, data []byte, ref time.Time) {
		if _, err := rd.Scan(ctx, logs.Source{Name: name, R: bytes.NewReader(data), Ref: ref}, add); err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", name, err))
			return
		}
		read = append(read, name)
	}
	// The kernel's ring buffer, with times made absolute.
	if data, err := e.kmsg(); err == nil {
		scan("/dev/kmsg", data, e.opts.Now)
	} else {
		notes = append(notes, "/dev/kmsg: "+err.Error())
	}
	if e.opts.Journal != nil {
		if out, err := e.opts.Journal(ctx, e.opts.Since); err == nil && len(out) > 0 {
			scan("journalctl -k", out, e.opts.Now)
		} else if err != nil {
			notes = append(notes, "journalctl -k: "+err.Error())
		}
	}
	for _, name := range []string{"/var/log/kern.log.1", "/var/log/kern.log", "/var/log/messages"} {
		f, src, err := logs.OpenFile(e.sys.path(name))
		if err != nil {
			continue
		}
		src.Name = name
		if _, err := rd.Scan(ctx, src, add); err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", name, err))
		} else {
			read = append(read, name)
		}
		f.Close()
	}
	// Counters since boot.
	var counters []string
	total := int64(-1)
	if b, err := e.sys.read("/proc/vmstat"); err == nil {
		if n, ok := keyValues(b)["oom_kill"]; ok {
			total = n
			up := ""
			if s, err := e.sys.uptime(); err == nil {
				up = " (up " + (time.Duration(s) * time.Second).String() + ")"
			}
			counters = append(counters, fmt.Sprintf("/proc/vmstat oom_kill %d since boot%s", n, up))
		}
	}
	cgroupKills := int64(0)
	for _, file := range append([]string{"/sys/fs/cgroup/memory.events"}, e.sys.glob("/sys/fs/cgroup/system.slice/*/memory.events")...) {
		b, err := e.sys.read(file)
		if err != nil {
			continue
		}
		kv := keyValues(b)
		if n := kv["oom_kill"]; n > 0 {
			cgroupKills += n
			unit := strings.TrimSuffix(strings.TrimPrefix(file, "/sys/fs/cgroup/"), "/memory.events")
			if unit == "memory.events" {
				unit = "this cgroup"
			}
			counters = append(counters, fmt.Sprintf("%s: memory.events oom_kill %d (memory.max reached %d times)", unit, n, kv["max"]))
		}
	}

	var dated []logs.Event
	for _, k := range kills {
		if !k.Time.IsZero() && !k.Time.Before(e.opts.Since) {
			dated = append(dated, k)
		}
	}
	if len(dated) > 0 {
		victims := map[string]int{}
		var order []string
		ev := []string{}
		for _, k := range dated {
			v := k.Process
			if v == "" {
				v = "a process"
			}
			if victims[v] == 0 {
				order = append(order, v)
			}
			victims[v]++
			if len(ev) < 5 {
				ev = append(ev, k.Source+": "+strings.TrimSpace(k.Raw))
			}
		}
		ev = append(ev, counters...)
		var names []string
		for _, v := range order {
			names = append(names, fmt.Sprintf("%s (%d×)", v, victims[v]))
		}
		f := newFinding(StatusFail, weightOOM, fmt.Sprintf("the kernel's OOM killer killed %s since %s", strings.Join(names, ", "), e.opts.Since.Format("15:04")), ev, oomFix)
		f.Cause, f.Time = KindOOMKill, dated[0].Time
		return []Finding{f}
	}
	if total > 0 || cgroupKills > 0 {
		ev := append(counters, fmt.Sprintf("kernel messages read: %s; none dates a kill in the window", orNone(read)))
		f := newFinding(StatusWarn, weightOOM-20, "OOM kills happened since boot, but none is dated in the window", ev, oomFix+" Read the kernel's log (journalctl -k, dmesg -T) for when and whom.")
		f.Cause = KindOOMKill
		return []Finding{f}
	}
	if len(read) == 0 && total < 0 {
		return []Finding{skip("no kernel log nor /proc/vmstat could be read (run doctor as root)", notes...)}
	}
	ev := append(counters, "kernel messages read: "+orNone(read))
	return []Finding{ok("no OOM kill in the window", ev...)}
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// kmsg reads the kernel's ring buffer (the real /dev/kmsg, or a fixture
// file in its format) and rewrites each record as dmesg -T prints it, with
// the wall-clock time from the boot time, so the log reader can date it.
func (e *env) kmsg() ([]byte, error) {
	raw, err := readKmsg(e.sys.path("/dev/kmsg"))
	if err != nil {
		return nil, err
	}
	btime := e.sys.bootTime()
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 4096), logs.MaxLine)
	for sc.Scan() {
		line := sc.Text()
		head, msg, ok := strings.Cut(line, ";")
		f := strings.Split(head, ",")
		if !ok || len(f) < 3 || btime == 0 {
			continue
		}
		usec, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			continue
		}
		t := time.Unix(btime, 0).Add(time.Duration(usec) * time.Microsecond).In(time.Local)
		fmt.Fprintf(&out, "[%s] %s\n", t.Format("Mon Jan _2 15:04:05 2006"), msg)
	}
	return out.Bytes(), nil
}

// journalctl runs `journalctl -k` for the window, bounded by ctx.
func journalctl(ctx context.Context, since time.Time) ([]byte, error) {
	path, err := exec.LookPath("journalctl")
	if err != nil {
		return nil, nil // not installed: nothing to read
	}
	cmd := exec.CommandContext(ctx, path, "-k", "-q", "--no-pager", "-o", "short-iso", "--since", "@"+strconv.FormatInt(since.Unix(), 10))
	var out bytes.Buffer
	cmd.Stdout = &limitWriter{w: &out, n: maxKmsg}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("journalctl: %w", err)
	}
	return out.Bytes(), nil
}

// limitWriter keeps the first n bytes written and drops the rest.
type limitWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	if _, err := l.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}
