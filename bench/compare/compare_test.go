package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
	"github.com/gatewise/gatewise/internal/config"
)

// TestMain lets the test binary serve as the upstream: the real run
// starts os.Executable() with "upstream" as its first argument.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "upstream" {
		os.Exit(benchkit.Main("compare", dispatch))
	}
	os.Exit(m.Run())
}

// TestGroupMemory runs a real process group (a shell and a child of it)
// and reads its memory from /proc; benchkit tests its CPU time.
func TestGroupMemory(t *testing.T) {
	t.Parallel()
	sh, err := benchkit.FindBinary("", "sh")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := benchkit.StartChild("idle", []string{sh, "-c", "sleep 20 & wait"}, filepath.Join(t.TempDir(), "idle.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Stop()
	var pids []int
	for deadline := time.Now().Add(5 * time.Second); len(pids) < 2 && time.Now().Before(deadline); {
		pids, _ = benchkit.GroupPIDs(ch.Pid())
		time.Sleep(20 * time.Millisecond)
	}
	if len(pids) < 2 {
		t.Fatalf("group %d has %v, want the shell and its sleep", ch.Pid(), pids)
	}
	mem, err := groupMemory(ch.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if mem.Procs != 2 || mem.Kind != "private" || mem.Bytes < 100<<10 || mem.Bytes > 1<<30 {
		t.Errorf("memory %+v: want the private memory of 2 processes between 100 KiB and 1 GiB", mem)
	}
	ch.Stop()
	for deadline := time.Now().Add(5 * time.Second); ; {
		_, err := groupMemory(ch.Pid())
		if errors.Is(err, benchkit.ErrNoProcess) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("groupMemory 5s after Stop: %v, want ErrNoProcess", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testParams is a config's parameters with real certificate files.
func testParams(t *testing.T, logs bool) params {
	t.Helper()
	dir := t.TempDir()
	cert, err := writeSelfSigned(dir)
	if err != nil {
		t.Fatal(err)
	}
	return params{dir: dir, listen: "127.0.0.1:18081", tlsListen: "127.0.0.1:18443", upstream: "127.0.0.1:18080",
		cert: cert, maxConns: 11024, nofile: 20000, threads: runtime.NumCPU(), root: os.Geteuid() == 0, accessLog: logs}
}

// TestConfigsValid has each program check its own config, with the access
// log off and on.
func TestConfigsValid(t *testing.T) {
	t.Parallel()
	var cs []*contender
	for _, mk := range []struct {
		prog string
		new  func(string) *contender
	}{{"nginx", nginxContender}, {"haproxy", haproxyContender}, {"caddy", caddyContender}} {
		bin, err := benchkit.FindBinary("", mk.prog)
		if err != nil {
			t.Fatalf("%v: install it with apt-get install %s (scripts/test does)", err, mk.prog)
		}
		cs = append(cs, mk.new(bin))
	}
	for _, c := range cs {
		for _, logs := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/log=%v", c.name, logs), func(t *testing.T) {
				t.Parallel()
				p := testParams(t, logs)
				text := c.config(p)
				file := filepath.Join(p.dir, c.file)
				if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := c.check(context.Background(), c.bin, file, p); err != nil {
					t.Fatalf("%v\n%s", err, text)
				}
				hasLog := strings.Contains(text, filepath.Join(p.dir, "access.log")) || strings.Contains(text, "log stderr")
				if hasLog != logs {
					t.Errorf("access log in the config: %v, want %v\n%s", hasLog, logs, text)
				}
			})
		}
	}
	// A config the program refuses must fail the check: a directive
	// misspelt.
	broken := map[string][2]string{"nginx": {"proxy_pass", "proxy_passe"}, "HAProxy": {"default_backend", "default_backand"},
		"Caddy": {"reverse_proxy", "reverse_proxie"}}
	for _, c := range cs {
		p := testParams(t, false)
		file := filepath.Join(p.dir, c.file)
		text := c.config(p)
		if !strings.Contains(text, broken[c.name][0]) {
			t.Fatalf("%s config lacks %q", c.name, broken[c.name][0])
		}
		text = strings.ReplaceAll(text, broken[c.name][0], broken[c.name][1])
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := c.check(context.Background(), c.bin, file, p); err == nil {
			t.Errorf("%s: a broken config passed the check", c.name)
		}
	}
}

func TestGatewiseConfigValid(t *testing.T) {
	t.Parallel()
	for _, logs := range []bool{false, true} {
		p := testParams(t, logs)
		text := gatewiseConfig(p)
		cfg, err := config.ParseValid("gatewise.yaml", []byte(text))
		if err != nil {
			t.Fatalf("log=%v: %v\n%s", logs, err, text)
		}
		if n := cfg.Limits.MaxConnsPerIP; n == nil || *n != 0 {
			t.Errorf("max_conns_per_ip %v, want 0 (every client is 127.0.0.1)", n)
		}
		if n := cfg.Limits.MaxConns; n == nil || *n < 10000 {
			t.Errorf("max_conns %v, want 10000 or more", n)
		}
		if got, want := cfg.AccessLog != "off", logs; got != want {
			t.Errorf("access_log %q with logs=%v", cfg.AccessLog, logs)
		}
		if len(cfg.Listeners) != 2 || cfg.Listeners[1].TLS == nil {
			t.Errorf("listeners %+v, want plain and TLS", cfg.Listeners)
		}
	}
}

// testReport is a report with made-up figures.
func testReport() *report {
	w := func(rps, p99 float64) *benchkit.WrkResult {
		return &benchkit.WrkResult{Requests: int64(rps * 10), Seconds: 10, RPS: rps, OKRPS: rps, P50ms: p99 / 4, P99ms: p99}
	}
	r := &report{Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Machine: benchkit.Machine{CPUs: 2, CPU: "test"},
		Versions: map[string]string{"nginx": "nginx version: nginx/1.22.1"}, Scenarios: []string{scenSmall, scenIdle, scenH2, scenTLS},
		Settings: settings{Connections: 50, Threads: 2, Duration: "10s", Warmup: "2s", IdleConns: 10000, H2Clients: 50, H2Streams: 10, H2Duration: "5s", CloseDuration: "5s"}}
	r.Runs = []*runResult{
		{Contender: "direct", Scenario: scenSmall, Wrk: w(40000, 4), UpstreamCPUus: 20, Commands: []string{"wrk -t2 -c50 -d10s --latency http://127.0.0.1:1/small"}},
		{Contender: "gatewise", Scenario: scenSmall, Wrk: w(20000, 9), ProxyCPUus: 60, Lang: "yaml", Config: "listeners: []\n"},
		{Contender: "gatewise", Scenario: scenSmall, LogsOn: true, Wrk: w(18000, 10), ProxyCPUus: 70},
		{Contender: "nginx", Scenario: scenSmall, Wrk: w(25000, 6), ProxyCPUus: 25, Lang: "nginx", Config: "events {}\n"},
		{Contender: "Caddy", Scenario: scenSmall, Err: "caddy exited | badly"},
		{Contender: "gatewise", Scenario: scenIdle, Idle: &idleResult{Wanted: 10000, Opened: 10000, StillOp: 9990},
			MemBefore: &memReading{Bytes: 10 << 20, Kind: "private", Procs: 1}, MemAfter: &memReading{Bytes: 300 << 20, Kind: "private", Procs: 1}, KiBPerConn: 29.7},
		{Contender: "nginx", Scenario: scenIdle, Idle: &idleResult{Wanted: 10000, Opened: 10000, StillOp: 10000},
			MemBefore: &memReading{Bytes: 9 << 20, Kind: "private", Procs: 3}, MemAfter: &memReading{Bytes: 23 << 20, Kind: "private", Procs: 3}, KiBPerConn: 1.4},
		{Contender: "nginx", Scenario: scenH2, H2: &h2Result{Seconds: 5, OKRPS: 20000, Done: 100000, OK: 100000, MeanMs: 20, MaxMs: 80}},
		{Contender: "gatewise", Scenario: scenH2, H2: &h2Result{Seconds: 5, OKRPS: 2000, Done: 30000, OK: 10000, Non2xx: 20000, MeanMs: 50, MaxMs: 200}},
		{Contender: "nginx", Scenario: scenTLS, Wrk: w(30000, 4), ProxyCPUus: 22},
		{Contender: "gatewise", Scenario: scenTLS, Wrk: w(27000, 5), ProxyCPUus: 24},
	}
	return r
}

func TestReportTables(t *testing.T) {
	t.Parallel()
	r := testReport()
	small := r.table(scenSmall)
	for _, want := range []string{
		"| direct | 40,000 | 1.60× | 1.00× | 1.00 ms | 4.00 ms | 0.67× | — | 20.0 µs | 0 |",
		"| gatewise | 20,000 | 0.80× | 0.50× | 2.25 ms | 9.00 ms | 1.50× | 60.0 µs | — | 0 |",
		"| gatewise (log on) | 18,000 | 0.72× | 0.45× |",
		"| nginx | 25,000 | 1.00× | 0.62× |",
		`| Caddy | failed: caddy exited \| badly |`,
	} {
		if !strings.Contains(small, want) {
			t.Errorf("small table lacks %q:\n%s", want, small)
		}
	}
	// Every row of a table has the header's number of cells.
	for _, scen := range r.Scenarios {
		lines := strings.Split(strings.TrimSpace(r.table(scen)), "\n")
		cells := strings.Count(strings.ReplaceAll(lines[0], `\|`, ""), "|")
		for _, l := range lines[1:] {
			if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); n != cells {
				t.Errorf("%s: row %q has %d separators, the header %d", scen, l, n, cells)
			}
		}
	}
	idle := r.table(scenIdle)
	if want := "| gatewise | 9,990 of 10,000 | 10.0 MiB | 300.0 MiB | 29.7 KiB | 21.21× | the proxy: 1 (private) |"; !strings.Contains(idle, want) {
		t.Errorf("idle table lacks %q:\n%s", want, idle)
	}
	h2 := r.table(scenH2)
	if want := "| gatewise | 2,000 | 0.10× | — | 50.0 ms | 200 ms | — | — | 20,000 |"; !strings.Contains(h2, want) {
		t.Errorf("h2 table lacks %q:\n%s", want, h2)
	}
	tlsTable := r.table(scenTLS)
	if want := "| gatewise | 27,000 | 0.90× | — | 1.25 ms | 5.00 ms | 1.25× | 24.0 µs | — | 0 |"; !strings.Contains(tlsTable, want) {
		t.Errorf("tls table lacks %q:\n%s", want, tlsTable)
	}
	page := r.markdown("benchmarks.svg")
	for _, want := range []string{"<!-- Generated by bench/run", "### HTTP/1.1 over TLS", "over HTTP/1.1 and TLS (wrk offers no ALPN", "![Small keep-alive GETs", "(benchmarks.svg)",
		"`wrk -t2 -c50 -d10s --latency http://127.0.0.1:1/small`", "share its CPUs", "```yaml\nlisteners: []\n```",
		"```nginx\nevents {}\n```", "- nginx: `nginx version: nginx/1.22.1`"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestSVG checks that the chart is well-formed XML with a bar and a label
// per successful small-GET run in each panel.
func TestSVG(t *testing.T) {
	t.Parallel()
	out := testReport().svg()
	dec := xml.NewDecoder(strings.NewReader(out))
	rects, texts := 0, map[string]bool{}
	var inText bool
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, out)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			inText = el.Name.Local == "text"
			if el.Name.Local == "rect" {
				rects++
			}
		case xml.CharData:
			if inText {
				texts[strings.TrimSpace(string(el))] = true
			}
		case xml.EndElement:
			inText = false
		}
	}
	// A background and 2 × 4 bars (Caddy failed).
	if rects != 1+2*4 {
		t.Errorf("%d rects, want 9", rects)
	}
	for _, want := range []string{"direct", "gatewise", "gatewise (log on)", "nginx", "40,000", "25,000", "9.00 ms", "4.00 ms"} {
		if !texts[want] {
			t.Errorf("no text %q in the chart", want)
		}
	}
	if texts["Caddy"] {
		t.Error("the failed Caddy run has a bar")
	}
	if !strings.Contains(renderChart(nil, "x"), "no small-GET run succeeded") {
		t.Error("an empty chart does not say so")
	}
}

// TestRowsOfMedian: a scenario run in rounds shows each contender's
// median run, a failed round counting as the slowest.
func TestRowsOfMedian(t *testing.T) {
	run := func(c string, round int, rps float64, err string) *runResult {
		return &runResult{Contender: c, Scenario: scenSmall, Round: round, Err: err, Wrk: &benchkit.WrkResult{OKRPS: rps}}
	}
	rep := &report{Scenarios: []string{scenSmall}, Runs: []*runResult{
		run("gatewise", 1, 300, ""), run("nginx", 1, 1000, ""),
		run("gatewise", 2, 100, ""), run("nginx", 2, 0, "crashed"),
		run("gatewise", 3, 200, ""), run("nginx", 3, 900, ""),
	}}
	rows := rep.rowsOf(scenSmall)
	if len(rows) != 2 || rows[0].Contender != "gatewise" || rpsOf(rows[0]) != 200 || rows[1].Contender != "nginx" || rpsOf(rows[1]) != 900 {
		t.Fatalf("rows %+v %+v, want gatewise 200 and nginx 900", rows[0], rows[1])
	}
	table := rep.table(scenSmall)
	for _, want := range []string{"0.22×", "median of 3 rounds", "gatewise 300, 100, 200", "nginx 1,000, failed, 900", "in each round (their runs back to back): 0.30, failed, 0.22."} {
		if !strings.Contains(table, want) {
			t.Errorf("table without %q:\n%s", want, table)
		}
	}
}

// TestRealRun runs the program for one second of small GETs and 200 idle
// connections, straight to the upstream and through nginx.
func TestRealRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a real run of wrk and nginx: skipped with -short")
	}
	for _, prog := range []string{"nginx", "wrk"} {
		if _, err := benchkit.FindBinary("", prog); err != nil {
			t.Fatalf("%v: install it with apt-get install %s (scripts/test does)", err, prog)
		}
	}
	dir := t.TempDir()
	out, svg := filepath.Join(dir, "benchmarks.md"), filepath.Join(dir, "benchmarks.svg")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-contenders", "direct,nginx", "-scenarios", "small,idle",
		"-duration", "1s", "-warmup", "0s", "-idle-conns", "200", "-logs-on=false", "-threads", "1", "-connections", "4",
		"-rounds", "2", "-dir", dir, "-out", out, "-svg", svg}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	// Small GETs in 2 rounds, every contender in turn, then the idle
	// scenario per contender.
	var order []string
	for _, r := range rep.Runs {
		order = append(order, fmt.Sprintf("%s %s %d", r.Contender, r.Scenario, r.Round))
	}
	want := []string{"direct small 1", "nginx small 1", "direct small 2", "nginx small 2", "direct idle 0", "nginx idle 0"}
	if !slices.Equal(order, want) {
		t.Fatalf("runs %q, want %q", order, want)
	}
	if page, err := os.ReadFile(out); err != nil || !strings.Contains(string(page), "median of 2 rounds") {
		t.Errorf("the page does not say its small-GET rows are medians of 2 rounds (%v)", err)
	}
	for _, r := range rep.Runs {
		switch {
		case r.Err != "":
			t.Errorf("%s %s: %s", r.Contender, r.Scenario, r.Err)
		case r.Scenario == scenSmall && (r.Wrk == nil || r.Wrk.OKRPS < 100 || r.UpstreamCPUus <= 0):
			t.Errorf("%s small: %+v, upstream CPU %v µs: want 100 requests/s or more and CPU", r.Contender, r.Wrk, r.UpstreamCPUus)
		case r.Scenario == scenSmall && r.Contender == "nginx" && (r.ProxyCPUus <= 0 || r.ProxyProcs < 2):
			t.Errorf("nginx small: CPU %v µs over %d processes, want its master and workers", r.ProxyCPUus, r.ProxyProcs)
		case r.Scenario == scenIdle && (r.Idle == nil || r.Idle.StillOp != 200 || r.KiBPerConn <= 0):
			t.Errorf("%s idle: %+v, %v KiB per connection: want 200 open and a memory cost", r.Contender, r.Idle, r.KiBPerConn)
		}
	}
	for _, f := range []string{out, svg} {
		if fi, err := os.Stat(f); err != nil || fi.Size() < 500 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// Every child is gone: no process is left in the groups.
	if strings.Contains(stderr.String(), "SIGKILL") {
		t.Errorf("a child needed SIGKILL:\n%s", stderr.String())
	}
}

// TestRunPage: the page and chart written again from a results.json, and a
// one-line error for a missing or empty file.
func TestRunPage(t *testing.T) {
	dir := t.TempDir()
	rep := &report{Scenarios: []string{scenSmall}, Started: time.Now(), Runs: []*runResult{
		{Contender: "gatewise", Scenario: scenSmall, Round: 1, Wrk: &benchkit.WrkResult{OKRPS: 300, P99ms: 2}},
		{Contender: "nginx", Scenario: scenSmall, Round: 1, Wrk: &benchkit.WrkResult{OKRPS: 400, P99ms: 1}},
		{Contender: "gatewise", Scenario: scenSmall, Round: 2, Wrk: &benchkit.WrkResult{OKRPS: 350, P99ms: 2}},
		{Contender: "nginx", Scenario: scenSmall, Round: 2, Wrk: &benchkit.WrkResult{OKRPS: 500, P99ms: 1}},
	}}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	js, out, svg := filepath.Join(dir, "results.json"), filepath.Join(dir, "page.md"), filepath.Join(dir, "chart.svg")
	if err := os.WriteFile(js, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := runPage([]string{"-json", js, "-out", out, "-svg", svg}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	page, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(page), "median of 2 rounds") || !strings.Contains(string(page), "| gatewise | 300 | 0.75×") {
		t.Errorf("page (%v):\n%s", err, page)
	}
	if fi, err := os.Stat(svg); err != nil || fi.Size() < 500 {
		t.Errorf("chart: %v", err)
	}
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-json", filepath.Join(dir, "missing.json"), "-out", out}, {"-json", empty, "-out", out}, {"-out", out}} {
		err := runPage(args, &stdout, &stderr)
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err %v, want a one-line error", args, err)
		}
	}
}
