package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// report is everything one run of the benchmark produced; it is also the
// JSON file.
type report struct {
	Started        time.Time         `json:"started"`
	Finished       time.Time         `json:"finished"`
	Machine        benchkit.Machine  `json:"machine"`
	Versions       map[string]string `json:"versions"`
	Duration       string            `json:"duration_per_contender"`
	Warmup         string            `json:"warmup"`
	Conns          int               `json:"wrk_connections"`
	Threads        int               `json:"wrk_threads"`
	Children       int               `json:"php_fpm_max_children"`
	NginxWorkers   int               `json:"nginx_workers"`
	NginxKeepalive int               `json:"nginx_keepalive_per_worker"`
	Dir            string            `json:"work_dir"`
	FPMConfig      string            `json:"php_fpm_config"`
	Runs           []*runResult      `json:"runs"`
}

// table returns the results as a Markdown table.
func (r *report) table() string {
	var b strings.Builder
	b.WriteString("| proxy | requests/s | p50 | p90 | p99 | max | errors | proxy CPU per request | php-fpm CPU per request |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		if run.Wrk == nil || run.Err != "" {
			fmt.Fprintf(&b, "| %s | failed: %s | | | | | | | |\n", run.Name, strings.ReplaceAll(run.Err, "|", `\|`))
			continue
		}
		w := run.Wrk
		fmt.Fprintf(&b, "| %s | %.0f | %.2f ms | %.2f ms | %.2f ms | %.1f ms | %d | %.0f µs | %.0f µs |\n",
			run.Name, w.RPS, w.P50ms, w.P90ms, w.P99ms, w.MaxMs, w.Non2xx+w.SocketErrs, run.ProxyCPUus, run.FPMCPUus)
	}
	return b.String()
}

// markdown returns the report page, docs/fastcgi-bench.md.
func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString("# hello.php through gatewise and through nginx\n\n")
	b.WriteString("<!-- Written by bench/fastcgi.sh; run it again rather than editing this page. -->\n\n")
	b.WriteString("One php-fpm pool, one `hello.php` (`<?php echo \"Hello, world\\n\";`), and in front of it in turn nginx with\n")
	b.WriteString("`fastcgi_pass` and gatewise with a `fastcgi+unix://` target; wrk loads each the same way. What is\n")
	b.WriteString("compared is the proxy: PHP's own time is the same for both (its CPU per request is in the last column).\n\n")
	b.WriteString(r.table())
	b.WriteString("\n")
	b.WriteString("- **requests/s**, **p50**, **p90**, **p99**, **max**: from `wrk --latency` over the measured run.\n")
	b.WriteString("- **errors**: non-2xx answers and socket errors wrk counted.\n")
	b.WriteString("- **proxy CPU per request**: the user and system CPU time of the proxy's processes (nginx's master and\n")
	b.WriteString("  workers; gatewise's one process) over the measured run, from `/proc/PID/stat`, divided by the requests\n")
	b.WriteString("  answered. **php-fpm CPU per request** likewise, for the php-fpm master and its workers.\n\n")
	b.WriteString("## How it ran\n\n")
	fmt.Fprintf(&b, "- Machine: %s.\n", r.Machine.Describe())
	fmt.Fprintf(&b, "- Ran %s, in %s.\n", r.Started.Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second))
	for _, k := range slices.Sorted(maps.Keys(r.Versions)) {
		fmt.Fprintf(&b, "- %s: %s\n", k, r.Versions[k])
	}
	fmt.Fprintf(&b, "- Load: wrk, %d connections on %d threads, %s of warm-up then %s measured, per proxy, one after the other.\n",
		r.Conns, r.Threads, r.Warmup, r.Duration)
	fmt.Fprintf(&b, "- php-fpm: `pm = static` with %d workers on a unix socket, no php.ini (so no opcache, for both alike).\n", r.Children)
	fmt.Fprintf(&b, "- nginx: %d workers, FastCGI connections kept (`keepalive %d` per worker, `fastcgi_keep_conn on`); at most\n",
		r.NginxWorkers, r.NginxKeepalive)
	b.WriteString("  pm.max_children kept idle in all, since a kept connection holds a php-fpm worker. No access log.\n")
	b.WriteString("- gatewise: its defaults (4 idle FastCGI connections kept, closed while another of its connections waits\n")
	b.WriteString("  for a worker), no access log.\n")
	b.WriteString("- Everything shares the same cores: wrk, the proxy and php-fpm compete for them, the same way for each proxy.\n\n")
	b.WriteString("Run it: `bash bench/fastcgi.sh` (`--duration 5s` for a quick run; `--help` for the options). It installs\n")
	b.WriteString("nginx, wrk and php8.2-fpm with apt-get when they are missing (as root).\n\n")
	for _, run := range r.Runs {
		if run.Command != "" {
			fmt.Fprintf(&b, "%s, measured: `%s`\n\n", run.Name, strings.Replace(run.Command, r.Dir, "DIR", 1))
		}
	}
	b.WriteString("## The configs\n\n")
	for _, run := range r.Runs {
		lang := "yaml"
		if run.Name == "nginx" {
			lang = "nginx"
		}
		fmt.Fprintf(&b, "%s:\n\n```%s\n%s```\n\n", run.Name, lang, strings.ReplaceAll(run.Config, r.Dir, "DIR"))
	}
	fmt.Fprintf(&b, "php-fpm:\n\n```ini\n%s```\n", strings.ReplaceAll(r.FPMConfig, r.Dir, "DIR"))
	return b.String()
}
