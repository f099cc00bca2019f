package doctor

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixtureNow is the time the fixture trees are read at: their logs end
// shortly before it.
var fixtureNow = time.Date(2026, 11, 23, 23, 30, 0, 0, time.Local)

// fixture copies testdata/NAME to a temporary directory with every file's
// modification time set to fixtureNow (the log reader dates year-less
// syslog lines from it), and returns the copy's path.
func fixture(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, fixtureNow, fixtureNow)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// fakeDisk returns a Statfs that reports every path on one file system
// with avail of total bytes free and half its inodes.
func fakeDisk(total, avail int64) func(string) (DiskUsage, error) {
	return func(string) (DiskUsage, error) {
		return DiskUsage{ID: "fs1", Total: total, Avail: avail, Files: 1000, FilesFree: 500}, nil
	}
}

// fixtureEnv returns an env reading the fixture root at fixtureNow.
func fixtureEnv(t *testing.T, root string) *env {
	return newEnv(Options{Root: root, Now: fixtureNow, Statfs: fakeDisk(20<<30, 10<<30)})
}

// findOne returns the only finding of fs whose target contains target.
func findOne(t *testing.T, fs []Finding, target string) Finding {
	t.Helper()
	var got []Finding
	for _, f := range fs {
		if strings.Contains(f.Target, target) {
			got = append(got, f)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want one finding for %q, got %d: %+v", target, len(got), fs)
	}
	return got[0]
}

func TestMemoryPressure(t *testing.T) {
	e := fixtureEnv(t, fixture(t, "host-incident"))
	fs := e.memory(context.Background())
	if len(fs) != 2 {
		t.Fatalf("want the host's finding and pool www's, got %+v", fs)
	}
	host := fs[0]
	if host.Status != StatusFail || host.Cause != "memory_pressure" {
		t.Errorf("host memory: got %s %q, want fail memory_pressure: %+v", host.Status, host.Cause, host)
	}
	for _, want := range []string{"MemAvailable 60 MiB (3%)", "swap 921 MiB used of 1023 MiB", "pid 812", "/usr/sbin/mariadbd", "php-fpm: pool www"} {
		if !strings.Contains(strings.Join(host.Evidence, "\n"), want) {
			t.Errorf("evidence lacks %q:\n%s", want, strings.Join(host.Evidence, "\n"))
		}
	}
	pool := findOne(t, fs, "php-fpm pool www")
	if pool.Status != StatusWarn || !strings.Contains(pool.Summary, "40 × 100 MiB = 4000 MiB") {
		t.Errorf("pool www: got %s %q, want warn with 40 × 100 MiB", pool.Status, pool.Summary)
	}
	if !strings.Contains(pool.Fix, "/etc/php/8.2/fpm/pool.d/www.conf to 4 or less") {
		t.Errorf("pool www fix: %q", pool.Fix)
	}
}

func TestHealthyHost(t *testing.T) {
	e := fixtureEnv(t, fixture(t, "host-healthy"))
	ctx := context.Background()
	for name, run := range map[string]func(context.Context) []Finding{"memory": e.memory, "oom": e.oom, "fds": e.fds, "load": e.load, "disk": e.disks} {
		for _, f := range run(ctx) {
			if f.Status != StatusOK {
				t.Errorf("%s: got %s %q, want ok", name, f.Status, f.Summary)
			}
		}
	}
	if got := e.sys.cores(); got != 4 {
		t.Errorf("cores from /proc/cpuinfo: got %d, want 4", got)
	}
}

func TestOOMFromKernLog(t *testing.T) {
	e := fixtureEnv(t, fixture(t, "host-incident"))
	fs := e.oom(context.Background())
	if len(fs) != 1 {
		t.Fatalf("want one finding, got %+v", fs)
	}
	f := fs[0]
	if f.Status != StatusFail || f.Cause != KindOOMKill || !strings.Contains(f.Summary, "php-fpm8.2 (1×)") {
		t.Errorf("got %s %q %q, want fail oom_kill naming php-fpm8.2 once", f.Status, f.Cause, f.Summary)
	}
	if want := time.Date(2026, 11, 23, 23, 9, 58, 0, time.Local); !f.Time.Equal(want) {
		t.Errorf("time: got %v, want %v", f.Time, want)
	}
	if !strings.Contains(strings.Join(f.Evidence, "\n"), "/proc/vmstat oom_kill 3 since boot") {
		t.Errorf("evidence lacks the vmstat counter: %q", f.Evidence)
	}
}

func TestOOMFromKmsg(t *testing.T) {
	root := fixture(t, "host-kmsg")
	// Boot so that the kill, 812345.1241 s after it, is at 23:09:58.
	kill := time.Date(2026, 11, 23, 23, 9, 58, 0, time.Local)
	btime := kill.Add(-812345 * time.Second).Unix()
	if err := os.WriteFile(filepath.Join(root, "proc/stat"), fmt.Appendf(nil, "cpu 1 2 3 4\nbtime %d\n", btime), 0o644); err != nil {
		t.Fatal(err)
	}
	e := fixtureEnv(t, root)
	fs := e.oom(context.Background())
	if len(fs) != 1 {
		t.Fatalf("want one finding, got %+v", fs)
	}
	f := fs[0]
	if f.Status != StatusFail || !strings.Contains(f.Summary, "php-fpm8.2 (1×)") {
		t.Errorf("got %s %q, want fail naming php-fpm8.2 once", f.Status, f.Summary)
	}
	if !f.Time.Equal(kill) {
		t.Errorf("time: got %v, want %v", f.Time, kill)
	}
	ev := strings.Join(f.Evidence, "\n")
	for _, want := range []string{"/dev/kmsg: [Mon Nov 23 23:09:58 2026] Out of memory: Killed process 4242 (php-fpm8.2)", "system.slice/php8.2-fpm.service: memory.events oom_kill 1", "this cgroup: memory.events oom_kill 1"} {
		if !strings.Contains(ev, want) {
			t.Errorf("evidence lacks %q:\n%s", want, ev)
		}
	}
	// The container's cgroup limit is what memory is measured against.
	mem := e.memory(context.Background())
	if mem[0].Status != StatusFail || !strings.Contains(mem[0].Summary, "20 MiB available of 1024 MiB") {
		t.Errorf("memory in the cgroup: got %s %q, want fail with 20 MiB of 1024 MiB", mem[0].Status, mem[0].Summary)
	}
}

func TestOOMCountersOnly(t *testing.T) {
	e := fixtureEnv(t, fixture(t, "host-counters"))
	fs := e.oom(context.Background())
	if len(fs) != 1 || fs[0].Status != StatusWarn || fs[0].Cause != KindOOMKill {
		t.Fatalf("got %+v, want one warn oom_kill (counted, not dated)", fs)
	}
}

func TestLoadAndFDs(t *testing.T) {
	e := fixtureEnv(t, fixture(t, "host-incident"))
	ld := e.load(context.Background())
	if len(ld) != 1 || ld[0].Status != StatusWarn || ld[0].Cause != KindLoad {
		t.Errorf("load 5.00 on 2 cores: got %+v, want warn", ld)
	}
	fds := e.fds(context.Background())
	nginx := findOne(t, fds, "nginx (pid 1200)")
	if nginx.Status != StatusWarn || !strings.Contains(nginx.Summary, "9 of 10") {
		t.Errorf("nginx with 9 of 10 descriptors: got %s %q, want warn", nginx.Status, nginx.Summary)
	}
	sys := findOne(t, fds, "system")
	if sys.Status != StatusOK {
		t.Errorf("system descriptors 9000 of 100000: got %s", sys.Status)
	}
}

func TestDisks(t *testing.T) {
	root := fixture(t, "host-incident")
	for _, tc := range []struct {
		desc         string
		total, avail int64
		files, free  int64
		want         Status
		what         string
	}{
		{"plenty", 100 << 30, 50 << 30, 1000, 900, StatusOK, ""},
		{"8% free", 100 << 30, 8 << 30, 1000, 900, StatusWarn, "space"},
		{"1% free", 100 << 30, 1 << 30, 1000, 900, StatusFail, "space"},
		{"inodes 1% free", 100 << 30, 50 << 30, 1000, 10, StatusFail, "inodes"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			e := newEnv(Options{Root: root, Now: fixtureNow, Statfs: func(string) (DiskUsage, error) {
				return DiskUsage{ID: "x", Total: tc.total, Avail: tc.avail, Files: tc.files, FilesFree: tc.free}, nil
			}})
			fs := e.disks(context.Background())
			if len(fs) != 1 {
				t.Fatalf("want one finding for one file system, got %+v", fs)
			}
			f := fs[0]
			if f.Status != tc.want || !strings.Contains(f.Summary, tc.what) {
				t.Errorf("got %s %q, want %s about %s", f.Status, f.Summary, tc.want, tc.what)
			}
			if !strings.HasPrefix(f.Target, "/, /var/log") {
				t.Errorf("target: got %q, want the paths that exist, from /", f.Target)
			}
		})
	}
}

func TestChangesBeforeErrors(t *testing.T) {
	e := fixtureEnv(t, fixture(t, "host-incident"))
	began := time.Date(2026, 11, 23, 23, 9, 59, 0, time.Local)
	fs := e.changes(context.Background(), began)
	if len(fs) != 1 {
		t.Fatalf("want one finding, got %+v", fs)
	}
	f := fs[0]
	if f.Status != StatusWarn || f.Cause != KindChange {
		t.Errorf("got %s %q, want warn change", f.Status, f.Cause)
	}
	if want := "errors began 2 minutes after php8.2-fpm was upgraded (8.2.7-1~deb12u1 → 8.2.26-1~deb12u1)"; f.Summary != want {
		t.Errorf("summary:\n got %q\nwant %q", f.Summary, want)
	}
	if !strings.Contains(f.Fix, "apt-get install php8.2-fpm=8.2.7-1~deb12u1") {
		t.Errorf("fix: %q", f.Fix)
	}
	// apt's history says the same upgrade: it is listed once.
	n := 0
	for _, ev := range f.Evidence {
		if strings.Contains(ev, "php8.2-fpm was upgraded") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the upgrade is listed %d times, want once: %q", n, f.Evidence)
	}

	// Without errors, the changes are listed and nothing is blamed.
	fs = e.changes(context.Background(), time.Time{})
	if len(fs) != 1 || fs[0].Status != StatusOK || len(fs[0].Evidence) != 1 || !strings.Contains(fs[0].Evidence[0], "23:07:41  php8.2-fpm was upgraded") || !strings.Contains(fs[0].Evidence[0], "dpkg.log") {
		t.Errorf("without errors: got %+v, want ok listing the upgrade of the last day, from dpkg.log", fs)
	}
}

func TestParseDpkgAndApt(t *testing.T) {
	cs := changesFromBytes([]byte("2026-11-23 23:07:41 install libfoo:amd64 <none> 1.2-3\n2026-11-23 23:07:42 remove bar:all 4.5 <none>\n2026-11-23 23:07:43 upgrade x:amd64 1 1\nnot a line\n2026-13-45 99:99:99 upgrade y:amd64 1 2\n"))
	if len(cs) != 2 || cs[0].String() != "libfoo 1.2-3 was installed" || cs[1].String() != "bar 4.5 was removed" {
		t.Errorf("got %+v", cs)
	}
	got := parseAptHistory(strings.NewReader("Start-Date: 2026-11-23  23:07:40\nUpgrade: a:amd64 (1, 2), b:amd64 (3, 4)\nInstall: c:amd64 (5, automatic)\n"), "h", time.Time{})
	if len(got) != 3 || got[1].Name != "b" || got[1].From != "3" || got[1].To != "4" || got[2].To != "5" {
		t.Errorf("apt history: got %+v", got)
	}
}
