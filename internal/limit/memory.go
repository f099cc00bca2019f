package limit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

// DefaultMemoryPollInterval is how often the gateway's MemoryGuard reads
// the memory figures.
const DefaultMemoryPollInterval = time.Second

// cgroupLimitShare is the share of the cgroup's memory limit the process
// may use when limits.memory_limit is 0 (automatic): 90%, leaving the rest
// for page cache and the runtime's slack, so the gateway refuses work
// before the cgroup's OOM killer ends it.
const (
	cgroupLimitNum = 9
	cgroupLimitDen = 10
)

// MemoryGuard watches the process's resident memory and the host's
// available memory, and says when the gateway should stop admitting new
// requests. Make one with StartMemoryGuard; its methods are safe for
// concurrent use.
type MemoryGuard struct {
	state    atomic.Pointer[memState]
	limit    atomic.Int64 // the process limit at the last reading
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// memState is the guard's latest verdict.
type memState struct {
	pressure bool
	reason   string
}

// memSample is one reading of the memory figures, in bytes. A figure that
// could not be read is -1.
type memSample struct {
	rss       int64 // the process's VmRSS
	available int64 // the host's MemAvailable
	total     int64 // the host's MemTotal
	cgroupMax int64 // the process's cgroup memory limit; 0: none
}

// memThresholds are the configured limits.
type memThresholds struct {
	memoryLimit int64 // limits.memory_limit; 0: automatic
	minHostPct  int   // limits.min_host_available_percent; 0: off
}

// StartMemoryGuard starts reading, every interval (0 or less:
// DefaultMemoryPollInterval, 1s), the process's resident memory (VmRSS in
// /proc/self/status), the host's available and total memory (MemAvailable
// and MemTotal in /proc/meminfo), and the memory limit of the process's
// cgroup (memory.max with cgroup v2, memory.limit_in_bytes with v1; the
// lowest along its path). It reports pressure while:
//
//   - the resident memory is above l.MemoryLimit, or, when that is 0 (the
//     default), above 90% of the cgroup's limit when there is one (no
//     process limit otherwise); or
//   - the host's available memory is below l.MinHostAvailablePercent of
//     its total (nil or 0: off; the config's default is 5).
//
// Under pressure it has the Go runtime return its free memory to the
// system (a forced garbage collection, at most once every 10s) and reads
// the figures again before it decides: the runtime otherwise keeps freed
// memory for minutes, and the gateway would refuse requests meanwhile.
//
// The first reading is made before it returns. Crossing into pressure and
// leaving it are logged once each, with the figures, on logger (nil: no
// log), never per request; so is a failure to read the figures, which
// counts as no pressure. On systems other than Linux it reads nothing and
// never reports pressure. Stop it with Stop.
func StartMemoryGuard(l config.Limits, interval time.Duration, logger *slog.Logger) *MemoryGuard {
	var sample func() (memSample, error)
	if memoryFiguresAvailable {
		sample = procSource{proc: "/proc", cgroup: "/sys/fs/cgroup"}.sample
	}
	return startMemoryGuard(thresholdsOf(l), interval, logger, sample, debug.FreeOSMemory)
}

// thresholdsOf takes the guard's thresholds from the config.
func thresholdsOf(l config.Limits) memThresholds {
	t := memThresholds{memoryLimit: int64(l.MemoryLimit)}
	if l.MinHostAvailablePercent != nil {
		t.minHostPct = *l.MinHostAvailablePercent
	}
	return t
}

// startMemoryGuard is StartMemoryGuard with the figures read by sample
// (nil: never any pressure) and free memory returned to the system by
// free (nil: never).
func startMemoryGuard(t memThresholds, interval time.Duration, logger *slog.Logger, sample func() (memSample, error), free func()) *MemoryGuard {
	if interval <= 0 {
		interval = DefaultMemoryPollInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &MemoryGuard{stop: make(chan struct{}), done: make(chan struct{})}
	g.state.Store(&memState{})
	if sample == nil {
		close(g.done)
		return g
	}
	w := &memWatch{g: g, t: t, log: logger, sample: sample, freeMemory: free, now: time.Now}
	w.poll()
	go func() {
		defer close(g.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-g.stop:
				return
			case <-tick.C:
				w.poll()
			}
		}
	}()
	return g
}

// Pressure reports whether the gateway is short of memory and, when it
// is, why, such as "process RSS 950MiB above limit 900MiB" (for the
// owner's log only). It is an atomic load: cheap enough for every request.
func (g *MemoryGuard) Pressure() (bool, string) {
	s := g.state.Load()
	return s.pressure, s.reason
}

// ProcessLimit returns the resident memory the process may use, as of
// the last reading: limits.memory_limit, else 90% of the cgroup's memory
// limit, else 0 (no limit, or not read on this system).
func (g *MemoryGuard) ProcessLimit() int64 { return g.limit.Load() }

// Stop stops the polling and waits for it to end. Pressure then keeps
// its last answer. Stop may be called more than once.
func (g *MemoryGuard) Stop() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
}

// memWatch is the polling goroutine's state.
type memWatch struct {
	g       *MemoryGuard
	t       memThresholds
	log     *slog.Logger
	sample  func() (memSample, error)
	readErr bool // the last reading failed (logged once)
	// freeMemory returns the process's free memory to the system
	// (debug.FreeOSMemory); lastFree is when it last ran.
	freeMemory func()
	now        func() time.Time
	lastFree   time.Time
}

// freeMemoryEvery is how often, at most, the guard makes the Go runtime
// return free memory to the system while under pressure. The runtime
// otherwise keeps freed memory for minutes, so the resident memory could
// stay above the limit long after the load that raised it, and the
// gateway refuse every request meanwhile. A forced collection costs a few
// milliseconds of CPU per 100MiB of heap: cheap, once in that while.
const freeMemoryEvery = 10 * time.Second

// poll reads the figures, stores the verdict, and logs a change. Under
// pressure, it first has the runtime return its free memory (at most
// once per freeMemoryEvery) and reads the figures again.
func (w *memWatch) poll() {
	s, err := w.sample()
	if pressure, _ := evaluateMemory(s, w.t); pressure && w.freeMemory != nil {
		if now := w.now(); w.lastFree.IsZero() || now.Sub(w.lastFree) >= freeMemoryEvery {
			w.lastFree = now
			w.freeMemory()
			s, err = w.sample()
		}
	}
	switch {
	case err != nil && !w.readErr:
		w.readErr = true
		w.log.Warn("memory guard: cannot read memory figures; the figures it cannot read never count as pressure", slog.Any("error", err))
	case err == nil && w.readErr:
		w.readErr = false
		w.log.Info("memory guard: memory figures readable again")
	}
	w.g.limit.Store(processLimit(s, w.t))
	pressure, reason := evaluateMemory(s, w.t)
	prev := w.g.state.Load()
	if pressure == prev.pressure && reason == prev.reason {
		return
	}
	w.g.state.Store(&memState{pressure: pressure, reason: reason})
	if pressure == prev.pressure {
		return // still under pressure, for a new reason or new figures
	}
	attrs := []slog.Attr{
		slog.Int64("rss_bytes", s.rss),
		slog.Int64("memory_limit_bytes", processLimit(s, w.t)),
		slog.Int64("cgroup_limit_bytes", s.cgroupMax),
		slog.Int64("host_available_bytes", s.available),
		slog.Int64("host_total_bytes", s.total),
		slog.Int("min_host_available_percent", w.t.minHostPct),
	}
	if pressure {
		attrs = append(attrs, slog.String("reason", reason))
		w.log.LogAttrs(context.Background(), slog.LevelWarn, "memory pressure: not admitting new requests (503 memory_pressure)", attrs...)
		return
	}
	w.log.LogAttrs(context.Background(), slog.LevelInfo, "memory pressure over: admitting new requests again", attrs...)
}

// processLimit returns the resident memory the process may use: the
// configured limit, else 90% of the cgroup's limit, else 0 (none).
func processLimit(s memSample, t memThresholds) int64 {
	if t.memoryLimit > 0 {
		return t.memoryLimit
	}
	if s.cgroupMax > 0 {
		return s.cgroupMax / cgroupLimitDen * cgroupLimitNum
	}
	return 0
}

// evaluateMemory says whether the figures in s break the thresholds, and
// why. Figures that are unknown (-1) break nothing.
func evaluateMemory(s memSample, t memThresholds) (bool, string) {
	if limit := processLimit(s, t); limit > 0 && s.rss > limit {
		reason := fmt.Sprintf("process RSS %s above limit %s", formatBytes(s.rss), formatBytes(limit))
		if t.memoryLimit <= 0 {
			reason += fmt.Sprintf(" (90%% of the cgroup's memory limit %s)", formatBytes(s.cgroupMax))
		}
		return true, reason
	}
	if t.minHostPct > 0 && s.total > 0 && s.available >= 0 && s.available*100 < s.total*int64(t.minHostPct) {
		return true, fmt.Sprintf("host available memory %s is %d%% of %s, below %d%%",
			formatBytes(s.available), s.available*100/s.total, formatBytes(s.total), t.minHostPct)
	}
	return false, ""
}

// formatBytes writes n bytes, rounded down, in GiB from 10GiB, else in the
// largest binary unit that keeps it at least 1: "12GiB", "4000MiB",
// "512KiB", "12B".
func formatBytes(n int64) string {
	switch {
	case n >= 10<<30:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

// procSource reads the figures from procfs and cgroupfs mounted at the
// given roots ("/proc" and "/sys/fs/cgroup" on a real system).
type procSource struct {
	proc   string
	cgroup string
}

// sample reads every figure it can; the error joins the failures.
func (p procSource) sample() (memSample, error) {
	s := memSample{rss: -1, available: -1, total: -1}
	var errs []error
	if b, err := os.ReadFile(path.Join(p.proc, "self/status")); err != nil {
		errs = append(errs, err)
	} else if s.rss, err = parseVmRSS(b); err != nil {
		s.rss = -1
		errs = append(errs, fmt.Errorf("%s: %w", path.Join(p.proc, "self/status"), err))
	}
	if b, err := os.ReadFile(path.Join(p.proc, "meminfo")); err != nil {
		errs = append(errs, err)
	} else if s.available, s.total, err = parseMeminfo(b); err != nil {
		s.available, s.total = -1, -1
		errs = append(errs, fmt.Errorf("%s: %w", path.Join(p.proc, "meminfo"), err))
	}
	// No cgroup file or no cgroup limit both mean no limit: not an error.
	if b, err := os.ReadFile(path.Join(p.proc, "self/cgroup")); err == nil {
		v2, v1 := parseProcCgroup(b)
		s.cgroupMax = p.cgroupLimit(v2, v1)
	}
	return s, errors.Join(errs...)
}

// cgroupLimit returns the lowest memory limit on the way from the
// process's cgroup up to the root of the cgroup filesystem, or 0. A path
// that is not there (a container that sees its own cgroup as the root) is
// walked up until one is.
func (p procSource) cgroupLimit(v2, v1 string) int64 {
	type hierarchy struct {
		root, cgroup, file string
	}
	var hs []hierarchy
	if v2 != "" {
		hs = append(hs,
			hierarchy{p.cgroup, v2, "memory.max"},
			hierarchy{path.Join(p.cgroup, "unified"), v2, "memory.max"}) // hybrid hosts
	}
	if v1 != "" {
		hs = append(hs, hierarchy{path.Join(p.cgroup, "memory"), v1, "memory.limit_in_bytes"})
	}
	for _, h := range hs {
		var lowest int64
		found := false
		for dir := path.Clean("/" + h.cgroup); ; dir = path.Dir(dir) {
			b, err := os.ReadFile(path.Join(h.root, dir, h.file))
			if err == nil {
				found = true
				if n, ok, err := parseCgroupLimit(b); err == nil && ok && (lowest == 0 || n < lowest) {
					lowest = n
				}
			}
			if dir == "/" {
				break
			}
		}
		if found && lowest > 0 {
			return lowest
		}
	}
	return 0
}

// parseVmRSS returns the VmRSS line of a /proc/PID/status text, in bytes.
func parseVmRSS(status []byte) (int64, error) {
	n, err := kBField(status, "VmRSS:")
	if err != nil {
		return 0, fmt.Errorf("VmRSS: %w", err)
	}
	return n, nil
}

// parseMeminfo returns MemAvailable and MemTotal of a /proc/meminfo text,
// in bytes. (Kernels before 3.14 have no MemAvailable: an error.)
func parseMeminfo(meminfo []byte) (available, total int64, err error) {
	if total, err = kBField(meminfo, "MemTotal:"); err != nil {
		return 0, 0, fmt.Errorf("MemTotal: %w", err)
	}
	if available, err = kBField(meminfo, "MemAvailable:"); err != nil {
		return 0, 0, fmt.Errorf("MemAvailable: %w", err)
	}
	return available, total, nil
}

// errNoField means a text has no line with the field looked for.
var errNoField = errors.New("no such line")

// kBField finds the line starting with name in a procfs "Name:  123 kB"
// text and returns its value in bytes.
func kBField(text []byte, name string) (int64, error) {
	for line := range bytes.Lines(text) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("no value in %q", bytes.TrimSpace(line))
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad value in %q", bytes.TrimSpace(line))
		}
		mult := int64(1)
		if len(f) > 1 {
			switch string(f[1]) {
			case "kB":
				mult = 1 << 10
			default:
				return 0, fmt.Errorf("unknown unit in %q", bytes.TrimSpace(line))
			}
		}
		return n * mult, nil
	}
	return 0, errNoField
}

// parseProcCgroup returns the process's cgroup v2 path and its cgroup v1
// memory controller path from a /proc/PID/cgroup text ("" for none).
func parseProcCgroup(text []byte) (v2, v1memory string) {
	for line := range bytes.Lines(text) {
		parts := bytes.SplitN(bytes.TrimRight(line, "\r\n"), []byte(":"), 3)
		if len(parts) != 3 {
			continue
		}
		hier, controllers, p := string(parts[0]), parts[1], string(parts[2])
		if hier == "0" && len(controllers) == 0 {
			v2 = p
			continue
		}
		for c := range bytes.SplitSeq(controllers, []byte(",")) {
			if string(c) == "memory" {
				v1memory = p
			}
		}
	}
	return v2, v1memory
}

// cgroupV1Unlimited is the smallest value of a cgroup v1
// memory.limit_in_bytes that means no limit: v1 writes "no limit" as the
// largest page count times the page size, 9223372036854771712 with 4KiB
// pages.
const cgroupV1Unlimited = 1 << 62

// parseCgroupLimit reads a memory.max or memory.limit_in_bytes file: the
// limit in bytes and true, or false for "max" (no limit).
func parseCgroupLimit(b []byte) (int64, bool, error) {
	s := string(bytes.TrimSpace(b))
	if s == "max" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("cgroup memory limit %q: %w", s, err)
	}
	if n <= 0 || n >= cgroupV1Unlimited {
		return 0, false, nil
	}
	return n, true, nil
}
