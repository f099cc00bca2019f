package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Bounds that Validate enforces.
const (
	// MinHeaderBytes is the smallest header limit accepted: below it,
	// ordinary requests and responses would be refused.
	MinHeaderBytes ByteSize = 1 << 10
	// MaxHeaderBytes is the largest header limit accepted: above it, a
	// visitor or an upstream could hold that much memory per connection.
	MaxHeaderBytes ByteSize = 64 << 20
	// MaxAccessLogBuffer is the largest access_log_buffer accepted.
	MaxAccessLogBuffer ByteSize = 16 << 20
	// MaxAccessLogFlush is the longest access_log_flush accepted.
	MaxAccessLogFlush = time.Minute
	// MaxShutdownTimeout is the longest shutdown_timeout accepted.
	MaxShutdownTimeout = time.Hour
	// MinWeight and MaxWeight bound Target.Weight.
	MinWeight, MaxWeight = 1, 1000
)

// Validate checks the config for impossible or unsafe values and returns
// nil, or an *Errors holding every problem found, each naming the field and,
// for a config from Parse, the file and line; sorted by line. Call
// ApplyDefaults first: Validate refuses zeros that defaults would fill.
//
// Validate reads the files the config names (TLS certificates and keys,
// CA bundles, the error page directory) and checks that the access log
// can be written, as the user running it: run it as the gateway's user.
// It opens no sockets.
func (c *Config) Validate() error {
	return asError(c.validate(true))
}

// validate returns every problem; files says whether to look at the files
// the config names.
func (c *Config) validate(files bool) []FieldError {
	v := &validator{c: c, files: files}
	v.listeners()
	v.admin()
	v.accessLog()
	v.errorPages()
	for i, s := range c.Forwarding.TrustedProxies {
		v.cidr(fmt.Sprintf("forwarding.trusted_proxies[%d]", i), s)
	}
	v.limits()
	v.abuse()
	v.pools()
	v.routes()
	return dedupe(v.errs)
}

// validator collects the problems of one config.
type validator struct {
	c     *Config
	files bool
	errs  []FieldError
}

func (v *validator) errorf(field, format string, args ...any) {
	if v.full() {
		return // asError says that some were left out
	}
	v.errs = append(v.errs, newFieldError(v.c.File, v.c.Line(field), field, fmt.Sprintf(format, args...)))
}

// full reports whether enough problems were found to stop looking.
func (v *validator) full() bool {
	return len(v.errs) > maxErrors
}

// bind is an address something listens on, to find clashes.
type bind struct {
	field string
	addr  string
	host  string // normalized: an IP's canonical form, a name lowercased, "" for any
	port  int
}

func (v *validator) listeners() {
	c := v.c
	if len(c.Listeners) == 0 {
		v.errorf("listeners", "none: add at least one, such as \"- address: 0.0.0.0:80\"")
	}
	var binds []bind
	// The admin listener first, so that a clash with it is reported on
	// the listener, whose line is in the file even when admin is not.
	if a := c.Admin.Address; a != "" && a != "off" {
		if b, ok := parseHostPort(a); ok {
			b.field = "admin.address"
			if c.src != nil && !c.isSet("admin.address") {
				b.field = "admin.address (the default)"
			}
			binds = append(binds, b)
		}
	}
	for i, l := range c.Listeners {
		lp := fmt.Sprintf("listeners[%d]", i)
		if l.Address == "" {
			v.errorf(lp+".address", "required, such as 0.0.0.0:80")
		} else if b, ok := v.hostPort(lp+".address", l.Address); ok {
			binds = append(binds, b)
		}
		if l.TLS != nil {
			v.listenerTLS(lp+".tls", l.TLS)
		}
	}
	v.clashes(binds)
}

// clashes reports addresses that cannot all be listened on: the same
// address twice, or a port taken on every address and also on one.
func (v *validator) clashes(binds []bind) {
	type port struct {
		first bind            // the first address on the port
		any   *bind           // the first address on the port that is every address
		hosts map[string]bind // the first address per host
	}
	ports := map[int]*port{}
	for _, b := range binds {
		if b.port == 0 {
			continue // a free port picked by the kernel: no clash
		}
		p, seen := ports[b.port]
		if !seen {
			p = &port{first: b, hosts: map[string]bind{}}
			ports[b.port] = p
		}
		var wild bind
		switch a, dup := p.hosts[b.host]; {
		case dup:
			v.errorf(b.field, "%s is already used by %s", b.addr, a.field)
			continue
		case !seen:
		case p.any != nil:
			wild = *p.any
			v.errorf(b.field, "port %d is also used by %s (%s), and %s listens on every address", b.port, wild.field, wild.addr, wild.addr)
		case b.host == "":
			wild = p.first
			v.errorf(b.field, "port %d is also used by %s (%s), and %s listens on every address", b.port, wild.field, wild.addr, b.addr)
		}
		p.hosts[b.host] = b
		if b.host == "" && p.any == nil {
			p.any = &b
		}
	}
}

// parseHostPort splits a host:port address, without reporting problems.
func parseHostPort(addr string) (bind, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return bind{}, false
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return bind{}, false
	}
	b := bind{addr: addr, port: p, host: strings.ToLower(host)}
	if ip, err := netip.ParseAddr(host); err == nil {
		b.host = ip.Unmap().String()
		if ip.IsUnspecified() {
			b.host = ""
		}
	}
	return b, true
}

// hostPort checks a host:port listening address.
func (v *validator) hostPort(field, addr string) (bind, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		hint := ""
		switch {
		case strings.Contains(err.Error(), "missing port"):
			hint = " (missing port)"
		case strings.Contains(err.Error(), "too many colons"):
			hint = " (write an IPv6 address in brackets, such as [::1]:80)"
		}
		v.errorf(field, "want host:port, such as 0.0.0.0:80, got %q%s", addr, hint)
		return bind{}, false
	}
	ok := true
	if p, err := strconv.Atoi(port); err != nil {
		v.errorf(field, "port %q is not a number", port)
		ok = false
	} else if p < 0 || p > 65535 {
		// Port 0 asks the kernel for a free port (tests, the demo).
		v.errorf(field, "port %d is out of range 0-65535", p)
		ok = false
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
			v.errorf(field, "host %q is neither an IP address nor a host name", host)
			ok = false
		}
	}
	if !ok {
		return bind{}, false
	}
	b, _ := parseHostPort(addr)
	b.field = field
	return b, true
}

// readable reads a file the config names, returning a problem to report
// when it cannot be read.
func readable(path string) ([]byte, string) {
	data, err := os.ReadFile(path)
	if err == nil {
		return data, ""
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return nil, fmt.Sprintf("cannot read %q: %v", path, err)
}

func (v *validator) listenerTLS(field string, t *ListenerTLS) {
	if t.Cert == "" {
		v.errorf(field+".cert", "required: the path of the PEM certificate chain")
	}
	if t.Key == "" {
		v.errorf(field+".key", "required: the path of the PEM private key")
	}
	if !v.files || t.Cert == "" || t.Key == "" {
		return
	}
	cert, problem := readable(t.Cert)
	if problem != "" {
		v.errorf(field+".cert", "%s", problem)
	}
	key, kproblem := readable(t.Key)
	if kproblem != "" {
		v.errorf(field+".key", "%s", kproblem)
	}
	if problem != "" || kproblem != "" {
		return
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		v.errorf(field, "cert %q and key %q do not make a pair: %v", t.Cert, t.Key, strings.TrimPrefix(err.Error(), "tls: "))
	}
}

func (v *validator) admin() {
	a := v.c.Admin
	switch {
	case a.Address == "off":
		return
	case a.Address == "":
		v.errorf("admin.address", `empty: write "off" to disable the admin listener, or leave the key out for %s`, DefaultAdminAddress)
		return
	}
	b, ok := v.hostPort("admin.address", a.Address)
	if !ok || a.AllowRemote || b.host == "localhost" {
		return
	}
	if ip, err := netip.ParseAddr(b.host); err == nil && ip.IsLoopback() {
		return
	}
	v.errorf("admin.address", "%s is not a loopback address: the admin listener shows internal detail and controls the gateway; "+
		"bind it to 127.0.0.1, or set admin.allow_remote: true behind a firewall", a.Address)
}

func (v *validator) accessLog() {
	switch b := v.c.AccessLogBuffer; {
	case b < 0:
		v.errorf("access_log_buffer", "must not be negative, got %s", b)
	case b > MaxAccessLogBuffer:
		v.errorf("access_log_buffer", "%s is more than %s: a crash would lose that much of the log", b, MaxAccessLogBuffer)
	}
	v.positive("access_log_flush", v.c.AccessLogFlush, DefaultAccessLogFlush)
	if d := v.c.AccessLogFlush.Duration; d > MaxAccessLogFlush {
		v.errorf("access_log_flush", "%s is more than %s: lines would wait that long to be written", fmtDuration(d), fmtDuration(MaxAccessLogFlush))
	}
	switch p := v.c.AccessLog; p {
	case "stdout", "stderr", "off":
	case "":
		v.errorf("access_log", `empty: write "off" to disable the access log, or leave the key out for %s`, DefaultAccessLog)
	default:
		if v.files {
			if problem := appendable(p); problem != "" {
				v.errorf("access_log", "%s", problem)
			}
		}
	}
}

// appendable returns why the file at path cannot be opened for appending
// (creating it if needed) by the current user, or "".
func appendable(path string) string {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Sprintf("%q is a directory: want a file path, or stdout, stderr or off", path)
	case err == nil:
		if err := writable(path); err != nil {
			return fmt.Sprintf("%q is not writable: %v", path, err)
		}
		return ""
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("cannot use %q: %v", path, unwrapPath(err))
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("directory %q does not exist", dir)
	case err != nil:
		return fmt.Sprintf("cannot use directory %q: %v", dir, unwrapPath(err))
	case !di.IsDir():
		return fmt.Sprintf("%q is not a directory", dir)
	}
	if err := writable(dir); err != nil {
		return fmt.Sprintf("cannot create the file: directory %q is not writable: %v", dir, err)
	}
	return ""
}

// unwrapPath returns the error inside a *fs.PathError, whose path the
// message already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// templateFiles returns the names of the files that replace the built-in
// error pages.
func templateFiles() []string {
	return []string{"page.html", "problem.json", "page.txt"}
}

func (v *validator) errorPages() {
	ep := v.c.ErrorPages
	if dir := ep.Templates; dir != "" && v.files {
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			v.errorf("error_pages.templates", "directory %q does not exist", dir)
		case err != nil:
			v.errorf("error_pages.templates", "cannot use %q: %v", dir, unwrapPath(err))
		case !fi.IsDir():
			v.errorf("error_pages.templates", "%q is not a directory", dir)
		default:
			found := false
			for _, name := range templateFiles() {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					found = true
				}
			}
			if !found {
				v.errorf("error_pages.templates", "directory %q holds none of %s: it would replace nothing",
					dir, strings.Join(templateFiles(), ", "))
			}
		}
	}
	for i, s := range ep.ShowDetailsTo {
		v.cidr(fmt.Sprintf("error_pages.show_details_to[%d]", i), s)
	}
}

// cidr checks a network written in CIDR form.
func (v *validator) cidr(field, s string) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if ip, err := netip.ParseAddr(s); err == nil {
			v.errorf(field, "want a network in CIDR form, got the address %q: write %s/%d for that address alone", s, ip, ip.BitLen())
			return
		}
		v.errorf(field, "want a network in CIDR form, such as 10.0.0.0/8, got %q", s)
		return
	}
	if p != p.Masked() {
		v.errorf(field, "%q has bits set after the /%d prefix: did you mean %s?", s, p.Bits(), p.Masked())
	}
}

// positive checks a duration that must be more than zero; def is its
// default, for the hint.
func (v *validator) positive(field string, d Duration, def time.Duration) {
	switch {
	case d.Duration < 0:
		v.errorf(field, "must not be negative, got %s", fmtDuration(d.Duration))
	case d.Duration == 0:
		v.errorf(field, "must be more than 0 (leave the key out for the default, %s)", fmtDuration(def))
	}
}

// nonNegative checks a duration that may be zero.
func (v *validator) nonNegative(field string, d Duration) {
	if d.Duration < 0 {
		v.errorf(field, "must not be negative, got %s", fmtDuration(d.Duration))
	}
}

// fmtDuration writes d as a Go duration without the zero units that
// time.Duration.String adds: "2h" rather than "2h0m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// headerBytes checks a header size limit.
func (v *validator) headerBytes(field string, b ByteSize) {
	switch {
	case b < MinHeaderBytes:
		v.errorf(field, "%s is too small: ordinary headers would be refused (at least %s)", b, MinHeaderBytes)
	case b > MaxHeaderBytes:
		v.errorf(field, "%s is too large: each connection could hold that much memory (at most %s)", b, MaxHeaderBytes)
	}
}

func (v *validator) limits() {
	c := v.c
	v.headerBytes("limits.request_header_bytes", c.Limits.RequestHeaderBytes)
	v.headerBytes("limits.response_header_bytes", c.Limits.ResponseHeaderBytes)
	v.positive("limits.read_header_timeout", c.Limits.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	v.positive("limits.client_idle_timeout", c.Limits.ClientIdleTimeout, DefaultClientIdleTimeout)
	v.nonNegative("limits.client_park_after", c.Limits.ClientParkAfter)
	v.positive("shutdown_timeout", c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.ShutdownTimeout.Duration > MaxShutdownTimeout {
		v.errorf("shutdown_timeout", "%s is more than %s: a restart would wait that long for a stuck request",
			fmtDuration(c.ShutdownTimeout.Duration), fmtDuration(MaxShutdownTimeout))
	}
}

// poolNames returns the names of the pools, sorted.
func (c *Config) poolNames() []string {
	names := make([]string, 0, len(c.Pools))
	for n := range c.Pools {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// validPoolName reports whether a pool name is letters, digits, '-', '_'
// and '.'.
func validPoolName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func (v *validator) pools() {
	c := v.c
	if len(c.Pools) == 0 {
		v.errorf("pools", "none: add at least one pool with targets")
	}
	for _, name := range c.poolNames() {
		if v.full() {
			return
		}
		pp := "pools." + name
		p := c.Pools[name]
		if !validPoolName(name) {
			v.errorf(pp, "pool name %q: use only letters, digits, '-', '_' and '.'", name)
		}
		if p == nil {
			v.errorf(pp, "empty: add targets")
			continue
		}
		if len(p.Targets) == 0 {
			v.errorf(pp+".targets", "none: add at least one, such as \"- url: http://127.0.0.1:8080\"")
		}
		seen := map[string]int{}
		kinds := targetKinds{}
		for i, t := range p.Targets {
			tp := fmt.Sprintf("%s.targets[%d]", pp, i)
			if key, ok := v.targetURL(tp+".url", t.URL); ok {
				v.targetKind(tp+".url", key, &kinds)
				if j, dup := seen[key]; dup {
					v.errorf(tp+".url", "same target as targets[%d]: raise its weight instead", j)
				} else {
					seen[key] = i
				}
			}
			switch {
			case t.Weight < MinWeight:
				v.errorf(tp+".weight", "must be at least %d, got %d (remove the target to send it nothing)", MinWeight, t.Weight)
			case t.Weight > MaxWeight:
				v.errorf(tp+".weight", "must be at most %d, got %d", MaxWeight, t.Weight)
			}
		}
		to := p.Timeouts
		v.positive(pp+".timeouts.dial", to.Dial, DefaultDialTimeout)
		v.positive(pp+".timeouts.tls_handshake", to.TLSHandshake, DefaultTLSHandshakeTimeout)
		v.positive(pp+".timeouts.response_header", to.ResponseHeader, DefaultResponseHeaderTimeout)
		v.nonNegative(pp+".timeouts.idle", to.Idle)
		v.nonNegative(pp+".timeouts.request", to.Request)
		if p.MaxIdlePerTarget < 0 {
			v.errorf(pp+".max_idle_per_target", "must not be negative, got %d", p.MaxIdlePerTarget)
		}
		v.upstreamTLS(pp+".tls", p.TLS)
		v.resilience(pp, p)
		v.fastcgi(pp, p, kinds)
	}
}

// resilience checks a pool's selection, health, outlier and retry
// settings.
func (v *validator) resilience(pp string, p *Pool) {
	switch p.Policy {
	case "p2c_ewma", "round_robin", "least_requests", "hash":
	default:
		v.errorf(pp+".policy", "unknown policy %q: use p2c_ewma, round_robin, least_requests or hash", p.Policy)
	}
	if p.HashKey != "client_ip" {
		kind, name, ok := strings.Cut(p.HashKey, ":")
		if !ok || (kind != "header" && kind != "cookie") || name == "" || strings.ContainsAny(name, " \t:;,=") {
			v.errorf(pp+".hash_key", "want client_ip, header:NAME or cookie:NAME, got %q", p.HashKey)
		}
	}
	primaries := 0
	for _, t := range p.Targets {
		if !t.Backup {
			primaries++
		}
	}
	if len(p.Targets) > 0 && primaries == 0 {
		v.errorf(pp+".targets", "every target is a backup: mark at least one as a primary (backup: false)")
	}
	v.nonNegative(pp+".slow_start", p.SlowStart)
	if h := p.Health; h != nil {
		hp := pp + ".health"
		switch {
		case h.TCP && h.Path != "":
			v.errorf(hp+".path", "set either path (an HTTP check) or tcp: true, not both")
		case !h.TCP && h.Path == "":
			v.errorf(hp+".path", "required for an HTTP check, such as /healthz (or set tcp: true)")
		case h.Path != "" && !strings.HasPrefix(h.Path, "/"):
			v.errorf(hp+".path", "must start with /, got %q", h.Path)
		}
		v.positive(hp+".interval", h.Interval, DefaultHealthInterval)
		v.positive(hp+".timeout", h.Timeout, DefaultHealthTimeout)
		if h.Timeout.Duration > 0 && h.Interval.Duration > 0 && h.Timeout.Duration > h.Interval.Duration {
			v.errorf(hp+".timeout", "%s is longer than the interval %s: checks would overlap", fmtDuration(h.Timeout.Duration), fmtDuration(h.Interval.Duration))
		}
		for i, st := range h.ExpectStatus {
			if !validStatusPattern(st) {
				v.errorf(fmt.Sprintf("%s.expect_status[%d]", hp, i), "want a status such as 200 or a class such as 2xx, got %q", st)
			}
		}
		if h.ExpectBody != "" {
			if _, err := regexp.Compile(h.ExpectBody); err != nil {
				v.errorf(hp+".expect_body", "not a regular expression: %v", err)
			}
		}
		if h.Rise < 1 || h.Rise > 100 {
			v.errorf(hp+".rise", "must be 1 to 100, got %d", h.Rise)
		}
		if h.Fall < 1 || h.Fall > 100 {
			v.errorf(hp+".fall", "must be 1 to 100, got %d", h.Fall)
		}
	}
	o := p.Outlier
	op := pp + ".outlier"
	if o.ConsecutiveFailures != nil && *o.ConsecutiveFailures < 0 {
		v.errorf(op+".consecutive_failures", "must not be negative (0 disables it), got %d", *o.ConsecutiveFailures)
	}
	if o.Consecutive5xx != nil && *o.Consecutive5xx < 0 {
		v.errorf(op+".consecutive_5xx", "must not be negative (0 disables it), got %d", *o.Consecutive5xx)
	}
	v.positive(op+".base_ejection", o.BaseEjection, DefaultBaseEjection)
	v.positive(op+".max_ejection", o.MaxEjection, DefaultMaxEjection)
	if o.MaxEjection.Duration > 0 && o.MaxEjection.Duration < o.BaseEjection.Duration {
		v.errorf(op+".max_ejection", "%s is shorter than base_ejection %s", fmtDuration(o.MaxEjection.Duration), fmtDuration(o.BaseEjection.Duration))
	}
	if o.MaxEjectedPercent != nil && (*o.MaxEjectedPercent < 0 || *o.MaxEjectedPercent > 100) {
		v.errorf(op+".max_ejected_percent", "must be 0 to 100, got %d", *o.MaxEjectedPercent)
	}
	cc := p.Concurrency
	cp := pp + ".concurrency"
	if cc.MaxInFlight < 0 || cc.MaxInFlight > 1_000_000 {
		v.errorf(cp+".max_in_flight", "must be 0 (learn the limit) to 1000000, got %d", cc.MaxInFlight)
	}
	if cc.MaxInFlight > 0 && cc.Adaptive != nil && *cc.Adaptive {
		v.errorf(cp+".adaptive", "set either max_in_flight (a fixed limit) or adaptive: true, not both")
	}
	if cc.MinLimit < 1 || cc.MaxLimit < cc.MinLimit || cc.MaxLimit > 1_000_000 {
		v.errorf(cp+".min_limit", "want 1 <= min_limit <= max_limit <= 1000000, got %d and %d", cc.MinLimit, cc.MaxLimit)
	}
	if cc.Queue != nil && (*cc.Queue < 0 || *cc.Queue > 1_000_000) {
		v.errorf(cp+".queue", "must be 0 (no queue) to 1000000, got %d", *cc.Queue)
	}
	v.positive(cp+".queue_timeout", cc.QueueTimeout, DefaultQueueTimeout)
	r := p.Retry
	rp := pp + ".retry"
	if r.Attempts < 1 || r.Attempts > 10 {
		v.errorf(rp+".attempts", "must be 1 (no retries) to 10, got %d", r.Attempts)
	}
	if r.BudgetPercent != nil && (*r.BudgetPercent < 0 || *r.BudgetPercent > 100) {
		v.errorf(rp+".budget_percent", "must be 0 to 100, got %d", *r.BudgetPercent)
	}
	if r.BudgetMinPerSecond != nil && *r.BudgetMinPerSecond < 0 {
		v.errorf(rp+".budget_min_per_second", "must not be negative, got %d", *r.BudgetMinPerSecond)
	}
	v.nonNegative(rp+".per_try_timeout", r.PerTryTimeout)
	v.nonNegative(rp+".backoff", r.Backoff)
	if r.Backoff.Duration > 10*time.Second {
		v.errorf(rp+".backoff", "%s is too long: visitors would wait that long per retry (at most 10s)", fmtDuration(r.Backoff.Duration))
	}
	if r.ReplayBodyBytes < 0 || r.ReplayBodyBytes > 64<<20 {
		v.errorf(rp+".replay_body_bytes", "must be 0 to 64MiB, got %s", r.ReplayBodyBytes)
	}
}

// abuse checks the limits on what visitors send, and the default rate
// limit.
func (v *validator) abuse() {
	l := v.c.Limits
	if l.MaxHeaderCount < 10 || l.MaxHeaderCount > 10000 {
		v.errorf("limits.max_header_count", "must be 10 to 10000, got %d", l.MaxHeaderCount)
	}
	if l.MaxURIBytes < 256 || l.MaxURIBytes > 1<<20 {
		v.errorf("limits.max_uri_bytes", "must be 256 to 1MiB, got %s", l.MaxURIBytes)
	}
	if l.MaxBodyBytes < 0 {
		v.errorf("limits.max_body_bytes", "must not be negative, got %s", l.MaxBodyBytes)
	}
	v.positive("limits.body_read_timeout", l.BodyReadTimeout, DefaultBodyReadTimeout)
	if l.MaxConnsPerIP != nil && *l.MaxConnsPerIP < 0 {
		v.errorf("limits.max_conns_per_ip", "must not be negative (0: no limit), got %d", *l.MaxConnsPerIP)
	}
	if l.MaxConns != nil && *l.MaxConns < 0 {
		v.errorf("limits.max_conns", "must not be negative (0: no limit), got %d", *l.MaxConns)
	}
	if l.MemoryLimit < 0 || (l.MemoryLimit > 0 && l.MemoryLimit < 16<<20) {
		v.errorf("limits.memory_limit", "must be 0 (automatic) or at least 16MiB, got %s", l.MemoryLimit)
	}
	if p := l.MinHostAvailablePercent; p != nil && (*p < 0 || *p > 50) {
		v.errorf("limits.min_host_available_percent", "must be 0 (off) to 50, got %d", *p)
	}
	if v.c.RateLimit != nil {
		v.rateLimit("rate_limit", v.c.RateLimit)
	}
}

// rateLimit checks a rate limit.
func (v *validator) rateLimit(field string, r *RateLimit) {
	rateOK := false
	if r.Rate == "" {
		v.errorf(field+".rate", "required, such as 50/s")
	} else if _, err := ParseRate(r.Rate); err != nil {
		v.errorf(field+".rate", "%v", err)
	} else {
		rateOK = true
	}
	// A zero burst with a bad rate is only the default that could not be
	// worked out: the rate's error says it.
	if (rateOK || r.Burst != 0) && (r.Burst < 1 || r.Burst > 1_000_000) {
		v.errorf(field+".burst", "must be 1 to 1000000, got %d", r.Burst)
	}
	if r.Key != "client_ip" && r.Key != "route" {
		kind, name, ok := strings.Cut(r.Key, ":")
		if !ok || kind != "header" || name == "" || strings.ContainsAny(name, " \t:;,=") {
			v.errorf(field+".key", "want client_ip, route or header:NAME, got %q", r.Key)
		}
	}
}

// validStatusPattern reports whether s is a status code (100-599) or a
// class such as "2xx".
func validStatusPattern(s string) bool {
	if len(s) != 3 || s[0] < '1' || s[0] > '5' {
		return false
	}
	if s[1:] == "xx" || s[1:] == "XX" {
		return true
	}
	return s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}

// targetURL checks a target's URL and returns a key that is the same for
// two URLs naming the same server.
func (v *validator) targetURL(field, s string) (string, bool) {
	if s == "" {
		v.errorf(field, "required, such as http://127.0.0.1:8080")
		return "", false
	}
	if !strings.Contains(s, "://") {
		v.errorf(field, "want a URL with its scheme, such as http://%s", s)
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold a password: do not repeat it
		}
		v.errorf(field, "not a valid URL: %v", err)
		return "", false
	}
	ok := true
	problem := func(format string, args ...any) {
		v.errorf(field, format, args...)
		ok = false
	}
	switch u.Scheme {
	case "http", "https", "fastcgi":
	case "fastcgi+unix":
		return v.unixTargetURL(field, u)
	default:
		problem("scheme %q is not supported: use http://, https://, fastcgi:// or fastcgi+unix://", u.Scheme)
	}
	if u.User != nil {
		problem("has user info (user@): credentials in target URLs are not supported")
	}
	if u.Opaque != "" {
		problem("want scheme://host:port, such as http://127.0.0.1:8080")
	}
	host, port := u.Hostname(), u.Port()
	switch {
	case u.Host == "" || host == "":
		problem("missing host, such as http://127.0.0.1:8080")
	case !validHost(host):
		problem("host %q is neither an IP address nor a host name", host)
	}
	if port != "" {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			problem("port %s is out of range 1-65535", port)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		problem("empty port after the colon")
	} else if u.Scheme == "fastcgi" && host != "" {
		problem("missing port, such as fastcgi://%s:9000 (PHP-FPM's listen address)", host)
	}
	if u.Path != "" && u.Path != "/" {
		problem("has a path (%s): a target is scheme://host:port only, requests keep their own path", u.EscapedPath())
	}
	if u.RawQuery != "" || u.ForceQuery {
		problem("has a query (?%s): a target is scheme://host:port only", u.RawQuery)
	}
	if u.Fragment != "" {
		problem("has a fragment (#%s): a target is scheme://host:port only", u.Fragment)
	}
	if !ok {
		return "", false
	}
	switch {
	case port != "":
	case u.Scheme == "https":
		port = "443"
	default:
		port = "80"
	}
	host = strings.ToLower(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return u.Scheme + "://" + net.JoinHostPort(host, port), true
}

// validHost reports whether s is an IP address or a host name.
func validHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return validHostname(s)
}

// validHostname reports whether s is a DNS host name: dot-separated labels
// of 1 to 63 letters, digits, '-' (not first or last) and '_' (found in
// the wild, such as in container names), 253 bytes at most.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
				return false
			}
		}
	}
	return true
}

func (v *validator) upstreamTLS(field string, t UpstreamTLS) {
	if t.CA != "" {
		if t.InsecureSkipVerify {
			v.errorf(field+".ca", "has no effect with insecure_skip_verify: true: remove one")
		}
		if v.files {
			if data, problem := readable(t.CA); problem != "" {
				v.errorf(field+".ca", "%s", problem)
			} else if !x509.NewCertPool().AppendCertsFromPEM(data) {
				v.errorf(field+".ca", "%q holds no PEM certificate", t.CA)
			}
		}
	}
	if t.ServerName != "" && !validHost(t.ServerName) {
		v.errorf(field+".server_name", "%q is neither a host name nor an IP address", t.ServerName)
	}
}

func (v *validator) routes() {
	c := v.c
	names := c.poolNames()
	if len(c.Routes) == 0 && len(c.Pools) > 1 {
		v.errorf("routes", "none, and with %d pools gatewise cannot tell which one serves a request: "+
			"add a route for each of the pools %s, such as \"- {host: app.example.com, pool: %s}\"",
			len(names), joinSome(names), names[0])
	}
	nameAt, routeAt := map[string]int{}, map[string]int{}
	for i, r := range c.Routes {
		if v.full() {
			return
		}
		rp := fmt.Sprintf("routes[%d]", i)
		switch _, ok := c.Pools[r.Pool]; {
		case r.Pool == "":
			v.errorf(rp+".pool", "required: the name of the pool serving the route%s", listPools(names))
		case !ok:
			if s := suggest(r.Pool, names); s != "" {
				v.errorf(rp+".pool", "unknown pool %q; did you mean %q?", r.Pool, s)
			} else {
				v.errorf(rp+".pool", "unknown pool %q%s", r.Pool, listPools(names))
			}
		}
		switch r.Priority {
		case "high", "normal", "low", "":
		default:
			v.errorf(rp+".priority", "want high, normal or low, got %q", r.Priority)
		}
		if r.RateLimit != nil {
			v.rateLimit(rp+".rate_limit", r.RateLimit)
		}
		if r.MaxBodyBytes < 0 {
			v.errorf(rp+".max_body_bytes", "must not be negative, got %s", r.MaxBodyBytes)
		}
		pathOK := v.routePath(rp+".path", r.Path)
		hostOK := v.routeHost(rp+".host", r.Host)
		if !pathOK || !hostOK {
			continue
		}
		key := routeKey(r.Host) + " " + r.Path
		if j, dup := routeAt[key]; dup {
			other := fmt.Sprintf("routes[%d]", j)
			if n := c.Routes[j].Name; n != "" {
				other += " (" + n + ")"
			}
			v.errorf(rp, "same host and path as %s: one of them never matches", other)
			continue
		}
		routeAt[key] = i
		if r.Name != "" {
			if j, dup := nameAt[r.Name]; dup {
				v.errorf(rp+".name", "%q is also the name of routes[%d]: names tell routes apart in logs and metrics", r.Name, j)
			} else {
				nameAt[r.Name] = i
			}
		}
	}
}

// routeKey normalizes a route's host for finding duplicates, as matching
// does: letter case and a trailing dot aside.
func routeKey(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// listPools returns " (pools: a, b)" or " (no pools are defined)".
func listPools(names []string) string {
	if len(names) == 0 {
		return " (no pools are defined)"
	}
	return " (pools: " + joinSome(names) + ")"
}

// joinSome joins the first few names with commas, and says how many more
// there are.
func joinSome(names []string) string {
	const some = 10
	if len(names) <= some {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:some], ", "), len(names)-some)
}

// routePath checks a route's path prefix.
func (v *validator) routePath(field, p string) bool {
	switch {
	case !strings.HasPrefix(p, "/"):
		v.errorf(field, "must start with \"/\", got %q", p)
	case strings.ContainsAny(p, "?#"):
		v.errorf(field, "%q holds a query or fragment: a route matches the path only", p)
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		v.errorf(field, "%q holds a space or control character: write it percent-encoded", p)
	default:
		return true
	}
	return false
}

// routeHost checks a route's host; empty matches any host. A trailing dot
// is allowed: matching ignores it.
func (v *validator) routeHost(field, h string) bool {
	name := strings.TrimPrefix(h, "*.")
	switch {
	case h == "":
		return true
	case strings.Contains(h, "://"):
		v.errorf(field, "want a host name, got a URL: write only the host, such as example.com")
	case h == "*":
		v.errorf(field, "leave host out to match any host")
	case strings.ContainsFunc(h, func(r rune) bool { return r > unicode.MaxASCII }):
		v.errorf(field, "%q has non-ASCII characters: write its ASCII (punycode) form, xn--...", h)
	case strings.Contains(h, "/"):
		v.errorf(field, "%q holds a \"/\": put the path in path", h)
	case strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") && isIP(h[1:len(h)-1]):
		v.errorf(field, "%q: write the IPv6 address without brackets, %s", h, h[1:len(h)-1])
	case isIP(h):
		return true
	case strings.Contains(h, ":"):
		if _, port, err := net.SplitHostPort(h); err == nil {
			v.errorf(field, "%q has a port: the port is ignored when matching, remove :%s", h, port)
		} else {
			v.errorf(field, "%q is not a host name", h)
		}
	case strings.Contains(name, "*"):
		v.errorf(field, "%q: a wildcard is only allowed as the whole first label, as in *.example.com", h)
	case !validHostname(strings.TrimSuffix(name, ".")):
		v.errorf(field, "%q is not a valid host name (letters, digits, '-' and '.')", h)
	default:
		return true
	}
	return false
}

// isIP reports whether s is an IP address.
func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
