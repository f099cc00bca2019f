package limit

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

const sampleStatus = `Name:	gatewise
Umask:	0022
State:	S (sleeping)
Tgid:	4242
Pid:	4242
VmPeak:	 1262736 kB
VmSize:	 1262736 kB
VmLck:	       0 kB
VmHWM:	   40312 kB
VmRSS:	   38912 kB
RssAnon:	   20480 kB
RssFile:	   18432 kB
Threads:	12
`

const sampleMeminfo = `MemTotal:        4026532 kB
MemFree:          212344 kB
MemAvailable:     805306 kB
Buffers:           53212 kB
Cached:           912344 kB
SwapTotal:             0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
`

func TestParseVmRSS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		in      string
		want    int64
		wantErr bool
	}{
		{desc: "a real status file", in: sampleStatus, want: 38912 << 10},
		{desc: "VmRSS first", in: "VmRSS:\t1 kB\n", want: 1024},
		{desc: "no trailing newline", in: "Name:\tx\nVmRSS:\t   12 kB", want: 12 << 10},
		{desc: "kernel thread: no VmRSS", in: "Name:\tkthreadd\nState:\tS\n", wantErr: true},
		{desc: "no value", in: "VmRSS:\n", wantErr: true},
		{desc: "not a number", in: "VmRSS:\tlots kB\n", wantErr: true},
		{desc: "unknown unit", in: "VmRSS:\t12 MB\n", wantErr: true},
		{desc: "VmRSSx is not VmRSS", in: "VmRSSx:\t12 kB\n", wantErr: true},
		{desc: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, err := parseVmRSS([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseVmRSS: %d, %v; want error %v", got, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("parseVmRSS = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseMeminfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc             string
		in               string
		wantAvail, wantT int64
		wantErr          bool
	}{
		{desc: "a real meminfo", in: sampleMeminfo, wantAvail: 805306 << 10, wantT: 4026532 << 10},
		{desc: "kernel before 3.14: no MemAvailable", in: "MemTotal: 100 kB\nMemFree: 50 kB\n", wantErr: true},
		{desc: "no MemTotal", in: "MemAvailable: 100 kB\n", wantErr: true},
		{desc: "garbage", in: "MemTotal: x kB\nMemAvailable: 1 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			avail, total, err := parseMeminfo([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseMeminfo: %d, %d, %v; want error %v", avail, total, err, tt.wantErr)
			}
			if err == nil && (avail != tt.wantAvail || total != tt.wantT) {
				t.Errorf("parseMeminfo = %d of %d, want %d of %d", avail, total, tt.wantAvail, tt.wantT)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc           string
		in             string
		wantV2, wantV1 string
	}{
		{desc: "cgroup v2", in: "0::/system.slice/gatewise.service\n", wantV2: "/system.slice/gatewise.service"},
		{desc: "cgroup v2 in a container with its own namespace", in: "0::/\n", wantV2: "/"},
		{
			desc:   "hybrid: v1 controllers and the v2 tree",
			in:     "12:memory:/user.slice/app\n11:cpu,cpuacct:/user.slice\n1:name=systemd:/user.slice/app\n0::/user.slice/app\n",
			wantV2: "/user.slice/app", wantV1: "/user.slice/app",
		},
		{desc: "v1 only, memory among others", in: "4:cpu,memory:/docker/abc\n2:pids:/docker/abc\n", wantV1: "/docker/abc"},
		{desc: "path with a colon", in: "0::/a:b\n", wantV2: "/a:b"},
		{desc: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			v2, v1 := parseProcCgroup([]byte(tt.in))
			if v2 != tt.wantV2 || v1 != tt.wantV1 {
				t.Errorf("parseProcCgroup = %q, %q; want %q, %q", v2, v1, tt.wantV2, tt.wantV1)
			}
		})
	}
}

func TestParseCgroupLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		in      string
		want    int64
		wantOK  bool
		wantErr bool
	}{
		{desc: "v2 limit", in: "1073741824\n", want: 1 << 30, wantOK: true},
		{desc: "v2 no limit", in: "max\n"},
		{desc: "v1 no limit", in: "9223372036854771712\n"},
		{desc: "v1 limit", in: "536870912", want: 512 << 20, wantOK: true},
		{desc: "zero", in: "0\n"},
		{desc: "garbage", in: "lots\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, ok, err := parseCgroupLimit([]byte(tt.in))
			if (err != nil) != tt.wantErr || ok != tt.wantOK || got != tt.want {
				t.Errorf("parseCgroupLimit(%q) = %d, %v, %v; want %d, %v, error %v", tt.in, got, ok, err, tt.want, tt.wantOK, tt.wantErr)
			}
		})
	}
}

// writeTree writes files (path: content) under a new temporary directory
// and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestProcSourceSample(t *testing.T) {
	t.Parallel()
	proc := map[string]string{"proc/self/status": sampleStatus, "proc/meminfo": sampleMeminfo}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range proc {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		desc          string
		files         map[string]string
		wantCgroupMax int64
		wantRSS       int64
		wantErr       bool
	}{
		{desc: "no cgroup file", files: proc, wantRSS: 38912 << 10},
		{
			desc: "v2: the lowest limit on the path", wantRSS: 38912 << 10, wantCgroupMax: 512 << 20,
			files: with(map[string]string{
				"proc/self/cgroup":                              "0::/system.slice/gw.service\n",
				"cg/system.slice/gw.service/memory.max":         "max\n",
				"cg/system.slice/memory.max":                    "536870912\n",
				"cg/memory.max":                                 "1073741824\n",
				"cg/unified/system.slice/gw.service/memory.max": "1\n", // ignored: the v2 root came first
			}),
		},
		{
			desc: "v2: no limit anywhere", wantRSS: 38912 << 10,
			files: with(map[string]string{
				"proc/self/cgroup":                      "0::/system.slice/gw.service\n",
				"cg/system.slice/gw.service/memory.max": "max\n",
			}),
		},
		{
			desc: "v2 in a container that sees its cgroup as the root", wantRSS: 38912 << 10, wantCgroupMax: 256 << 20,
			files: with(map[string]string{
				"proc/self/cgroup": "0::/kubepods/pod1/abc\n",
				"cg/memory.max":    "268435456\n",
			}),
		},
		{
			desc: "hybrid host: v2 tree under unified", wantRSS: 38912 << 10, wantCgroupMax: 300 << 20,
			files: with(map[string]string{
				"proc/self/cgroup":                    "4:memory:/app\n0::/app\n",
				"cg/unified/app/memory.max":           "314572800\n",
				"cg/memory/app/memory.limit_in_bytes": "1\n", // v2 found first
			}),
		},
		{
			desc: "v1 memory controller", wantRSS: 38912 << 10, wantCgroupMax: 128 << 20,
			files: with(map[string]string{
				"proc/self/cgroup":                           "4:memory:/docker/abc\n0::/\n",
				"cg/memory/docker/abc/memory.limit_in_bytes": "134217728\n",
				"cg/memory/memory.limit_in_bytes":            "9223372036854771712\n",
			}),
		},
		{
			desc: "no status file: RSS unknown", wantRSS: -1, wantErr: true,
			files: map[string]string{"proc/meminfo": sampleMeminfo},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			root := writeTree(t, tt.files)
			s, err := procSource{proc: filepath.Join(root, "proc"), cgroup: filepath.Join(root, "cg")}.sample()
			if (err != nil) != tt.wantErr {
				t.Errorf("sample error %v, want error %v", err, tt.wantErr)
			}
			if s.rss != tt.wantRSS || s.cgroupMax != tt.wantCgroupMax {
				t.Errorf("sample = RSS %d, cgroup limit %d; want %d, %d", s.rss, s.cgroupMax, tt.wantRSS, tt.wantCgroupMax)
			}
			if s.available != 805306<<10 || s.total != 4026532<<10 {
				t.Errorf("sample = host %d of %d, want %d of %d", s.available, s.total, 805306<<10, 4026532<<10)
			}
		})
	}
}

func TestEvaluateMemory(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	normal := memSample{rss: 100 * mib, available: 2000 * mib, total: 4000 * mib}
	tests := []struct {
		desc       string
		s          memSample
		t          memThresholds
		want       bool
		wantReason string
	}{
		{desc: "nothing set", s: normal},
		{desc: "under the limit", s: normal, t: memThresholds{memoryLimit: 200 * mib, minHostPct: 5}},
		{desc: "at the limit", s: normal, t: memThresholds{memoryLimit: 100 * mib}},
		{
			desc: "over the limit", s: memSample{rss: 950 * mib, available: 2000 * mib, total: 4000 * mib}, t: memThresholds{memoryLimit: 900 * mib},
			want: true, wantReason: "process RSS 950MiB above limit 900MiB",
		},
		{
			desc: "automatic: 90% of the cgroup's limit", s: memSample{rss: 950 * mib, cgroupMax: 1000 * mib, available: -1, total: -1},
			want: true, wantReason: "process RSS 950MiB above limit 900MiB (90% of the cgroup's memory limit 1000MiB)",
		},
		{desc: "automatic, under 90%", s: memSample{rss: 850 * mib, cgroupMax: 1000 * mib}},
		{desc: "explicit limit wins over the cgroup's", s: memSample{rss: 950 * mib, cgroupMax: 1000 * mib}, t: memThresholds{memoryLimit: 2000 * mib}},
		{desc: "RSS unknown", s: memSample{rss: -1, available: -1, total: -1}, t: memThresholds{memoryLimit: 1, minHostPct: 5}},
		{
			desc: "host short of memory", s: memSample{rss: 100 * mib, available: 120 * mib, total: 4000 * mib}, t: memThresholds{minHostPct: 5},
			want: true, wantReason: "host available memory 120MiB is 3% of 4000MiB, below 5%",
		},
		{desc: "host check off", s: memSample{rss: 100 * mib, available: 120 * mib, total: 4000 * mib}},
		{desc: "host exactly at the threshold", s: memSample{rss: 1, available: 200 * mib, total: 4000 * mib}, t: memThresholds{minHostPct: 5}},
		{desc: "host figures unknown", s: memSample{rss: 1, available: -1, total: -1}, t: memThresholds{minHostPct: 50}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, reason := evaluateMemory(tt.s, tt.t)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("evaluateMemory = %v, %q; want %v, %q", got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

// logLines is a JSON log sink safe for the guard's goroutine.
type logLines struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// messages returns the msg of each line.
func (l *logLines) messages(t *testing.T) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.Lines(l.b.String()) {
		var m struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m.Msg)
	}
	return out
}

// waitPressure polls g until Pressure says want, for at most 2s.
func waitPressure(t *testing.T, g *MemoryGuard, want bool) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got, reason := g.Pressure()
		if got == want {
			return reason
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pressure = %v (%q) after 2s, want %v", got, reason, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMemoryGuardLogsChangesOnce feeds the guard figures that cross into
// pressure, stay, and leave, and checks it logs each crossing once.
func TestMemoryGuardLogsChangesOnce(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	var mu sync.Mutex
	cur := memSample{rss: 10 * mib, available: -1, total: -1}
	var readErr error
	set := func(s memSample, err error) {
		mu.Lock()
		defer mu.Unlock()
		cur, readErr = s, err
	}
	sample := func() (memSample, error) {
		mu.Lock()
		defer mu.Unlock()
		return cur, readErr
	}
	logs := &logLines{}
	g := startMemoryGuard(memThresholds{memoryLimit: 100 * mib}, 10*time.Millisecond, slog.New(slog.NewJSONHandler(logs, nil)), sample, nil)
	defer g.Stop()

	if got, _ := g.Pressure(); got {
		t.Fatal("pressure at 10MiB of 100MiB")
	}
	set(memSample{rss: 150 * mib, available: -1, total: -1}, nil)
	if reason := waitPressure(t, g, true); reason != "process RSS 150MiB above limit 100MiB" {
		t.Errorf("reason = %q", reason)
	}
	set(memSample{rss: 160 * mib, available: -1, total: -1}, nil)
	time.Sleep(50 * time.Millisecond) // several polls under pressure
	if _, reason := g.Pressure(); reason != "process RSS 160MiB above limit 100MiB" {
		t.Errorf("reason = %q, want the new figures", reason)
	}
	set(memSample{rss: 50 * mib, available: -1, total: -1}, nil)
	waitPressure(t, g, false)
	set(memSample{rss: -1, available: -1, total: -1}, errors.New("no /proc"))
	time.Sleep(50 * time.Millisecond)
	set(memSample{rss: 50 * mib, available: -1, total: -1}, nil)
	time.Sleep(50 * time.Millisecond)
	g.Stop()
	g.Stop() // twice is fine

	want := []string{
		"memory pressure: not admitting new requests (503 memory_pressure)",
		"memory pressure over: admitting new requests again",
		"memory guard: cannot read memory figures; the figures it cannot read never count as pressure",
		"memory guard: memory figures readable again",
	}
	got := logs.messages(t)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMemoryGuardProcessLimit(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	for _, c := range []struct {
		t    memThresholds
		s    memSample
		want int64
	}{
		{memThresholds{memoryLimit: 300 * mib}, memSample{rss: mib, cgroupMax: 1000 * mib}, 300 * mib},
		{memThresholds{}, memSample{rss: mib, cgroupMax: 1000 * mib}, 900 * mib},
		{memThresholds{}, memSample{rss: mib}, 0},
	} {
		sample := func() (memSample, error) { return c.s, nil }
		g := startMemoryGuard(c.t, time.Hour, nil, sample, nil)
		if got := g.ProcessLimit(); got != c.want {
			t.Errorf("ProcessLimit with %+v and %+v = %d, want %d (read before start returns)", c.t, c.s, got, c.want)
		}
		g.Stop()
	}
	if got := startMemoryGuard(memThresholds{memoryLimit: mib}, time.Hour, nil, nil, nil).ProcessLimit(); got != 0 {
		t.Errorf("ProcessLimit without figures = %d, want 0", got)
	}
}

// TestMemoryGuardReal runs the guard on this process's real figures.
func TestMemoryGuardReal(t *testing.T) {
	t.Parallel()
	pct := func(n int) *int { return &n }
	tests := []struct {
		desc   string
		limits config.Limits
		want   bool
	}{
		{desc: "a limit below the current RSS", limits: config.Limits{MemoryLimit: 1 << 20}, want: true},
		{desc: "a huge limit", limits: config.Limits{MemoryLimit: 1 << 50, MinHostAvailablePercent: pct(0)}},
		{desc: "the host never has 100% available", limits: config.Limits{MemoryLimit: 1 << 50, MinHostAvailablePercent: pct(100)}, want: true},
		{desc: "the host has more than 1% available", limits: config.Limits{MemoryLimit: 1 << 50, MinHostAvailablePercent: pct(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if runtime.GOOS != "linux" {
				tt.want = false // no figures: never pressure
			}
			logs := &logLines{}
			g := StartMemoryGuard(tt.limits, 10*time.Millisecond, slog.New(slog.NewJSONHandler(logs, nil)))
			defer g.Stop()
			if tt.want {
				reason := waitPressure(t, g, true)
				if reason == "" {
					t.Error("pressure without a reason")
				}
				t.Logf("reason: %s", reason)
				g.Stop()
				if got := logs.messages(t); len(got) != 1 {
					t.Errorf("log messages %q, want one", got)
				}
				return
			}
			time.Sleep(50 * time.Millisecond) // a few polls
			if got, reason := g.Pressure(); got {
				t.Errorf("Pressure = true (%s), want false", reason)
			}
		})
	}
}

// TestMemoryWatchFreesMemory checks that under pressure the guard has the
// runtime return its free memory, at most once per freeMemoryEvery, and
// decides on the figures read after it.
func TestMemoryWatchFreesMemory(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	tests := []struct {
		desc string
		// rss is the resident memory before a free; freed is what a free
		// brings it to.
		rss, freed int64
		// polls are the times of the polls, from the start.
		polls     []time.Duration
		wantFrees int
		want      bool
	}{
		{desc: "no pressure: no free", rss: 50 * mib, freed: 50 * mib, polls: []time.Duration{0, time.Second}, wantFrees: 0},
		{desc: "a free ends the pressure", rss: 150 * mib, freed: 80 * mib, polls: []time.Duration{0}, wantFrees: 1},
		{
			desc: "a free that does not help is not repeated within 10s", rss: 150 * mib, freed: 140 * mib,
			polls: []time.Duration{0, time.Second, 5 * time.Second, 9 * time.Second}, wantFrees: 1, want: true,
		},
		{
			desc: "and is tried again after 10s", rss: 150 * mib, freed: 140 * mib,
			polls: []time.Duration{0, 5 * time.Second, 10 * time.Second, 11 * time.Second, 20 * time.Second}, wantFrees: 3, want: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			now := start
			frees := 0
			freed := false
			g := &MemoryGuard{}
			g.state.Store(&memState{})
			logs := &logLines{}
			w := &memWatch{
				g: g, t: memThresholds{memoryLimit: 100 * mib}, log: slog.New(slog.NewJSONHandler(logs, nil)),
				sample: func() (memSample, error) {
					rss := tt.rss
					if freed {
						rss = tt.freed
					}
					freed = false // the load raises it again by the next poll
					return memSample{rss: rss, available: -1, total: -1}, nil
				},
				freeMemory: func() { frees++; freed = true },
				now:        func() time.Time { return now },
			}
			for _, at := range tt.polls {
				now = start.Add(at)
				w.poll()
			}
			if frees != tt.wantFrees {
				t.Errorf("memory freed %d times, want %d", frees, tt.wantFrees)
			}
			if got, reason := g.Pressure(); got != tt.want {
				t.Errorf("Pressure = %v (%q), want %v", got, reason, tt.want)
			}
			wantLogs := 0
			if tt.want {
				wantLogs = 1
			}
			if got := logs.messages(t); len(got) != wantLogs {
				t.Errorf("log messages %q, want %d", got, wantLogs)
			}
		})
	}
}
