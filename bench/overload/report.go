package main

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is everything one run of the benchmark produced; it is also the
// JSON file.
type report struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Machine  machine           `json:"machine"`
	Versions map[string]string `json:"versions"`
	Duration string            `json:"duration_per_contender"`
	Warmup   string            `json:"warmup"`
	Slots    int               `json:"upstream_slots"`
	Service  string            `json:"upstream_service_time"`
	Capacity float64           `json:"upstream_capacity_per_second"`
	Offered  float64           `json:"offered_per_second"`
	Timeout  string            `json:"client_timeout"`
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

func (m machine) describe() string {
	return fmt.Sprintf("%d CPUs (%s), %s of memory, %s, Linux %s, %s", m.CPUs, m.CPU, m.MemoryGi, m.OS, m.Kernel, m.Go)
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
func versions(ctx context.Context, o *options, cs []*contender) map[string]string {
	v := map[string]string{}
	desc := firstLine(output(ctx, "git", "-C", o.repo, "describe", "--tags", "--always", "--dirty"))
	if desc == "" {
		desc = "unknown commit"
	}
	for _, c := range cs {
		switch {
		case c.bin == "":
		case strings.HasPrefix(c.name, "gatewise"):
			line := orUnknown(firstLine(output(ctx, c.bin, "version")))
			if o.gatewiseNote != "" {
				v["gatewise"] = line + "; " + o.gatewiseNote + "; repository at " + desc
			} else {
				v["gatewise"] = desc + " (" + line + ")"
			}
		case c.name == "nginx":
			v["nginx"] = orUnknown(firstLine(output(ctx, c.bin, "-v")))
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

// table returns the results as Markdown tables.
func (r *report) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| contender | goodput | p50 | p99 | p99 after %s | max | refused (429/503) | with Retry-After | other outcomes |\n", r.Warmup)
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, run := range r.Runs {
		if run.Load == nil || run.Err != "" {
			fmt.Fprintf(&b, "| %s | failed: %s | | | | | | | |\n", run.Name, strings.ReplaceAll(run.Err, "|", `\|`))
			continue
		}
		l := run.Load
		lat := func(v float64) string {
			if l.Admitted == 0 {
				return "—"
			}
			return fmtMS(v)
		}
		fmt.Fprintf(&b, "| %s | %.0f/s (%.0f%%) | %s | %s | %s | %s | %d | %d | %s |\n", run.Name,
			l.Goodput, 100*l.Goodput/r.Capacity, lat(l.P50), lat(l.P99), lat(l.SteadyP99), lat(l.Max),
			l.Refused, l.WithRetryAfter, others(l.Other))
	}
	b.WriteString("\nWhat the upstream saw:\n\n")
	b.WriteString("| contender | requests served | median service time | wait in its own queue, p50 | p99 |\n")
	b.WriteString("|---|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		if run.Load == nil || run.Err != "" {
			continue
		}
		u := run.Upstream
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", run.Name, u.Served, fmtMS(u.ServiceMedian), fmtMS(u.WaitP50), fmtMS(u.WaitP99))
	}
	return b.String()
}

// others formats the other outcomes, such as "1712 client timeouts".
func others(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name := k
		switch k {
		case "client_timeout":
			name = "client timeouts"
		case "transport":
			name = "transport errors"
		default:
			name = "status " + k
		}
		out = append(out, fmt.Sprintf("%d %s", m[k], name))
	}
	return strings.Join(out, ", ")
}

// markdown returns the docs/overload.md page.
func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString(`# Overload: no gateway, nginx and gatewise at 5× an upstream's capacity

<!-- Generated by bench/overload.sh (bench/overload/); rerun it rather than editing this page. -->

An upstream that can serve a fixed number of requests at once gets more
than it can serve. Without admission control its own queue grows and the
latency of every request with it, until clients time out: the server
works flat out, and almost nobody gets an answer in time. In front of it,
a gateway should admit what the upstream can serve at its normal latency,
and refuse the rest at once with 503 and a Retry-After, so that those
clients can come back later or go elsewhere.

## Running it

` + "```sh" + `
bash bench/overload.sh                   # 10s per contender, about a minute in all
bash bench/overload.sh --duration 5s     # a quick run
bash bench/overload.sh --gatewise BIN    # use a gatewise binary already built
` + "```" + `

As root on Debian or Ubuntu the script installs nginx with apt-get when it
is missing; otherwise it prints the install line. It builds gatewise and
` + "`bench/overload`" + `, runs each contender in turn (the proxies as child processes
on free loopback ports), and writes this page and ` + "`results.json`" + ` in its work
directory (with each proxy's config and log).

## Scenario

`)
	fmt.Fprintf(&b, "The upstream (on 127.0.0.1, fresh for each contender) serves at most %d\n", r.Slots)
	fmt.Fprintf(&b, "requests at once, each in %s ± 10%% (uniformly), and queues the rest in\n", r.Service)
	fmt.Fprintf(&b, "its own unbounded FIFO queue, as an application server does: its capacity\n")
	fmt.Fprintf(&b, "is %.0f requests per second. The load is %.0f requests per second (%.0f×\n", r.Capacity, r.Offered, r.Offered/r.Capacity)
	fmt.Fprintf(&b, "the capacity) for %s, open loop: each request is started on schedule,\n", r.Duration)
	fmt.Fprintf(&b, "whatever happened to the ones before, as visitors arrive; a request gives\n")
	fmt.Fprintf(&b, "up after %s. Then every answer is awaited.\n", r.Timeout)
	b.WriteString(`
- **goodput**: 2xx answers per second of the load (and the share of the
  upstream's capacity).
- **p50, p99, max**: latency of the 2xx answers, as the client measured it;
  **p99 after ` + r.Warmup + `** leaves out the requests started in the first
  ` + r.Warmup + ` (the onset of the overload, while an adaptive limit learns).
- **refused**: 429 and 503 answers; **with Retry-After**: those with a
  Retry-After header.
- **other outcomes**: client timeouts, transport errors, other statuses.

## Results

`)
	fmt.Fprintf(&b, "%s, %s.\n\n", r.Started.Format("2006-01-02 15:04 UTC"), r.Machine.describe())
	b.WriteString(r.table())
	b.WriteString("\nVersions:\n\n")
	for _, k := range slices.Sorted(maps.Keys(r.Versions)) {
		fmt.Fprintf(&b, "- %s: `%s`\n", k, r.Versions[k])
	}
	b.WriteString(`
The load generator, the upstream and the proxy share the machine, so the
latencies include some of their competition for its CPUs. One run per
contender: rerun before reading much into a small difference.

## How each contender meets the overload

- **No gateway**: every request joins the upstream's queue. The upstream
  serves at its full rate, but each request waits for all those before
  it, so the wait grows through the run until clients give up: most of
  the goodput goes to clients that have already waited seconds.
- **nginx** (open source) has no queue for an upstream (the ` + "`queue`" + `
  directive is nginx Plus only). Its documented protection is
  ` + "`limit_conn`" + ` (requests in flight) and ` + "`limit_req`" + ` (rate, with a burst
  served without delay), both set here to the upstream's known capacity;
  ` + "`max_conns`" + ` on the upstream server caps the connections too. What
  is over the limits is refused at once with 503; ` + "`error_page`" + ` adds a
  Retry-After (nginx sends none by default). It needs the capacity to be
  known and written in the config, and kept up to date.
- **gatewise (adaptive)** has nothing set: by default it learns the
  pool's concurrency limit from its latency (a gradient limit after
  Netflix's concurrency-limits), queues what is over it (up to 100
  requests, for up to 1s) and serves the queue newest first once it
  stands, shedding what has waited too long, and refuses the rest with
  503 ` + "`connection_limit_reached`" + ` and a Retry-After. It starts from a
  limit of 4 and raises it by up to 15% per round trip while the
  upstream's latency stays flat; until the upstream shows queueing, a
  queue in front of it is taken for a burst and served in order, so the
  requests of the overload's first second may wait up to the 1s queue
  timeout (the p99 against the p99 after 1s).
- **gatewise (max_in_flight)** has the upstream's slots as a fixed limit,
  with the same queue.
`)
	b.WriteString(`
## Configs

The addresses and the work directory change from run to run.
`)
	for _, run := range r.Runs {
		if run.Config == "" {
			continue
		}
		fmt.Fprintf(&b, "\n### %s\n\n```%s\n%s```\n", run.Name, run.Lang, run.Config)
	}
	return b.String()
}
