package logs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// The servers of the signatures in the cause table.
const (
	serverPHP      = "php"
	serverFPM      = "php-fpm"
	serverKernel   = "kernel"
	serverMySQL    = "mysql"
	serverGatewise = "gatewise"
	serverNginx    = "nginx"
	serverApache   = "apache"
	serverHAProxy  = "haproxy"
	serverCaddy    = "caddy"
	serverTraefik  = "traefik"
)

// allServers returns the servers whose signatures a file of unknown format
// is matched against.
func allServers() []string {
	return []string{serverNginx, serverApache, serverHAProxy, serverCaddy, serverTraefik, serverFPM, serverPHP, serverMySQL, serverKernel}
}

// parser classifies lines. It is built once per Reader and holds no
// mutable state.
type parser struct {
	table *cause.Table
	m     map[string]*matcher // by server, and "*" for all of them
	loc   *time.Location
}

func newParser(t *cause.Table, loc *time.Location) (*parser, error) {
	p := &parser{table: t, m: map[string]*matcher{}, loc: loc}
	for _, s := range allServers() {
		m, err := newMatcher(t, s)
		if err != nil {
			return nil, err
		}
		p.m[s] = m
	}
	m, err := newMatcher(t, allServers()...)
	if err != nil {
		return nil, err
	}
	p.m["*"] = m
	return p, nil
}

// lineCtx is what a parse function knows besides the line: the reference
// time for year-less stamps.
type lineCtx struct {
	ref time.Time
}

// parseFunc classifies one line (without its line ending). It returns
// whether the line is an event (then ev is filled in, except Source,
// Format, Line and Raw) and whether it was readable in the format at all.
// It leaves ev untouched when the line is not an event.
type parseFunc func(p *parser, lc *lineCtx, line []byte, ev *Event) (event, readable bool)

// setCause fills ev as an event of cause id.
func (p *parser) setCause(ev *Event, id cause.ID) {
	ev.Kind, ev.Cause = KindCause, id
}

// phpMessage classifies a PHP error message wherever it appears: PHP's own
// log, PHP-FPM's "said into stderr", nginx's "FastCGI sent in stderr",
// Apache's AH01071 "Got error 'PHP message: ...'".
func phpMessage(line []byte) cause.ID {
	i := bytes.Index(line, []byte("PHP Fatal error"))
	if i < 0 {
		i = bytes.Index(line, []byte("PHP Parse error"))
		if i < 0 {
			return ""
		}
	}
	rest := line[i:]
	switch {
	case bytes.Contains(rest, []byte("Allowed memory size of")) || bytes.Contains(rest, []byte("Out of memory")):
		return cause.PHPMemoryExhausted
	case bytes.Contains(rest, []byte("Maximum execution time")):
		return cause.PHPTimeout
	}
	return cause.PHPFatalError
}

// quoted returns the text between the quotes after key in line, such as
// `request: "GET / HTTP/1.1"` for key `request: "`.
func quoted(line []byte, key string) []byte {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return nil
	}
	rest := line[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// setRequest fills Method and Path from "GET /path HTTP/1.1".
func setRequest(ev *Event, req []byte) {
	sp := bytes.IndexByte(req, ' ')
	if sp <= 0 || sp > 16 {
		return
	}
	path := req[sp+1:]
	if k := bytes.LastIndexByte(path, ' '); k > 0 && bytes.HasPrefix(path[k+1:], []byte("HTTP/")) {
		path = path[:k]
	}
	ev.Method = string(req[:sp])
	ev.Path = string(limit(path, 256))
}

// hostPort returns the host and port of a URL such as
// "http://127.0.0.1:9/x" or "fastcgi://unix:/run/php.sock:".
func hostPort(u []byte) string {
	if i := bytes.Index(u, []byte("://")); i >= 0 {
		u = u[i+3:]
	}
	if bytes.HasPrefix(u, []byte("unix:")) {
		return string(bytes.TrimRight(limit(u, 256), ":"))
	}
	if i := bytes.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return string(limit(u, 256))
}

func limit(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// nginxError reads nginx's error log:
//
//	2024/01/02 15:04:05 [error] 12#12: *3 connect() failed (111: Connection refused) while connecting to upstream, client: ..., request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:9/"
func nginxError(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	if len(line) < 22 || line[4] != '/' || line[7] != '/' || line[19] != ' ' || line[20] != '[' {
		return false, false
	}
	msg := line[20:]
	id := phpMessage(msg)
	if id == "" {
		id = p.m[serverNginx].match(msg)
	}
	if id == "" {
		return false, true
	}
	t, ok := timeNginxError(line, p.loc)
	if !ok {
		return false, false
	}
	ev.Time = t
	p.setCause(ev, id)
	if req := quoted(msg, `request: "`); req != nil {
		setRequest(ev, req)
	}
	if u := quoted(msg, `upstream: "`); u != nil {
		ev.Upstream = hostPort(u)
	}
	return true, true
}

// detectNginxError reports whether line starts like nginx's error log.
func detectNginxError(line []byte) bool {
	_, ok := timeNginxError(line, time.UTC)
	return ok && len(line) > 21 && line[20] == '['
}

// nginxAccess reads nginx's access log in the combined format, with
// optional key=value fields after it (upstream_status=, upstream_addr=,
// request_time=, and the short us=, ua=, rt=). A 502, 503 or 504 sent to
// the client is an http_status event (its cause is in the error log, which
// Summarize links it to); a 499 is client_closed.
func nginxAccess(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	lb := bytes.IndexByte(line, '[')
	if lb < 0 || lb+28 > len(line) {
		return false, false
	}
	rest := line[lb+1:]
	rb := bytes.IndexByte(rest, ']')
	if rb < 20 || rb+3 > len(rest) || rest[rb+1] != ' ' || rest[rb+2] != '"' {
		return false, false
	}
	after := rest[rb+3:]
	q := bytes.IndexByte(after, '"')
	if q < 0 || q+5 > len(after) || after[q+1] != ' ' {
		return false, false
	}
	status, ok := digits(after, q+2, 3)
	if !ok {
		return false, false
	}
	tail := after[q+5:]
	upStatus := keyValue(tail, "upstream_status=", "us=")
	switch {
	case status == 499:
		p.setCause(ev, cause.ClientClosed)
	case status == 502 || status == 503 || status == 504:
		ev.Kind = KindStatus
		ev.Detail = strconv.Itoa(status)
		if len(upStatus) > 0 {
			ev.Detail += " (upstream_status " + string(limit(upStatus, 64)) + ")"
		}
	default:
		return false, true
	}
	t, ok := timeCLF(rest[:rb], p.loc)
	if !ok {
		*ev = Event{}
		return false, false
	}
	ev.Time = t
	ev.Status = status
	setRequest(ev, after[:q])
	if ua := keyValue(tail, "upstream_addr=", "ua="); len(ua) > 0 && ua[0] != '-' {
		ev.Upstream = string(limit(ua, 256))
	}
	return true, true
}

// keyValue returns the value after the first of keys found in b (preceded
// by a space or a quote), up to the next space or quote.
func keyValue(b []byte, keys ...string) []byte {
	for _, k := range keys {
		i := bytes.Index(b, []byte(k))
		for i > 0 && b[i-1] != ' ' && b[i-1] != '"' {
			j := bytes.Index(b[i+1:], []byte(k))
			if j < 0 {
				i = -1
				break
			}
			i += 1 + j
		}
		if i < 0 {
			continue
		}
		v := b[i+len(k):]
		v = bytes.TrimPrefix(v, []byte(`"`))
		if e := bytes.IndexAny(v, "\" "); e >= 0 {
			v = v[:e]
		}
		return v
	}
	return nil
}

// detectNginxAccess reports whether line looks like the combined format.
func detectNginxAccess(line []byte) bool {
	var ev Event
	p := &parser{loc: time.UTC, table: &cause.Table{}}
	_, readable := nginxAccess(p, &lineCtx{}, line, &ev)
	return readable && bytes.Contains(line, []byte(`] "`))
}

// apacheError reads Apache's error log, 2.4 and 2.2:
//
//	[Mon Jan 02 15:04:05.123456 2006] [proxy:error] [pid 12:tid 34] (111)Connection refused: AH00957: http: attempt to connect to 127.0.0.1:9 (127.0.0.1:9) failed
//	[Mon Jan 02 15:04:05 2006] [error] [client 127.0.0.1] (111)Connection refused: proxy: HTTP: attempt to connect to 127.0.0.1:9 (127.0.0.1) failed
func apacheError(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	if len(line) < 30 || line[0] != '[' {
		return false, false
	}
	rb := bytes.IndexByte(line, ']')
	if rb < 24 || rb+2 >= len(line) {
		return false, false
	}
	msg := line[rb+1:]
	if apacheFollowUp(msg) {
		return false, true
	}
	id := phpMessage(msg)
	if id == "" {
		id = p.m[serverApache].match(msg)
	}
	if id == "" {
		return false, true
	}
	t, _, ok := timeCtime(line[1:rb+1], p.loc)
	if !ok {
		return false, false
	}
	ev.Time = t
	p.setCause(ev, id)
	for _, key := range []string{"attempt to connect to ", "failed to make connection to backend: ", "remote server ", "failed to ", "connect to "} {
		if i := bytes.Index(msg, []byte(key)); i >= 0 {
			v := msg[i+len(key):]
			if e := bytes.IndexAny(v, " ,)"); e >= 0 {
				v = v[:e]
			}
			if len(v) > 0 && (v[0] >= '0' && v[0] <= '9' || v[0] == '[' || bytes.IndexByte(v, '.') > 0 || bytes.IndexByte(v, ':') > 0) {
				ev.Upstream = string(limit(v, 256))
				break
			}
		}
	}
	return true, true
}

// apacheFollowUp reports whether an Apache message only repeats the
// failure of the line before it, for the same request: AH01114 ("failed
// to make connection to backend") follows AH00957, which has the errno;
// AH00898 "Error reading from remote server" follows AH01102, which has
// it. Counting them would count each failure twice (and AH00898 after a
// timeout would read as a closed connection).
func apacheFollowUp(msg []byte) bool {
	return bytes.Contains(msg, []byte("AH01114: ")) || bytes.Contains(msg, []byte("AH00898: Error reading from remote server"))
}

func detectApacheError(line []byte) bool {
	if len(line) < 30 || line[0] != '[' {
		return false
	}
	_, n, ok := timeCtime(line[1:], time.UTC)
	return ok && n+3 < len(line) && line[n+1] == ']' && line[n+2] == ' ' && line[n+3] == '['
}

// fpmLog reads PHP-FPM's log:
//
//	[02-Jan-2006 15:04:05] WARNING: [pool www] server reached pm.max_children setting (5), consider raising it
func fpmLog(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	if len(line) < 22 || line[0] != '[' {
		return fpmContinuation(line)
	}
	t, n, ok := timeFPM(line[1:], p.loc)
	if !ok || n+1 >= len(line) || line[n+1] != ']' {
		return fpmContinuation(line)
	}
	if !fpmMessage(p, line[n+2:], ev) {
		return false, true
	}
	ev.Time = t
	return true, true
}

// fpmContinuation accepts the other lines of FPM's slow log (script_filename
// = ..., stack frames "[0x...] f() file:line") as readable, not events.
func fpmContinuation(line []byte) (bool, bool) {
	switch {
	case len(bytes.TrimSpace(line)) == 0,
		bytes.HasPrefix(line, []byte("script_filename = ")),
		bytes.HasPrefix(line, []byte("[0x")):
		return false, true
	}
	return false, false
}

// fpmMessage classifies a PHP-FPM message (after its time stamp, or after
// the syslog header when FPM logs to syslog).
func fpmMessage(p *parser, msg []byte, ev *Event) bool {
	id := phpMessage(msg)
	if id == "" {
		id = p.m[serverFPM].match(msg)
	}
	if id == "" {
		if bytes.Contains(msg, []byte("ready to handle connections")) {
			ev.Kind, ev.Process = KindRestart, "php-fpm"
			return true
		}
		return false
	}
	p.setCause(ev, id)
	ev.Process = pool(msg)
	if i := bytes.Index(msg, []byte(" exited on signal ")); i >= 0 {
		d := msg[i+len(" exited on signal "):]
		if e := bytes.IndexByte(d, ')'); e >= 0 {
			d = d[:e+1]
		}
		ev.Detail = "signal " + string(limit(d, 64))
	}
	if req := quoted(msg, `(request: "`); req != nil {
		setRequest(ev, req)
	}
	return true
}

// pool returns "pool www" from "[pool www]".
func pool(msg []byte) string {
	v := quotedBy(msg, "[pool ", ']')
	if v == nil {
		return ""
	}
	return "php-fpm pool " + string(limit(v, 64))
}

func quotedBy(b []byte, key string, end byte) []byte {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil
	}
	v := b[i+len(key):]
	e := bytes.IndexByte(v, end)
	if e < 0 {
		return nil
	}
	return v[:e]
}

func detectFPM(line []byte) bool {
	if len(line) < 24 || line[0] != '[' {
		return false
	}
	_, n, ok := timeFPM(line[1:], time.UTC)
	return ok && n+3 < len(line) && line[n+1] == ']' && line[n+2] == ' ' && line[n+3] >= 'A' && line[n+3] <= 'Z' &&
		!bytes.HasPrefix(line[n+3:], []byte("PHP "))
}

// phpLog reads PHP's error log:
//
//	[02-Jan-2006 15:04:05 UTC] PHP Fatal error:  Allowed memory size of 134217728 bytes exhausted ...
//
// Stack traces ("Stack trace:", "#0 ...", "  thrown in") are readable, not
// events.
func phpLog(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	if len(line) < 22 || line[0] != '[' {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' || bytes.HasPrefix(t, []byte("Stack trace")) || bytes.HasPrefix(t, []byte("thrown in")) || bytes.HasPrefix(t, []byte("PHP ")) {
			return false, true
		}
		return false, false
	}
	t, n, ok := timeFPM(line[1:], p.loc)
	if !ok {
		return false, false
	}
	rb := bytes.IndexByte(line[n+1:], ']')
	if rb < 0 {
		return false, false
	}
	zone := bytes.TrimSpace(line[n+1 : n+1+rb])
	if len(zone) > 0 {
		if l, err := time.LoadLocation(string(zone)); err == nil {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), l)
		}
	}
	msg := line[n+1+rb:]
	id := phpMessage(msg)
	if id == "" {
		id = p.m[serverPHP].match(msg)
	}
	if id == "" {
		return false, true
	}
	ev.Time = t
	p.setCause(ev, id)
	return true, true
}

func detectPHP(line []byte) bool {
	if t := bytes.TrimSpace(line); bytes.HasPrefix(t, []byte("Stack trace:")) || bytes.HasPrefix(t, []byte("thrown in ")) ||
		len(t) > 1 && t[0] == '#' && t[1] >= '0' && t[1] <= '9' {
		return true // a stack trace under a PHP error
	}
	if len(line) < 24 || line[0] != '[' {
		return false
	}
	_, n, ok := timeFPM(line[1:], time.UTC)
	if !ok {
		return false
	}
	rb := bytes.IndexByte(line[n+1:], ']')
	return rb >= 0 && bytes.HasPrefix(line[n+1+rb:], []byte("] PHP "))
}

// haproxyLog reads HAProxy's log, with or without a syslog header: the
// HTTP log format (termination states such as SC--, sH--, SH--), and its
// alerts ("Server be/s1 is DOWN", "backend 'be' has no server available!").
func haproxyLog(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	if t, msg, ok := syslogHeader(line, lc.ref, p.loc); ok {
		return haproxyMessage(p, t, msg, ev), true
	}
	return haproxyMessage(p, time.Time{}, line, ev), true
}

// haproxyMessage classifies a HAProxy message; t is the syslog time, zero
// when the line had no header (then the request's own date is used).
func haproxyMessage(p *parser, t time.Time, msg []byte, ev *Event) bool {
	// An HTTP log line: client [date] frontend backend/server timers status
	// bytes cookie cookie termination_state ... "request".
	var fields [12][]byte
	var reqTime time.Time
	if lb := bytes.Index(msg, []byte(" [")); lb > 0 {
		rest := msg[lb+2:]
		if rb := bytes.IndexByte(rest, ']'); rb > 0 {
			if rt, ok := timeCLF(rest[:rb], p.loc); ok {
				reqTime = rt
				n := splitFields(rest[rb+1:], fields[:])
				if n >= 8 && len(fields[7]) == 4 {
					if fields[7][0] == '-' {
						return false
					}
					// Match the termination state with the cookie flags
					// blanked (SCNN is SC--), then the rest of the line.
					var ts [4]byte
					copy(ts[:], fields[7][:2])
					ts[2], ts[3] = '-', '-'
					id := p.m[serverHAProxy].match(msg)
					if id2 := p.m[serverHAProxy].match(ts[:]); id == "" || id2 != "" && !bytes.Contains(msg, []byte("<NOSRV>")) {
						id = id2
					}
					if id == "" {
						return false
					}
					p.setCause(ev, id)
					ev.Detail = "termination state " + string(fields[7])
					if st, err := strconv.Atoi(string(fields[3])); err == nil {
						ev.Status = st
					}
					if be := fields[1]; len(be) > 0 {
						ev.Upstream = string(limit(be, 256))
					}
					if q := bytes.IndexByte(msg, '"'); q >= 0 {
						req := msg[q+1:]
						if e := bytes.IndexByte(req, '"'); e >= 0 {
							setRequest(ev, req[:e])
						}
					}
					if t.IsZero() {
						t = reqTime
					}
					ev.Time = t
					return true
				}
			}
		}
	}
	id := p.m[serverHAProxy].match(msg)
	if id == "" {
		return false
	}
	p.setCause(ev, id)
	if v := quotedBy(msg, "Server ", ' '); v != nil {
		ev.Upstream = string(limit(v, 256))
	} else if v := quotedBy(msg, "backend '", '\''); v != nil {
		ev.Upstream = string(limit(v, 256))
	}
	ev.Time = t
	return true
}

// splitFields splits b on spaces into out and returns how many it filled.
func splitFields(b []byte, out [][]byte) int {
	n := 0
	for n < len(out) {
		for len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
		if len(b) == 0 {
			break
		}
		e := bytes.IndexByte(b, ' ')
		if e < 0 {
			out[n] = b
			n++
			break
		}
		out[n] = b[:e]
		n++
		b = b[e:]
	}
	return n
}

func detectHAProxy(line []byte) bool {
	if bytes.Contains(line, []byte("haproxy[")) || bytes.Contains(line, []byte("HAProxy")) {
		return true
	}
	// An HTTP log line without a header: "127.0.0.1:5555 [02/Jan/2006:15:04:05.000] ".
	lb := bytes.Index(line, []byte(" ["))
	if lb <= 0 || lb > 64 || bytes.IndexByte(line[:lb], ':') < 0 {
		return false
	}
	rest := line[lb+2:]
	_, ok := timeCLF(rest, time.UTC)
	return ok && len(rest) > 24 && rest[20] == '.'
}

// caddyLog reads Caddy's JSON log: a line whose "msg" or "error" matches a
// Caddy signature ("dial tcp ...: connect: connection refused").
func caddyLog(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	if len(line) < 2 || line[0] != '{' {
		return false, false
	}
	id := p.m[serverCaddy].match(line)
	if id == "" {
		return false, true
	}
	if ts := jsonRaw(line, "ts"); ts != nil {
		if t, ok := timeUnixFloat(ts); ok {
			ev.Time = t
		} else if s := jsonString(line, "ts"); s != "" {
			if t, _, ok := timeISO([]byte(s), p.loc); ok {
				ev.Time = t
			}
		}
	}
	p.setCause(ev, id)
	ev.Method = jsonString(line, "method")
	ev.Path = jsonString(line, "uri")
	ev.Upstream = jsonString(line, "upstream")
	if st, err := strconv.Atoi(string(jsonRaw(line, "status"))); err == nil {
		ev.Status = st
	}
	return true, true
}

func detectCaddy(line []byte) bool {
	return len(line) > 0 && line[0] == '{' && jsonRaw(line, "ts") != nil && jsonRaw(line, "logger") != nil
}

// traefikJSON reads Traefik's JSON log (v2's "msg", v3's "message" and
// "error").
func traefikJSON(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	if len(line) < 2 || line[0] != '{' {
		return false, false
	}
	id := p.m[serverTraefik].match(line)
	if id == "" {
		return false, true
	}
	if s := jsonString(line, "time"); s != "" {
		if t, _, ok := timeISO([]byte(s), p.loc); ok {
			ev.Time = t
		}
	}
	p.setCause(ev, id)
	return true, true
}

func detectTraefikJSON(line []byte) bool {
	return len(line) > 0 && line[0] == '{' && jsonRaw(line, "time") != nil && jsonRaw(line, "level") != nil &&
		jsonRaw(line, "ts") == nil && !bytes.Contains(line, []byte(`"level":"INFO"`)) && !bytes.Contains(line, []byte(`"level":"WARN"`)) &&
		!bytes.Contains(line, []byte(`"level":"ERROR"`))
}

// traefikText reads Traefik's text log, v2 (time="..." level=... msg="...")
// and v3 ("2006-01-02T15:04:05Z DBG ... > 502 Bad Gateway error=...").
func traefikText(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	var t time.Time
	var ok bool
	switch {
	case bytes.HasPrefix(line, []byte(`time="`)):
		t, _, ok = timeISO(line[6:], p.loc)
	default:
		t, _, ok = timeISO(line, p.loc)
	}
	if !ok {
		return false, false
	}
	id := p.m[serverTraefik].match(line)
	if id == "" {
		return false, true
	}
	ev.Time = t
	p.setCause(ev, id)
	return true, true
}

func detectTraefikText(line []byte) bool {
	if bytes.HasPrefix(line, []byte(`time="`)) && bytes.Contains(line, []byte(" level=")) {
		return true
	}
	_, n, ok := timeISO(line, time.UTC)
	if !ok || n+5 > len(line) || line[n] != ' ' {
		return false
	}
	switch string(line[n+1 : n+5]) {
	case "DBG ", "INF ", "WRN ", "ERR ", "FTL ":
		return true
	}
	return false
}

// gatewiseLog reads gatewise's own JSON log: the access log's "request"
// lines and the warning lines, both with a "cause".
func gatewiseLog(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	if len(line) < 2 || line[0] != '{' {
		return false, false
	}
	c := jsonRaw(line, "cause")
	if len(c) < 3 || c[0] != '"' {
		return false, true
	}
	id := cause.ID(jsonString(line, "cause"))
	if _, ok := p.table.Lookup(id); !ok {
		return false, false
	}
	if s := jsonString(line, "time"); s != "" {
		if t, _, ok := timeISO([]byte(s), p.loc); ok {
			ev.Time = t
		}
	}
	ev.Kind, ev.Cause = KindCause, id
	ev.Method = jsonString(line, "method")
	ev.Path = jsonString(line, "path")
	ev.Upstream = jsonString(line, "upstream")
	ev.RequestID = jsonString(line, "request_id")
	ev.Detail = jsonString(line, "detail")
	if st, err := strconv.Atoi(string(jsonRaw(line, "status"))); err == nil {
		ev.Status = st
	}
	if a := jsonString(line, "action"); a != "" {
		ev.Detail = joinDetail(ev.Detail, a)
	}
	return true, true
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

func detectGatewise(line []byte) bool {
	return len(line) > 0 && line[0] == '{' && jsonRaw(line, "time") != nil && jsonRaw(line, "msg") != nil &&
		(jsonRaw(line, "request_id") != nil || jsonRaw(line, "cause") != nil)
}

// jsonRaw returns the raw value of the first "key": in a JSON object line:
// a quoted string with its quotes, or a number, true, false, null, or an
// object or array (not checked). It is a scan, not a parse: a key that only
// appears inside a string value is found too, which is good enough for
// the flat logs it reads.
func jsonRaw(line []byte, key string) []byte {
	var pat [64]byte
	if len(key)+3 > len(pat) {
		return nil
	}
	pat[0] = '"'
	n := 1 + copy(pat[1:], key)
	pat[n] = '"'
	n++
	i := bytes.Index(line, pat[:n])
	if i < 0 {
		return nil
	}
	v := bytes.TrimLeft(line[i+n:], " ")
	if len(v) == 0 || v[0] != ':' {
		return nil
	}
	v = bytes.TrimLeft(v[1:], " ")
	if len(v) == 0 {
		return nil
	}
	if v[0] == '"' {
		for j := 1; j < len(v); j++ {
			switch v[j] {
			case '\\':
				j++
			case '"':
				return v[:j+1]
			}
		}
		return nil
	}
	e := bytes.IndexAny(v, ",}] ")
	if e < 0 {
		return v
	}
	return v[:e]
}

// jsonString returns the string value of key, unescaped, cut to 512 bytes.
func jsonString(line []byte, key string) string {
	v := jsonRaw(line, key)
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(limit(v[1:len(v)-1], 512))
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	if len(s) > 512 {
		s = s[:512]
	}
	return s
}
