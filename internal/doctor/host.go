package doctor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gatewise/gatewise/internal/cause"
)

// Thresholds of the host checks.
const (
	// memFailPercent and memWarnPercent: MemAvailable below this share of
	// MemTotal fails or warns.
	memFailPercent = 5
	memWarnPercent = 10
	// swapWarnPercent: swap used above this share warns (with memory low).
	swapWarnPercent = 50
	// diskFailPercent and diskWarnPercent: free space or inodes below
	// this share of the file system fails or warns.
	diskFailPercent = 2
	diskWarnPercent = 10
	// fdFailPercent and fdWarnPercent: descriptors in use above this
	// share of the limit fails or warns.
	fdFailPercent = 95
	fdWarnPercent = 80
	// loadWarnFactor and loadFailFactor: a 5-minute load average above
	// this many times the cores warns or fails.
	loadWarnFactor = 2
	loadFailFactor = 4
)

// memoryFix is the fix of a host short of memory.
const memoryFix = "The host is short of memory: the next spike ends in swapping (slow answers, timeouts) or an OOM kill (fpm_worker_crashed, a dead MySQL). Find what uses it (the largest processes above; ps aux --sort=-rss), size PHP-FPM's pm.max_children to memory ÷ memory per worker, set MySQL's innodb_buffer_pool_size to what the host can spare, and add memory or swap. gatewise's limits.min_host_available_percent sheds load before the OOM killer acts (memory_pressure)."

// fpmPool is what the memory check knows of a PHP-FPM pool.
type fpmPool struct {
	name        string
	workers     int
	rss         int64 // all its workers'
	maxChildren int   // from the pool's config; 0 when unknown
	confFile    string
}

// memory is check 1: memory as free -m reads it, swap, the largest
// processes, and PHP-FPM's memory per worker × pm.max_children against
// what is available.
func (e *env) memory(ctx context.Context) []Finding {
	mi, err := e.sys.meminfo()
	if err != nil {
		return []Finding{skip("cannot read /proc/meminfo: " + err.Error())}
	}
	swapUsed := mi.swapTotal - mi.swapFree
	availPct := pct(mi.available, mi.total)
	ev := []string{
		fmt.Sprintf("MemTotal %s, MemAvailable %s (%.0f%%)%s", mib(mi.total), mib(mi.available), availPct, map[bool]string{true: " (estimated: no MemAvailable)"}[mi.estimated]),
	}
	if mi.swapTotal > 0 {
		ev = append(ev, fmt.Sprintf("swap %s used of %s (%.0f%%)", mib(swapUsed), mib(mi.swapTotal), pct(swapUsed, mi.swapTotal)))
	} else {
		ev = append(ev, "no swap")
	}
	if lim, cur, ok := e.cgroupMemory(); ok {
		ev = append(ev, fmt.Sprintf("cgroup memory.max %s, memory.current %s (%.0f%%)", mib(lim), mib(cur), pct(cur, lim)))
		if lim < mi.total && lim-cur < mi.available {
			// Inside a container the cgroup's limit is what is available.
			mi.available = max(0, lim-cur)
			mi.total = lim
			availPct = pct(mi.available, mi.total)
		}
	}
	procs, perr := e.sys.procs()
	if perr == nil {
		for i, p := range procs {
			if i == 5 || p.rss == 0 {
				break
			}
			ev = append(ev, fmt.Sprintf("%8s  pid %-7d %s", mib(p.rss), p.pid, p.display()))
		}
	}
	var out []Finding
	status, summary := StatusOK, fmt.Sprintf("%s available of %s (%.0f%%)", mib(mi.available), mib(mi.total), availPct)
	switch {
	case availPct < memFailPercent:
		status = StatusFail
	case availPct < memWarnPercent, mi.swapTotal > 0 && pct(swapUsed, mi.swapTotal) > swapWarnPercent && availPct < 2*memWarnPercent:
		status = StatusWarn
	}
	if mi.swapTotal > 0 {
		summary += fmt.Sprintf(", swap %s of %s used", mib(swapUsed), mib(mi.swapTotal))
	}
	f := newFinding(status, weightMemory, summary, ev, memoryFix)
	if status != StatusOK {
		f.Cause = string(cause.MemoryPressure)
		f.Summary = "memory is short: " + summary
	}
	out = append(out, f)
	if perr == nil {
		out = append(out, e.fpmMemory(procs, mi)...)
	}
	return out
}

// cgroupMemory returns the cgroup v2 memory limit and use of the root
// cgroup as this process sees it (a container's), when a limit is set.
func (e *env) cgroupMemory() (limit, current int64, ok bool) {
	b, err := e.sys.read("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0, 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, 0, false
	}
	limit, err = strconv.ParseInt(s, 10, 64)
	if err != nil || limit <= 0 {
		return 0, 0, false
	}
	c, err := e.sys.read("/sys/fs/cgroup/memory.current")
	if err != nil {
		return 0, 0, false
	}
	current, err = strconv.ParseInt(strings.TrimSpace(string(c)), 10, 64)
	return limit, current, err == nil
}

// fpmMemory sets each PHP-FPM pool's memory at pm.max_children against
// what is available.
func (e *env) fpmMemory(procs []proc, mi meminfo) []Finding {
	pools := map[string]*fpmPool{}
	for _, p := range procs {
		if !strings.HasPrefix(p.name, "php-fpm") && !strings.HasPrefix(p.cmd, "php-fpm") {
			continue
		}
		_, name, ok := strings.Cut(p.cmd, "pool ")
		if !ok {
			continue // the master
		}
		name = strings.TrimSpace(name)
		fp := pools[name]
		if fp == nil {
			fp = &fpmPool{name: name}
			pools[name] = fp
		}
		fp.workers++
		fp.rss += p.rss
	}
	if len(pools) == 0 {
		return nil
	}
	for name, mc := range e.fpmMaxChildren() {
		if fp := pools[name]; fp != nil {
			fp.maxChildren, fp.confFile = mc.n, mc.file
		}
	}
	names := make([]string, 0, len(pools))
	for n := range pools {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Finding
	for _, n := range names {
		fp := pools[n]
		per := fp.rss / int64(fp.workers)
		ev := []string{fmt.Sprintf("pool %s: %d workers using %s, %s each on average", fp.name, fp.workers, mib(fp.rss), mib(per))}
		if fp.maxChildren == 0 {
			out = append(out, ok(fmt.Sprintf("PHP-FPM pool %s: %d workers, %s each (pm.max_children not found in /etc/php/*/fpm/pool.d)", fp.name, fp.workers, mib(per)), ev...))
			continue
		}
		need := per * int64(fp.maxChildren)
		room := mi.available + fp.rss
		ev = append(ev, fmt.Sprintf("pm.max_children = %d (%s): %s at full size, against %s available plus the %s its workers hold now", fp.maxChildren, fp.confFile, mib(need), mib(mi.available), mib(fp.rss)))
		f := Finding{Check: "memory", Target: "php-fpm pool " + fp.name, Evidence: ev}
		if need > room && per > 0 {
			fit := max(1, room/per)
			f.Status, f.weight, f.Cause = StatusWarn, weightMemory, string(cause.FPMWorkerCrashed)
			f.Summary = fmt.Sprintf("PHP-FPM pool %s does not fit in memory at pm.max_children = %d: %d × %s = %s, only %s free for it", fp.name, fp.maxChildren, fp.maxChildren, mib(per), mib(need), mib(room))
			f.Fix = fmt.Sprintf("Lower pm.max_children in %s to %d or less (what fits: available memory ÷ memory per worker), or add memory: at full load the kernel's OOM killer will kill workers (fpm_worker_crashed).", fp.confFile, fit)
		} else {
			f.Status, f.weight = StatusOK, weightInfo
			f.Summary = fmt.Sprintf("PHP-FPM pool %s fits in memory: %d × %s = %s at pm.max_children", fp.name, fp.maxChildren, mib(per), mib(need))
		}
		out = append(out, f)
	}
	return out
}

type maxChildren struct {
	n    int
	file string
}

// fpmMaxChildren reads pm.max_children of every pool configured under
// /etc/php/*/fpm (pool.d/*.conf and php-fpm.conf).
func (e *env) fpmMaxChildren() map[string]maxChildren {
	out := map[string]maxChildren{}
	files := append(e.sys.glob("/etc/php/*/fpm/pool.d/*.conf"), e.sys.glob("/etc/php/*/fpm/php-fpm.conf")...)
	for _, file := range files {
		b, err := e.sys.read(file)
		if err != nil {
			continue
		}
		section := ""
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == ';' || line[0] == '#' {
				continue
			}
			if line[0] == '[' && strings.HasSuffix(line, "]") {
				section = line[1 : len(line)-1]
				continue
			}
			k, v, found := strings.Cut(line, "=")
			if !found || strings.TrimSpace(k) != "pm.max_children" || section == "" || section == "global" {
				continue
			}
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
				out[section] = maxChildren{n: n, file: file}
			}
		}
	}
	return out
}

// DiskUsage is a file system's size and what is free, from statfs.
type DiskUsage struct {
	// ID identifies the file system (its fsid), so that paths on the same
	// one are checked once.
	ID string
	// Total and Avail are bytes: the size, and what an unprivileged user
	// may still write.
	Total, Avail int64
	// Files and FilesFree count inodes; Files is 0 when the file system
	// has no fixed number (btrfs).
	Files, FilesFree int64
}

// diskPaths are the directories whose file systems are checked by default:
// where logs, caches, databases, sessions and sockets live.
var diskPaths = []string{"/", "/var/log", "/var/lib/mysql", "/var/lib/php/sessions", "/var/cache", "/var/www", "/tmp", "/run", "/home"}

// disks is check 3a: space and inodes where logs, caches and sockets live.
func (e *env) disks(ctx context.Context) []Finding {
	paths := append([]string(nil), diskPaths...)
	for _, l := range e.opts.Logs {
		paths = append(paths, filepath.Dir(l))
	}
	for _, a := range e.opts.FPM {
		if strings.HasPrefix(fpmAddress(a), "/") {
			paths = append(paths, filepath.Dir(fpmAddress(a)))
		}
	}
	paths = append(paths, e.opts.Disks...)
	type fsys struct {
		paths []string
		u     DiskUsage
	}
	var order []string
	byID := map[string]*fsys{}
	var errs []string
	for _, p := range paths {
		if ctx.Err() != nil {
			break
		}
		host := p
		if !filepath.IsAbs(p) {
			if abs, err := filepath.Abs(p); err == nil {
				host = abs
			}
		}
		if !e.sys.exists(host) {
			continue
		}
		u, err := e.opts.Statfs(e.sys.path(host))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", host, err))
			continue
		}
		f := byID[u.ID]
		if f == nil {
			f = &fsys{u: u}
			byID[u.ID] = f
			order = append(order, u.ID)
		}
		if !contains(f.paths, host) {
			f.paths = append(f.paths, host)
		}
	}
	var out []Finding
	for _, id := range order {
		f := byID[id]
		u := f.u
		where := strings.Join(f.paths, ", ")
		spacePct := pct(u.Avail, u.Total)
		ev := []string{fmt.Sprintf("%s free of %s (%.1f%%)", mib(u.Avail), mib(u.Total), spacePct)}
		inodePct := 100.0
		if u.Files > 0 {
			inodePct = pct(u.FilesFree, u.Files)
			ev = append(ev, fmt.Sprintf("%d inodes free of %d (%.1f%%)", u.FilesFree, u.Files, inodePct))
		}
		fd := Finding{Check: "disk", Target: where, Evidence: ev}
		low := min(spacePct, inodePct)
		what := "space"
		if inodePct < spacePct {
			what = "inodes"
		}
		switch {
		case u.Total == 0:
			continue // a pseudo file system
		case low < diskFailPercent:
			fd.Status = StatusFail
		case low < diskWarnPercent:
			fd.Status = StatusWarn
		default:
			fd.Status = StatusOK
		}
		if fd.Status == StatusOK {
			fd.Summary = fmt.Sprintf("%.0f%% free (%s), %.0f%% of inodes", spacePct, mib(u.Avail), inodePct)
			fd.weight = weightInfo
		} else {
			fd.Cause, fd.weight = KindDisk, weightDisk
			fd.Summary = fmt.Sprintf("file system short of %s: %.1f%% free", what, low)
			if what == "space" {
				fd.Fix = "Free space: rotate and delete old logs (journalctl --vacuum-size=200M; the .gz files under /var/log), clear caches and old backups; find what grew with `du -xh " + f.paths[0] + " | sort -h | tail`. Full disks make PHP sessions, uploads, MySQL and logs fail."
			} else {
				fd.Fix = "Free inodes: delete many small files (PHP sessions under /var/lib/php/sessions, cache files); find the directory with `du --inodes -x " + f.paths[0] + " | sort -n | tail`."
			}
		}
		out = append(out, fd)
	}
	if len(out) == 0 {
		ev := errs
		return []Finding{skip("no file system could be read", ev...)}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fdWatch are the processes whose descriptors are counted against their
// own limit.
var fdWatch = []string{"php-fpm", "nginx", "apache2", "httpd", "mysqld", "mariadbd", "redis-server", "memcached", "haproxy", "caddy", "traefik", "gatewise"}

// fds is check 3b: file descriptors in use against the system's and each
// server process's limit.
func (e *env) fds(ctx context.Context) []Finding {
	var out []Finding
	if b, err := e.sys.read("/proc/sys/fs/file-nr"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 3 {
			used, _ := strconv.ParseInt(f[0], 10, 64)
			limit, _ := strconv.ParseInt(f[2], 10, 64)
			p := pct(used, limit)
			fd := Finding{Target: "system", Evidence: []string{fmt.Sprintf("/proc/sys/fs/file-nr: %d allocated of fs.file-max %d (%.1f%%)", used, limit, p)}}
			fd.Status, fd.Summary, fd.weight = StatusOK, fmt.Sprintf("%d of %d file descriptors in use", used, limit), weightInfo
			if p >= fdWarnPercent {
				fd.Status, fd.Cause, fd.weight = StatusWarn, KindFDs, weightFDs
				if p >= fdFailPercent {
					fd.Status = StatusFail
				}
				fd.Summary = fmt.Sprintf("the system is near its file descriptor limit: %.0f%% of fs.file-max", p)
				fd.Fix = "Raise fs.file-max (sysctl -w fs.file-max=N, and in /etc/sysctl.d/), and find the process holding descriptors (ls /proc/*/fd | wc -l per process)."
			}
			out = append(out, fd)
		}
	}
	procs, err := e.sys.procs()
	if err == nil {
		type agg struct {
			pid, n int
			limit  int64
			name   string
		}
		worstBy := map[string]agg{}
		denied := 0
		for _, p := range procs {
			if ctx.Err() != nil {
				break
			}
			watched := ""
			for _, w := range fdWatch {
				if strings.HasPrefix(p.name, w) {
					watched = w
					break
				}
			}
			if watched == "" {
				continue
			}
			ents, err := os.ReadDir(e.sys.path(fmt.Sprintf("/proc/%d/fd", p.pid)))
			if err != nil {
				if isPermission(err) {
					denied++
				}
				continue
			}
			limit := e.openFilesLimit(p.pid)
			if limit <= 0 {
				continue
			}
			a := agg{pid: p.pid, n: len(ents), limit: limit, name: p.name}
			if cur, ok := worstBy[watched]; !ok || pct(int64(a.n), a.limit) > pct(int64(cur.n), cur.limit) {
				worstBy[watched] = a
			}
		}
		names := make([]string, 0, len(worstBy))
		for n := range worstBy {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			a := worstBy[n]
			p := pct(int64(a.n), a.limit)
			fd := Finding{Target: fmt.Sprintf("%s (pid %d)", a.name, a.pid), Evidence: []string{fmt.Sprintf("%d open of a limit of %d (Max open files in /proc/%d/limits)", a.n, a.limit, a.pid)}}
			fd.Status, fd.Summary, fd.weight = StatusOK, fmt.Sprintf("%s: %d of %d file descriptors", a.name, a.n, a.limit), weightInfo
			if p >= fdWarnPercent {
				fd.Status, fd.Cause, fd.weight = StatusWarn, KindFDs, weightFDs
				if p >= fdFailPercent {
					fd.Status = StatusFail
				}
				fd.Summary = fmt.Sprintf("%s is near its open files limit: %d of %d", a.name, a.n, a.limit)
				fd.Fix = "Raise the service's limit (LimitNOFILE= in a systemd drop-in, `systemctl edit SERVICE`; worker_rlimit_nofile for nginx; rlimit_files for PHP-FPM) and look for connections or files it leaks. Out of descriptors it refuses connections (EMFILE, \"Too many open files\")."
			}
			out = append(out, fd)
		}
		if denied > 0 && len(names) == 0 {
			out = append(out, skip(fmt.Sprintf("cannot read the descriptors of %d server processes (run doctor as root to count them)", denied)))
		}
	}
	if len(out) == 0 {
		return []Finding{skip("cannot read /proc/sys/fs/file-nr nor /proc")}
	}
	return out
}

// openFilesLimit reads the soft "Max open files" of a process.
func (e *env) openFilesLimit(pid int) int64 {
	b, err := e.sys.read(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "Max open files") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
		if len(f) == 0 {
			return 0
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0
		}
		return n
	}
	return 0
}

// load is check 3c: the load average against the cores.
func (e *env) load(ctx context.Context) []Finding {
	b, err := e.sys.read("/proc/loadavg")
	if err != nil {
		return []Finding{skip("cannot read /proc/loadavg: " + err.Error())}
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return []Finding{skip("cannot understand /proc/loadavg: " + strings.TrimSpace(string(b)))}
	}
	var l [3]float64
	for i := range l {
		if l[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return []Finding{skip("cannot understand /proc/loadavg: " + strings.TrimSpace(string(b)))}
		}
	}
	cores := e.sys.cores()
	if cores == 0 {
		return []Finding{skip(fmt.Sprintf("load %.2f %.2f %.2f, but the number of cores is unknown", l[0], l[1], l[2]))}
	}
	ev := []string{fmt.Sprintf("load average %.2f %.2f %.2f (1, 5, 15 minutes) on %d cores", l[0], l[1], l[2], cores)}
	if len(f) > 3 {
		ev = append(ev, "running/total tasks "+f[3])
	}
	per := l[1] / float64(cores)
	fd := Finding{Evidence: ev, Status: StatusOK, weight: weightInfo, Summary: fmt.Sprintf("load %.2f on %d cores", l[1], cores)}
	if per > loadWarnFactor {
		fd.Status, fd.Cause, fd.weight = StatusWarn, KindLoad, weightLoad
		if per > loadFailFactor {
			fd.Status = StatusFail
		}
		fd.Summary = fmt.Sprintf("the host is overloaded: load %.2f over 5 minutes on %d cores (%.1f per core)", l[1], cores, per)
		fd.Fix = "Find what uses the CPU or waits on the disk (`top`, `iotop`, the slow requests in PHP-FPM's slowlog); a flood of requests needs rate limits (gatewise's rate_limit), a slow disk or swap shows as load too."
	}
	return []Finding{fd}
}
