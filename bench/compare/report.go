package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// settings are the fixed parameters of a run, for the page.
type settings struct {
	Quick          bool   `json:"quick"`
	Threads        int    `json:"threads"`
	Connections    int    `json:"connections"`
	Duration       string `json:"duration"`
	Warmup         string `json:"warmup"`
	BigConnections int    `json:"big_connections"`
	BigDuration    string `json:"big_duration"`
	CloseDuration  string `json:"close_duration"`
	IdleConns      int    `json:"idle_connections"`
	H2Duration     string `json:"h2_duration"`
	H2Clients      int    `json:"h2_clients"`
	H2Streams      int    `json:"h2_streams"`
}

func settingsOf(o *options) settings {
	return settings{Quick: o.quick, Threads: o.threads, Connections: o.conns, Duration: o.duration.String(),
		Warmup: o.warmup.String(), BigConnections: o.bigConns, BigDuration: o.bigDuration.String(),
		CloseDuration: o.closeDur.String(), IdleConns: o.idleConns, H2Duration: o.h2Duration.String(),
		H2Clients: o.h2Clients, H2Streams: o.h2Streams}
}

// report is everything one run of the program produced; it is also the
// JSON file.
type report struct {
	Started   time.Time         `json:"started"`
	Finished  time.Time         `json:"finished"`
	Machine   benchkit.Machine  `json:"machine"`
	Versions  map[string]string `json:"versions"`
	Settings  settings          `json:"settings"`
	Nofile    uint64            `json:"open_files_limit"`
	Dir       string            `json:"work_dir"`
	Scenarios []string          `json:"scenarios"`
	Runs      []*runResult      `json:"runs"`
}

// runsOf returns the runs of one scenario, in order.
func (r *report) runsOf(scen string) []*runResult {
	var out []*runResult
	for _, run := range r.Runs {
		if run.Scenario == scen {
			out = append(out, run)
		}
	}
	return out
}

// rowsOf returns a scenario's runs, one per contender and access-log
// setting, in order: of a scenario run in rounds, the median run by
// requests per second (the lower of the two middle ones for an even
// count), failed rounds counting as the slowest.
func (r *report) rowsOf(scen string) []*runResult {
	type key struct {
		contender string
		logs      bool
	}
	groups := map[key][]*runResult{}
	var order []key
	for _, run := range r.runsOf(scen) {
		k := key{run.Contender, run.LogsOn}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], run)
	}
	out := make([]*runResult, 0, len(order))
	for _, k := range order {
		g := slices.Clone(groups[k])
		slices.SortStableFunc(g, func(a, b *runResult) int {
			ra, rb := rpsOf(a), rpsOf(b)
			if a.Err != "" {
				ra = -1
			}
			if b.Err != "" {
				rb = -1
			}
			switch {
			case ra < rb:
				return -1
			case ra > rb:
				return 1
			}
			return 0
		})
		out = append(out, g[(len(g)-1)/2])
	}
	return out
}

// roundsOf returns the runs of a contender's row that were rounds of a
// repeated scenario (none for a single run).
func (r *report) roundsOf(row *runResult) []*runResult {
	var out []*runResult
	for _, run := range r.runsOf(row.Scenario) {
		if run.Contender == row.Contender && run.LogsOn == row.LogsOn && run.Round > 0 {
			out = append(out, run)
		}
	}
	return out
}

// find returns the row of a contender (access log off) in a scenario that
// succeeded, or nil.
func (r *report) find(scen, contender string) *runResult {
	for _, run := range r.rowsOf(scen) {
		if run.Contender == contender && !run.LogsOn && run.Err == "" {
			return run
		}
	}
	return nil
}

// roundsNote says, under a table of a scenario run in rounds, what each
// row is and every round's requests per second.
func (r *report) roundsNote(scen string) string {
	var b strings.Builder
	for _, row := range r.rowsOf(scen) {
		rs := r.roundsOf(row)
		if len(rs) < 2 {
			continue
		}
		if b.Len() == 0 {
			fmt.Fprintf(&b, "\nEach row without the access log is the median of %d rounds (every contender once per round, in turn); requests/s of each round:", len(rs))
		}
		vals := make([]string, len(rs))
		for i, run := range rs {
			vals[i] = "failed"
			if run.Err == "" {
				vals[i] = num(rpsOf(run))
			}
		}
		fmt.Fprintf(&b, " %s %s;", row.Contender, strings.Join(vals, ", "))
	}
	if b.Len() == 0 {
		return ""
	}
	note := strings.TrimSuffix(b.String(), ";") + "."
	if pairs := r.pairedRounds(scen, "gatewise", "nginx"); pairs != "" {
		note += " gatewise ÷ nginx, in each round (their runs back to back): " + pairs + "."
	}
	return note + "\n"
}

// pairedRounds returns the ratio a ÷ b of requests/s in each round of a
// scenario run in rounds, "0.85, 0.86, failed", or "" when either has no
// rounds or their counts differ.
func (r *report) pairedRounds(scen, a, b string) string {
	ra, rb := r.find(scen, a), r.find(scen, b)
	if ra == nil || rb == nil {
		return ""
	}
	as, bs := r.roundsOf(ra), r.roundsOf(rb)
	if len(as) < 2 || len(as) != len(bs) {
		return ""
	}
	vals := make([]string, len(as))
	for i := range as {
		vals[i] = "failed"
		if as[i].Err == "" && bs[i].Err == "" && rpsOf(bs[i]) > 0 {
			vals[i] = fmt.Sprintf("%.2f", rpsOf(as[i])/rpsOf(bs[i]))
		}
	}
	return strings.Join(vals, ", ")
}

// ratio formats a/b as "0.93×", or "—" when b is unknown.
func ratio(a, b float64) string {
	if b <= 0 || a <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// ms formats milliseconds with a precision that fits.
func ms(v float64) string {
	switch {
	case v <= 0:
		return "—"
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// us formats a CPU time per request in microseconds.
func us(v float64) string {
	if v <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f µs", v)
}

// num formats a count with thousands separators.
func num(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[0] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// rpsOf is a run's requests per second, 0 when unknown.
func rpsOf(run *runResult) float64 {
	switch {
	case run == nil:
		return 0
	case run.Wrk != nil:
		return run.Wrk.OKRPS
	case run.H2 != nil:
		return run.H2.OKRPS
	}
	return 0
}

func p99Of(run *runResult) float64 {
	if run == nil || run.Wrk == nil {
		return 0
	}
	return run.Wrk.P99ms
}

// table returns one scenario's Markdown table.
func (r *report) table(scen string) string {
	var b strings.Builder
	nginx, direct := r.find(scen, "nginx"), r.find(scen, "direct")
	failedRow := func(run *runResult, cols int) {
		fmt.Fprintf(&b, "| %s | failed: %s |%s\n", run.label(), cell(run.Err), strings.Repeat(" |", cols-2))
	}
	switch scen {
	case scenSmall, scenClose, scenBig, scenTLS:
		extra := ""
		if scen == scenBig {
			extra = " MiB/s |"
		}
		fmt.Fprintf(&b, "| contender | requests/s |%s × nginx | × direct | p50 | p99 | p99 × nginx | proxy CPU/request | upstream CPU/request | errors |\n", extra)
		fmt.Fprintf(&b, "|---|---:|%s---:|---:|---:|---:|---:|---:|---:|---:|\n", strings.Repeat("---:|", len(extra)/len(" MiB/s |")))
		cols := 10 + len(extra)/len(" MiB/s |")
		for _, run := range r.rowsOf(scen) {
			if run.Err != "" || run.Wrk == nil {
				failedRow(run, cols)
				continue
			}
			w := run.Wrk
			mib := ""
			if scen == scenBig {
				mib = fmt.Sprintf(" %.0f |", w.OKRPS*bigSize/(1<<20))
			}
			fmt.Fprintf(&b, "| %s | %s |%s %s | %s | %s | %s | %s | %s | %s | %s |\n", run.label(), num(w.OKRPS), mib,
				ratio(w.OKRPS, rpsOf(nginx)), ratio(w.OKRPS, rpsOf(direct)), ms(w.P50ms), ms(w.P99ms), ratio(w.P99ms, p99Of(nginx)),
				us(run.ProxyCPUus), us(run.UpstreamCPUus), num(float64(w.Non2xx+w.SocketErrs)))
		}
	case scenH2:
		b.WriteString("| contender | requests/s | × nginx | × direct | mean | max | proxy CPU/request | upstream CPU/request | errors |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, run := range r.rowsOf(scen) {
			if run.Err != "" || run.H2 == nil {
				failedRow(run, 9)
				continue
			}
			h := run.H2
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", run.label(), num(h.OKRPS),
				ratio(h.OKRPS, rpsOf(nginx)), ratio(h.OKRPS, rpsOf(direct)), ms(h.MeanMs), ms(h.MaxMs),
				us(run.ProxyCPUus), us(run.UpstreamCPUus), num(float64(h.Non2xx+h.Errors)))
		}
	case scenIdle:
		b.WriteString("| contender | open at the measurement | memory before | memory after | per connection | × nginx | processes (memory counted) |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---|\n")
		nk := 0.0
		if nginx != nil {
			nk = nginx.KiBPerConn
		}
		for _, run := range r.rowsOf(scen) {
			if run.Err != "" || run.Idle == nil {
				failedRow(run, 7)
				continue
			}
			who := "the proxy"
			if run.Contender == "direct" {
				who = "the upstream"
			}
			fmt.Fprintf(&b, "| %s | %s of %s | %.1f MiB | %.1f MiB | %.1f KiB | %s | %s: %d (%s) |\n", run.label(),
				num(float64(run.Idle.StillOp)), num(float64(run.Idle.Wanted)),
				float64(run.MemBefore.Bytes)/(1<<20), float64(run.MemAfter.Bytes)/(1<<20), run.KiBPerConn,
				ratio(run.KiBPerConn, nk), who, run.MemAfter.Procs, run.MemAfter.Kind)
		}
	}
	b.WriteString(r.roundsNote(scen))
	return b.String()
}

// tables returns every scenario's table, with its heading, for stdout.
func (r *report) tables() string {
	var b strings.Builder
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, "\n### %s\n\n%s", scenarioTitle(s), r.table(s))
	}
	return b.String()
}

// scenarioText says what a scenario does, for the page.
func (r *report) scenarioText(s string) string {
	st := r.Settings
	switch s {
	case scenSmall:
		return fmt.Sprintf("GET /small (a 13-byte body) on %d keep-alive connections from %d wrk threads for %s, after a %s warm-up.",
			st.Connections, st.Threads, st.Duration, st.Warmup)
	case scenBig:
		return fmt.Sprintf("GET /1mb (1 MiB from the upstream's memory) on %d keep-alive connections for %s; MiB/s counts the bodies only.",
			st.BigConnections, st.BigDuration)
	case scenClose:
		return fmt.Sprintf("GET /small with `Connection: close` on %d connections for %s: a TCP connection per request from the client; the proxies keep theirs to the upstream.",
			st.Connections, st.CloseDuration)
	case scenIdle:
		return fmt.Sprintf("%s TCP connections that each sent one GET /small and read its answer, then stay idle. The memory is the private memory (Private_Clean + Private_Dirty from /proc/PID/smaps_rollup: the pages no other process maps, so that programs starting or exiting elsewhere do not move it) summed over the proxy's processes, read before the connections are opened and a second after; per connection is the difference divided by the connections still open then. The open-files limit was %d and cannot be raised without CAP_SYS_RESOURCE; HAProxy reserves two files per connection (client and server) and refuses to start when its maxconn needs more, so its maxconn was %s.",
			num(float64(st.IdleConns)), r.Nofile, num(float64(haproxyMaxconn(params{maxConns: st.IdleConns + 1024, nofile: int(min(r.Nofile, 1<<20))}))))
	case scenTLS:
		return fmt.Sprintf("GET /small over HTTP/1.1 and TLS (wrk offers no ALPN; the same certificate as HTTP/2's) on %d keep-alive connections for %s; the proxies talk plain HTTP/1.1 to the upstream, and direct is the upstream's own TLS listener.",
			st.Connections, st.CloseDuration)
	case scenH2:
		return fmt.Sprintf("GET /small over HTTP/2 and TLS 1.3 (self-signed ECDSA P-256 certificate) from h2load: %d connections, %d concurrent streams each, for %s; the proxies talk HTTP/1.1 to the upstream, and direct is the upstream's own TLS listener. h2load gives the mean and the maximum time per request, no percentiles.",
			st.H2Clients, st.H2Streams, st.H2Duration)
	}
	return ""
}

// markdown returns the docs/benchmarks.md page; svgRef is the chart's path
// relative to the page, empty for none.
func (r *report) markdown(svgRef string) string {
	var b strings.Builder
	b.WriteString(`# Benchmarks: gatewise beside nginx, HAProxy and Caddy

<!-- Generated by bench/run (bench/compare/); rerun it, or rewrite it from a run's results.json with "go run ./bench/compare page -json FILE -out docs/benchmarks.md -svg docs/benchmarks.svg", rather than editing this page. -->

The same upstream, on the same machine, behind each proxy in turn with its
documented best-practice reverse-proxy config (upstream keep-alive on,
access log off), and on its own (**direct**: the limit no proxy can pass).

## How to read it

The load generator (wrk or h2load), the proxy and the upstream all run on
the same machine and share its CPUs. A proxy that spends more CPU per
request leaves less to the load generator and the upstream, so
**requests/s measures the whole path's CPU efficiency**, not a proxy's
capacity on a machine of its own. **CPU/request** is the user and system
time of the proxy's processes (nginx's master and workers, HAProxy's and
Caddy's threads, gatewise's) from /proc/PID/stat over the measured run,
divided by the requests answered: the cost a proxy adds per request,
whatever else runs. **requests/s** counts the successful (2xx) answers only, so that a proxy
cannot win by refusing fast; CPU/request divides by every answer;
**errors** are the other answers and the socket errors. **× nginx** and **× direct** are ratios to nginx's and
to the upstream's own figure in the same run (higher requests/s is better;
a p99 ratio above 1 is worse). Small GETs without the access log are run
in rounds (every contender once per round, in turn) and each row is that
contender's median round, with every round's figure under the table: on a
shared machine one run can move by a third. Every other figure is one
run: rerun before reading
much into a difference of a few percent.

## Running it

` + "```sh" + `
bench/run                          # every contender and scenario, about 8 minutes
bench/run --quick                  # a smoke run, about a minute
bench/run --contenders direct,gatewise,nginx --scenarios small,idle
bench/run --gatewise BIN           # use a gatewise binary already built
` + "```" + `

As root on Debian or Ubuntu the script installs nginx, HAProxy, Caddy, wrk
and h2load (nghttp2-client) with apt-get when they are missing; otherwise
it prints the install line. It builds gatewise and ` + "`bench/compare`" + `, and for
every contender and scenario starts a fresh upstream (a plain Go net/http
server, ` + "`compare upstream`" + `, in a process of its own) and a fresh proxy on free
loopback ports, so that no run inherits another's connections, buffers or
heap. It writes this page, the chart, and ` + "`results.json`" + ` with every
config, log and tool output in its work directory under /tmp.

Three more side-by-side benchmarks have commands and pages of their own:
PHP through PHP-FPM beside nginx (` + "`bash bench/fastcgi.sh`" + `,
[fastcgi-bench.md](fastcgi-bench.md)), failing upstreams beside nginx and
HAProxy (` + "`bash bench/chaos.sh`" + `, [chaos.md](chaos.md)), and an
overloaded upstream (` + "`bash bench/overload.sh`" + `, [overload.md](overload.md)).

## Results

`)
	fmt.Fprintf(&b, "%s, %s. Open-files limit %d.", r.Started.Format("2006-01-02 15:04 UTC"), r.Machine.Describe(), r.Nofile)
	if r.Settings.Quick {
		b.WriteString(" **A --quick smoke run: short durations, fewer idle connections.**")
	}
	b.WriteString("\n\n")
	if svgRef != "" {
		fmt.Fprintf(&b, "![Small keep-alive GETs: requests per second and p99 latency per contender](%s)\n\n", svgRef)
	}
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, "### %s\n\n%s\n\n%s", scenarioTitle(s), r.scenarioText(s), r.table(s))
		if cmd := r.command(s); cmd != "" {
			fmt.Fprintf(&b, "\nMeasured with `%s` (the address is the contender's).\n", cmd)
		}
		b.WriteString("\n")
	}
	b.WriteString(`The **(log on)** rows are the same small GETs with each proxy's access log
written to a file (nginx buffered, 64 KiB; HAProxy to stderr; Caddy and
gatewise their JSON lines): every other row has the access log off.

Versions:

`)
	for _, k := range slices.Sorted(maps.Keys(r.Versions)) {
		fmt.Fprintf(&b, "- %s: `%s`\n", k, r.Versions[k])
	}
	b.WriteString(`
## Configs

Each proxy's choices, beyond its defaults:

- **gatewise**: its defaults (upstream keep-alive with 64 idle connections
  per target), the access log off, the admin listener off, and the
  per-client-IP connection limit off (every client here is 127.0.0.1).
- **nginx**: ` + "`worker_processes auto`" + ` (one per core), ` + "`reuseport`" + ` listeners,
  ` + "`keepalive 64`" + ` to the upstream with ` + "`proxy_http_version 1.1`" + ` and an empty
  Connection header, the forwarding headers every guide sets (` + "`Host`" + `,
  ` + "`X-Real-IP`" + `, ` + "`X-Forwarded-For`" + `, ` + "`X-Forwarded-Proto`" + `: gatewise and Caddy
  send theirs by default, so the upstream parses as much behind each),
  ` + "`keepalive_requests`" + ` raised from its default of 1000
  (which makes wrk reconnect every thousand requests, on both sides),
  ` + "`proxy_buffers 16 64k`" + ` (the default of 8 × 4 KiB halves its 1 MiB
  throughput here) and ` + "`proxy_max_temp_file_size 0`" + ` (a response beyond
  the buffers is streamed, not spooled to a temporary file), ` + "`worker_connections`" + ` and
  ` + "`worker_rlimit_nofile`" + ` for the idle connections.
- **HAProxy**: ` + "`nbthread`" + ` = cores, ` + "`option forwardfor`" + `, ` + "`http-reuse always`" + ` (the default ` + "`safe`" + `
  sends the first request of each client connection on a server connection
  of its own, so with ` + "`Connection: close`" + ` every request would open one;
  ` + "`always`" + ` shares idle server connections as nginx's and Go's pools do, and
  the race it risks, an upstream closing an idle connection as a request
  is sent, cannot happen with this upstream), ` + "`maxconn`" + ` for the idle
  connections, keep-alive timeouts of 300s, no logging.
- **Caddy**: ` + "`reverse_proxy`" + ` with the admin endpoint off, no access log (Caddy
  logs requests only with a ` + "`log`" + ` directive), HTTP/3 off (h1 and h2, as the
  others), automatic HTTPS off (the certificate is given), and 128 idle
  upstream connections per host (its default of 32 is below the load's 50
  connections).

The configs of the small-GET runs follow; the addresses and the work
directory change from run to run.
`)
	for _, run := range r.rowsOf(r.Scenarios[0]) {
		if run.Config == "" || run.LogsOn {
			continue
		}
		fmt.Fprintf(&b, "\n### %s\n\n```%s\n%s```\n", run.Contender, run.Lang, run.Config)
	}
	return b.String()
}

// command is the measured command of a scenario's first successful run.
func (r *report) command(scen string) string {
	for _, run := range r.runsOf(scen) {
		if run.Err == "" && len(run.Commands) > 0 {
			return run.Commands[0]
		}
	}
	return ""
}
