package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is everything one chaos run produced; it is also the JSON file.
type report struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Machine  machine           `json:"machine"`
	Versions map[string]string `json:"versions"`
	Duration string            `json:"duration_per_proxy"`
	Workers  int               `json:"workers"`
	POSTs    int               `json:"post_percent"`
	Dir      string            `json:"work_dir"`
	Runs     []*runResult      `json:"runs"`
}

type machine struct {
	CPUs     int    `json:"cpus"`
	CPU      string `json:"cpu_model"`
	MemoryGi string `json:"memory"`
	OS       string `json:"os"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown", MemoryGi: "unknown", OS: "unknown", Kernel: "unknown"}
	if v := fileField("/proc/cpuinfo", "model name", ":"); v != "" {
		m.CPU = v
	}
	if v := fileField("/proc/meminfo", "MemTotal", ":"); v != "" {
		if kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64); err == nil {
			m.MemoryGi = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	if v := fileField("/etc/os-release", "PRETTY_NAME", "="); v != "" {
		m.OS = strings.Trim(v, `"`)
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// fileField returns the value of the first line of path whose key is key.
func fileField(path, key, sep string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// versions returns each program's version line.
func versions(ctx context.Context, o *options, ps []*proxy) map[string]string {
	v := map[string]string{}
	desc := firstLine(output(ctx, "git", "-C", o.repo, "describe", "--tags", "--always", "--dirty"))
	if desc == "" {
		desc = "unknown commit"
	}
	for _, p := range ps {
		switch p.name {
		case "gatewise":
			line := orUnknown(firstLine(output(ctx, p.bin, "version")))
			if o.gatewiseNote != "" {
				v["gatewise"] = line + "; " + o.gatewiseNote + "; repository at " + desc
			} else {
				v["gatewise"] = desc + " (" + line + ")"
			}
		case "nginx":
			v["nginx"] = orUnknown(firstLine(output(ctx, p.bin, "-v")))
		case "HAProxy":
			v["HAProxy"] = orUnknown(firstLine(output(ctx, p.bin, "-v")))
		}
	}
	return v
}

// output runs a command for at most 10s and returns its combined output,
// or "" when it fails.
func output(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// tables returns the results and the breakdowns as Markdown tables.
func (r *report) tables() string {
	var b strings.Builder
	b.WriteString("| proxy | requests | GET errors | POST errors | duplicate POSTs | p50 | p99 |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		if run.Load == nil || run.Err != "" {
			fmt.Fprintf(&b, "| %s | failed: %s | | | | | |\n", run.Proxy, mdEscape(run.Err))
			continue
		}
		l := run.Load
		ok := l.successes() > 0
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %s | %s |\n", run.Proxy, l.Requests,
			ratio(l.GETErrors, l.GETs), ratio(l.POSTErrors, l.POSTs), run.Upstream.DuplicatePOSTs,
			fmtMS(l.P50, ok), fmtMS(l.P99, ok))
	}

	if !slices.ContainsFunc(r.Runs, func(run *runResult) bool { return run.Err == "" && run.Load != nil }) {
		return b.String()
	}
	b.WriteString("\nWhat the clients got (every answer, by status or error):\n\n")
	b.WriteString("| proxy | successes/s | 2xx | 502 | 503 | 504 | other 5xx | transport error | client timeout | p90 | max |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		if run.Load == nil || run.Err != "" {
			continue
		}
		l := run.Load
		var ok, other int64
		for k, v := range l.Outcomes {
			if code, err := strconv.Atoi(k); err == nil {
				switch {
				case code < 300:
					ok += v
				case code >= 500 && code != 502 && code != 503 && code != 504:
					other += v
				}
			}
		}
		some := l.successes() > 0
		fmt.Fprintf(&b, "| %s | %.0f | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", run.Proxy, l.PerSecond, ok,
			l.Outcomes["502"], l.Outcomes["503"], l.Outcomes["504"], other,
			l.Outcomes["transport"], l.Outcomes["client_timeout"], fmtMS(l.P90, some), fmtMS(l.Max, some))
	}

	b.WriteString("\nClient-visible errors in each second of the run (t1 is killed at a third of it):\n\n```\n")
	for _, run := range r.Runs {
		if run.Load == nil || run.Err != "" {
			continue
		}
		fmt.Fprintf(&b, "%-9s", run.Proxy)
		for _, n := range run.Load.ErrorsBySecond {
			fmt.Fprintf(&b, " %d", n)
		}
		b.WriteString("\n")
	}
	b.WriteString("```\n")

	b.WriteString("\nWhat the upstreams saw (requests with headers read; health checks are the requests without X-Chaos-ID):\n\n")
	b.WriteString("| proxy | t1 requests (killed) | t2 requests | t2 resets | t3 requests (hung) | health checks | connections opened | GET ids seen twice or more | POST ids seen twice or more |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		if len(run.Targets) != 3 || run.Err != "" {
			continue
		}
		t := run.Targets
		var checks, conns int64
		for _, x := range t {
			checks += x.Checks
			conns += x.Accepted
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d |\n", run.Proxy,
			t[0].Requests-t[0].Checks, t[1].Requests-t[1].Checks, t[1].Resets, t[2].Requests-t[2].Checks,
			checks, conns, run.Upstream.RetriedGETs, run.Upstream.DuplicatePOSTs)
	}
	return b.String()
}

// ratio formats n errors of total requests.
func ratio(n, total int64) string {
	if total == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.2f%%)", n, 100*float64(n)/float64(total))
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// markdown returns the docs/chaos.md page.
func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString(`# Chaos: gatewise, nginx and HAProxy under the same failures

<!-- Generated by bench/chaos.sh (bench/chaos/); rerun it rather than editing this page. -->

The same failing upstreams, the same load and the same per-try timeout
(1s) in front of gatewise, nginx and HAProxy, each with its documented
best-practice config for the situation: health checks or passive failure
counting, keep-alive to the upstreams, and retries on another server.
What matters: errors the clients saw, and POSTs that reached the upstreams
twice — a retried POST that the application may have processed already
(a double order, a double payment).

## Running it

` + "```sh" + `
bash bench/chaos.sh                  # 20s of load per proxy, about a minute in all
bash bench/chaos.sh --duration 5s    # a quick run
bash bench/chaos.sh --gatewise BIN   # use a gatewise binary already built
` + "```" + `

As root on Debian or Ubuntu the script installs nginx and HAProxy with
apt-get when they are missing; otherwise it prints the install line. It
builds gatewise and ` + "`bench/chaos`" + `, runs each proxy in turn as a child
process on a free loopback port, and writes this page and
` + "`results.json`" + ` in its work directory (with each proxy's config and logs).

## Scenario

For each proxy, fresh upstreams on 127.0.0.1 (three targets of one pool):

| target | behaviour |
|---|---|
| t1 | answers 200 until a third of the run, then is killed: its listener and every connection are closed, later connections are refused |
| t2 | answers 200, except that every third connection it accepts is reset (TCP RST, SO_LINGER 0) right after the first request on it is read |
| t3 | reads each request and never answers (health checks included) |

`)
	fmt.Fprintf(&b, "Load: %d concurrent keep-alive clients for %s per proxy, each sending\n", r.Workers, r.Duration)
	fmt.Fprintf(&b, "requests back to back: %d%% `GET /items?id=ID`, %d%% `POST /orders` with a small JSON\n", 100-r.POSTs, r.POSTs)
	b.WriteString(`body (the same sequence for every proxy). Every request carries a unique
` + "`X-Chaos-ID`" + ` header; each upstream counts the ids it receives when it has
read a request's headers, so a POST that reached any upstream more than
once — even one that was reset or hung before answering — is a duplicate.
A client error is a transport error (reset, refused, cut body), no full
answer within 10s, or a status of 500 or more. Latencies are those of
successful requests, measured by the client.

## Results

`)
	fmt.Fprintf(&b, "%s, %s.\n\n", r.Started.Format("2006-01-02 15:04 UTC"), r.Machine.describe())
	b.WriteString(r.tables())
	b.WriteString("\nVersions:\n\n")
	for _, run := range r.Runs {
		if v, ok := r.Versions[run.Proxy]; ok {
			fmt.Fprintf(&b, "- %s: `%s`\n", run.Proxy, v)
		}
	}
	b.WriteString(`
One run per proxy: where a proxy marks targets down and up again, the
timing of the failures against its checks moves the numbers from run to
run, so rerun before reading much into a small difference. The work
directory keeps each proxy's log: nginx's error.log and access.log (only
requests that did not succeed at the first try), HAProxy's stderr.log
(server state changes and requests that did not end well).

## How each proxy meets the failures

- **nginx** (open source) has no active health checks: ` + "`max_fails=3 fail_timeout=10s`" + `
  marks a server failed after 3 errors or timeouts within 10s, for 10s,
  counted in each worker process. When every server is marked failed,
  nginx answers 502 at once (` + "`no live upstreams`" + ` in error.log) until one
  is tried again. It never retries a POST once it was sent, so it makes
  no duplicates.
- **HAProxy** checks each server every second (` + "`fall 3 rise 2`" + `). Its layer 7
  retries (` + "`retry-on empty-response response-timeout`" + `) replay any method,
  POST included: its manual warns that the application then needs replay
  protection, and ` + "`http-request disable-l7-retry if METH_POST`" + ` turns them off
  for POSTs (not used here: the config is the one described above).
- **gatewise** checks each target every second, ejects a target after 3
  failures in a row, and retries on another target a request whose bytes
  never reached the upstream, or an idempotent one that failed before the
  response headers; a POST that may have reached the upstream is never
  replayed.
`)
	b.WriteString(`
## Configs

The targets' addresses, the listening port and the work directory change
from run to run.
`)
	for _, run := range r.Runs {
		lang := "nginx"
		switch run.Proxy {
		case "gatewise":
			lang = "yaml"
		case "HAProxy":
			lang = "haproxy"
		}
		fmt.Fprintf(&b, "\n### %s\n\n```%s\n%s```\n", run.Proxy, lang, run.Config)
	}
	return b.String()
}

func (m machine) describe() string {
	return fmt.Sprintf("%d CPUs (%s), %s of memory, %s, Linux %s, %s", m.CPUs, m.CPU, m.MemoryGi, m.OS, m.Kernel, m.Go)
}
