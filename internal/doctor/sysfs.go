package doctor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// sysfs reads system files under a root directory ("/" on a real host, a
// fixture tree in tests).
type sysfs struct {
	root string
}

// maxSysFile bounds a system file read whole.
const maxSysFile = 4 << 20

// maxProcs bounds the processes examined.
const maxProcs = 20000

// path returns p (an absolute path on the host) under the root.
func (s sysfs) path(p string) string {
	if s.root == "" || s.root == "/" {
		return p
	}
	return filepath.Join(s.root, p)
}

// read reads a small file under the root.
func (s sysfs) read(p string) ([]byte, error) {
	f, err := os.Open(s.path(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxSysFile)); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return buf.Bytes(), nil
}

// keyValues parses "Key: value kB" lines (meminfo, status) and "key value"
// lines (vmstat, memory.events) into numbers; non-numeric values are
// skipped.
func keyValues(b []byte) map[string]int64 {
	m := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var key, rest string
		if i := strings.IndexByte(line, ':'); i >= 0 {
			key, rest = line[:i], line[i+1:]
		} else if i := strings.IndexByte(line, ' '); i >= 0 {
			key, rest = line[:i], line[i+1:]
		} else {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if len(fields) > 1 && fields[1] == "kB" {
			n *= 1024
		}
		m[strings.TrimSpace(key)] = n
	}
	return m
}

// meminfo is /proc/meminfo, in bytes.
type meminfo struct {
	total, available, swapTotal, swapFree int64
	// estimated reports that MemAvailable was missing (kernels before
	// 3.14) and available is MemFree + Buffers + Cached.
	estimated bool
}

func (s sysfs) meminfo() (meminfo, error) {
	b, err := s.read("/proc/meminfo")
	if err != nil {
		return meminfo{}, err
	}
	return parseMeminfo(b)
}

// parseMeminfo reads /proc/meminfo.
func parseMeminfo(b []byte) (meminfo, error) {
	kv := keyValues(b)
	m := meminfo{total: kv["MemTotal"], swapTotal: kv["SwapTotal"], swapFree: kv["SwapFree"]}
	if m.total <= 0 {
		return m, errors.New("/proc/meminfo has no MemTotal")
	}
	if v, ok := kv["MemAvailable"]; ok {
		m.available = v
	} else {
		m.available = kv["MemFree"] + kv["Buffers"] + kv["Cached"]
		m.estimated = true
	}
	if m.available < 0 || m.available > m.total {
		m.available = max(0, min(m.available, m.total))
	}
	if m.swapFree > m.swapTotal || m.swapFree < 0 {
		m.swapFree = m.swapTotal
	}
	return m, nil
}

// proc is one process.
type proc struct {
	pid  int
	ppid int
	name string // comm, from status's Name
	cmd  string // the command line, spaces for NULs
	rss  int64  // bytes
}

// procs lists the processes under /proc (at most maxProcs), skipping those
// that vanish or cannot be read.
func (s sysfs) procs() ([]proc, error) {
	entries, err := os.ReadDir(s.path("/proc"))
	if err != nil {
		return nil, err
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if len(out) >= maxProcs {
			break
		}
		b, err := s.read("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		p := proc{pid: pid}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := sc.Text()
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case "Name":
				p.name = v
			case "PPid":
				p.ppid, _ = strconv.Atoi(v)
			case "VmRSS":
				f := strings.Fields(v)
				if len(f) > 0 {
					n, _ := strconv.ParseInt(f[0], 10, 64)
					p.rss = n * 1024
				}
			}
		}
		if c, err := s.read("/proc/" + e.Name() + "/cmdline"); err == nil {
			p.cmd = strings.TrimSpace(strings.ReplaceAll(string(c), "\x00", " "))
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].rss != out[j].rss {
			return out[i].rss > out[j].rss
		}
		return out[i].pid < out[j].pid
	})
	return out, nil
}

// display returns the process's command line, or its name.
func (p proc) display() string {
	c := p.cmd
	if c == "" {
		c = "[" + p.name + "]"
	}
	if len(c) > 80 {
		c = c[:77] + "..."
	}
	return c
}

// cores returns the number of online CPUs: /sys/devices/system/cpu/online,
// else the processors in /proc/cpuinfo; 0 when neither says.
func (s sysfs) cores() int {
	if b, err := s.read("/sys/devices/system/cpu/online"); err == nil {
		if n := countCPUList(strings.TrimSpace(string(b))); n > 0 {
			return n
		}
	}
	if b, err := s.read("/proc/cpuinfo"); err == nil {
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if k, _, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "processor" {
				n++
			}
		}
		return n
	}
	return 0
}

// countCPUList counts the CPUs of a list such as "0-3,6,8-9"; 0 when it
// is malformed.
func countCPUList(s string) int {
	if s == "" {
		return 0
	}
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1<<16 {
				return 0
			}
		}
		n += b - a + 1
	}
	return n
}

// uptime returns the seconds since boot from /proc/uptime.
func (s sysfs) uptime() (float64, error) {
	b, err := s.read("/proc/uptime")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("/proc/uptime is empty")
	}
	return strconv.ParseFloat(f[0], 64)
}

// bootTime returns btime from /proc/stat (Unix seconds); 0 when unknown.
func (s sysfs) bootTime() int64 {
	b, err := s.read("/proc/stat")
	if err != nil {
		return 0
	}
	return keyValues(b)["btime"]
}

// exists reports whether p exists under the root.
func (s sysfs) exists(p string) bool {
	_, err := os.Stat(s.path(p))
	return err == nil
}

// glob returns the matches of pattern under the root, as host paths.
func (s sysfs) glob(pattern string) []string {
	m, _ := filepath.Glob(s.path(pattern))
	out := make([]string, 0, len(m))
	for _, p := range m {
		out = append(out, s.host(p))
	}
	sort.Strings(out)
	return out
}

// host turns a path under the root back into the host's path.
func (s sysfs) host(p string) string {
	if s.root == "" || s.root == "/" {
		return p
	}
	rel, err := filepath.Rel(s.root, p)
	if err != nil {
		return p
	}
	return "/" + filepath.ToSlash(rel)
}

// isPermission reports whether err is a permission error.
func isPermission(err error) bool { return errors.Is(err, fs.ErrPermission) }

// mib formats bytes as MiB, the unit of `free -m`.
func mib(b int64) string { return strconv.FormatInt(b>>20, 10) + " MiB" }

// pct returns 100*a/b, 0 when b is 0.
func pct(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
