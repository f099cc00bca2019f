package logs

import (
	"bytes"
	"strconv"
	"time"
)

// kernelLog reads kernel messages as dmesg prints them ("[ 1234.567890]
// msg", the time since boot, which gives no wall-clock time), as dmesg -T
// prints them ("[Mon Jan  2 15:04:05 2006] msg"), and as /dev/kmsg gives
// them ("6,1234,5678901234,-;msg").
func kernelLog(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	var t time.Time
	var msg []byte
	switch {
	case len(line) > 2 && line[0] == '[':
		rb := bytes.IndexByte(line, ']')
		if rb < 0 {
			return false, false
		}
		if ct, _, ok := timeCtime(line[1:rb+1], p.loc); ok {
			t = ct
		} else if !isUptime(line[1:rb]) {
			return false, false
		}
		msg = line[rb+1:]
	default:
		semi := bytes.IndexByte(line, ';')
		if semi < 0 || !isKmsgPrefix(line[:semi]) {
			if len(line) > 0 && line[0] == ' ' {
				return false, true // a continuation line of /dev/kmsg (" SUBSYSTEM=...")
			}
			return false, false
		}
		msg = line[semi+1:]
	}
	if !kernelMessage(p, msg, ev) {
		return false, true
	}
	ev.Time = t
	return true, true
}

// isUptime reports whether b is "  1234.567890".
func isUptime(b []byte) bool {
	b = bytes.TrimLeft(b, " ")
	dot := bytes.IndexByte(b, '.')
	if dot <= 0 {
		return false
	}
	_, ok1 := digits(b, 0, dot)
	_, ok2 := digits(b, dot+1, len(b)-dot-1)
	return ok1 && ok2
}

// isKmsgPrefix reports whether b is /dev/kmsg's "PRI,SEQ,USEC,FLAGS".
func isKmsgPrefix(b []byte) bool {
	n := 0
	for _, f := range bytes.Split(b, []byte(",")) {
		n++
		if n <= 3 {
			if _, ok := digits(f, 0, len(f)); !ok || len(f) == 0 {
				return false
			}
		}
	}
	return n >= 4
}

func detectKernel(line []byte) bool {
	var ev Event
	p := &parser{loc: time.UTC}
	if len(line) > 0 && line[0] == ' ' {
		return false
	}
	_, readable := kernelLog(p, &lineCtx{}, line, &ev)
	return readable
}

// kernelMessage classifies a kernel message: an OOM kill (naming the
// victim) or a segfault of a worker. The "oom-kill:" summary and "invoked
// oom-killer" lines that come with each kill are not counted again.
func kernelMessage(p *parser, msg []byte, ev *Event) bool {
	if i := bytes.Index(msg, []byte("Killed process ")); i >= 0 {
		rest := msg[i+len("Killed process "):]
		sp := bytes.IndexByte(rest, ' ')
		if sp <= 0 {
			return false
		}
		pid := rest[:sp]
		name := quotedBy(rest, "(", ')')
		ev.Kind = KindOOMKill
		ev.Process = string(limit(name, 64))
		ev.Detail = "pid " + string(limit(pid, 16))
		if bytes.Contains(msg[:i], []byte("Memory cgroup")) {
			ev.Detail += ", memory cgroup limit"
		}
		return true
	}
	if i := bytes.Index(msg, []byte("]: segfault at ")); i > 0 {
		lb := bytes.LastIndexByte(msg[:i], '[')
		if lb <= 0 {
			return false
		}
		name := bytes.TrimSpace(msg[:lb])
		ev.Kind = KindWorkerExit
		ev.Process = string(limit(name, 64))
		ev.Detail = "segfault, pid " + string(limit(msg[lb+1:i], 16))
		return true
	}
	return false
}

// syslogHeader parses a syslog line's header: "Jan  2 15:04:05 host
// prog[pid]: msg" (BSD syslog, journalctl's short format, kern.log), or
// an RFC 3339 time first (rsyslog's high-precision format, journalctl -o
// short-iso, HAProxy's "log ... format iso"), the host optional. It
// returns the time and what follows the time.
func syslogHeader(line []byte, ref time.Time, loc *time.Location) (time.Time, []byte, bool) {
	if t, ok := timeSyslog(line, ref, loc); ok {
		return t, line[15:], true
	}
	if t, n, ok := timeISO(line, loc); ok {
		return t, line[n:], true
	}
	return time.Time{}, nil, false
}

// program splits " host prog[pid]: msg" (the host optional) into the
// program name and the message.
func program(rest []byte) (prog, msg []byte, ok bool) {
	rest = bytes.TrimLeft(rest, " ")
	var f [2][]byte
	n := splitFields(rest, f[:])
	if n == 0 {
		return nil, nil, false
	}
	tag := f[0]
	if !isTag(tag) && n == 2 {
		tag = f[1]
	}
	if !isTag(tag) {
		return nil, nil, false
	}
	i := bytes.Index(rest, tag)
	msg = bytes.TrimLeft(rest[i+len(tag):], " ")
	name := bytes.TrimSuffix(tag, []byte(":"))
	if lb := bytes.IndexByte(name, '['); lb > 0 {
		name = name[:lb]
	}
	return name, msg, true
}

// isTag reports whether b is "prog:" or "prog[123]:".
func isTag(b []byte) bool {
	return len(b) > 1 && b[len(b)-1] == ':'
}

// syslogLog reads a system log: kern.log, syslog, messages, journalctl's
// short formats (journalctl -k gives the kernel's). The program of each
// line picks its classifier: the kernel (OOM kills), systemd (units killed
// by the OOM killer, restarts), PHP-FPM, HAProxy, MySQL/MariaDB, nginx;
// other programs' lines are matched against every signature.
func syslogLog(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	t, rest, ok := syslogHeader(line, lc.ref, p.loc)
	if !ok {
		if len(bytes.TrimSpace(line)) == 0 || bytes.HasPrefix(line, []byte("-- ")) {
			return false, true // journalctl's "-- Boot ... --" and "-- No entries --"
		}
		return false, false
	}
	prog, msg, ok := program(rest)
	if !ok {
		return false, false
	}
	if !systemMessage(p, t, prog, msg, ev) {
		return false, true
	}
	if ev.Time.IsZero() {
		ev.Time = t
	}
	return true, true
}

// systemMessage classifies the message msg of program prog in a system log.
func systemMessage(p *parser, t time.Time, prog, msg []byte, ev *Event) bool {
	switch {
	case bytes.Equal(prog, []byte("kernel")):
		// kern.log keeps the uptime stamp: "kernel: [1234.5] msg".
		if len(msg) > 0 && msg[0] == '[' {
			if rb := bytes.IndexByte(msg, ']'); rb > 0 && isUptime(msg[1:rb]) {
				msg = msg[rb+1:]
			}
		}
		return kernelMessage(p, msg, ev)
	case bytes.Equal(prog, []byte("systemd")):
		return systemdMessage(msg, ev)
	case bytes.Contains(prog, []byte("fpm")):
		return fpmMessage(p, msg, ev)
	case bytes.Equal(prog, []byte("haproxy")):
		return haproxyMessage(p, t, msg, ev)
	case bytes.Contains(prog, []byte("mysql")) || bytes.Contains(prog, []byte("mariadb")):
		return mysqlMessage(p, msg, ev)
	case bytes.Equal(prog, []byte("nginx")):
		id := phpMessage(msg)
		if id == "" {
			id = p.m[serverNginx].match(msg)
		}
		if id == "" {
			return false
		}
		p.setCause(ev, id)
		return true
	}
	id := p.m["*"].match(msg)
	if id == "" {
		return false
	}
	p.setCause(ev, id)
	ev.Process = string(limit(prog, 64))
	return true
}

// servicesOfInterest are the units whose restarts are events.
func serviceOfInterest(unit []byte) bool {
	for _, s := range [...]string{"php", "fpm", "mysql", "mariadb", "nginx", "apache", "httpd", "haproxy", "caddy", "traefik", "gatewise", "redis", "memcached"} {
		if bytes.Contains(unit, []byte(s)) {
			return true
		}
	}
	return false
}

// systemdMessage classifies systemd's messages about units.
func systemdMessage(msg []byte, ev *Event) bool {
	unit, rest, ok := bytes.Cut(msg, []byte(": "))
	switch {
	case ok && bytes.Contains(rest, []byte("killed by the OOM killer")):
		ev.Kind, ev.Process, ev.Detail = KindOOMKill, string(limit(unit, 64)), "systemd unit"
		return true
	case ok && bytes.HasPrefix(rest, []byte("Main process exited, code=killed")) && serviceOfInterest(unit):
		ev.Kind, ev.Process = KindWorkerExit, string(limit(unit, 64))
		ev.Detail = string(limit(bytes.TrimPrefix(rest, []byte("Main process exited, ")), 64))
		return true
	case bytes.HasPrefix(msg, []byte("Started ")):
		name := msg[len("Started "):]
		if e := bytes.IndexAny(name, " "); e > 0 && bytes.HasSuffix(name[:e], []byte(".service")) {
			name = name[:e]
		}
		name = bytes.TrimSuffix(name, []byte("."))
		if !serviceOfInterest(bytes.ToLower(name)) {
			return false
		}
		ev.Kind, ev.Process = KindRestart, string(limit(name, 64))
		return true
	}
	return false
}

func detectSyslog(line []byte) bool {
	t, rest, ok := syslogHeader(line, time.Now(), time.UTC)
	if !ok || t.IsZero() {
		return false
	}
	_, _, ok = program(rest)
	return ok
}

// mysqlLog reads MySQL's and MariaDB's error logs:
//
//	2024-01-02T15:04:05.123456Z 0 [System] [MY-010931] [Server] /usr/sbin/mysqld: ready for connections. ...
//	2024-01-02 15:04:05 0 [Note] /usr/sbin/mariadbd: ready for connections.
//	240102 15:04:05 [Note] /usr/sbin/mysqld: ready for connections. (MySQL 5.5, MariaDB 10.0)
func mysqlLog(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	t, n, ok := timeISO(line, p.loc)
	if !ok {
		t, n, ok = timeMySQLOld(line, p.loc)
	}
	if !ok {
		if len(bytes.TrimSpace(line)) == 0 {
			return false, true
		}
		// A crash report's free text ("Thread pointer: 0x0", stack frames)
		// follows "got signal": readable, not events.
		return false, true
	}
	if !mysqlMessage(p, line[n:], ev) {
		return false, true
	}
	ev.Time = t
	return true, true
}

// timeMySQLOld parses "240102 15:04:05" or "240102  5:04:05".
func timeMySQLOld(b []byte, loc *time.Location) (time.Time, int, bool) {
	if len(b) < 15 || b[6] != ' ' {
		return time.Time{}, 0, false
	}
	yy, ok1 := digits(b, 0, 2)
	mo, ok2 := digits(b, 2, 2)
	d, ok3 := digits(b, 4, 2)
	i := 7
	if b[i] == ' ' {
		b = append([]byte(nil), b[:16]...)
		b[i] = '0'
	}
	h, mi, s, ok4 := clock(b, i)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, 0, false
	}
	t, ok := mkTime(2000+yy, time.Month(mo), d, h, mi, s, 0, loc)
	return t, 15, ok
}

// mysqlMessage classifies a MySQL/MariaDB message: too many connections,
// a crash, a restart.
func mysqlMessage(p *parser, msg []byte, ev *Event) bool {
	switch {
	case bytes.Contains(msg, []byte("Too many connections")):
		ev.Kind, ev.Process, ev.Detail = KindDependency, "mysql", "Too many connections"
	case bytes.Contains(msg, []byte(" got signal ")):
		i := bytes.Index(msg, []byte(" got signal "))
		sig := msg[i+len(" got signal "):]
		if e := bytes.IndexAny(sig, " ;"); e >= 0 {
			sig = sig[:e]
		}
		ev.Kind, ev.Process, ev.Detail = KindDependency, "mysql", "crashed: got signal "+string(limit(sig, 8))
	case bytes.Contains(msg, []byte("Starting crash recovery")):
		ev.Kind, ev.Process, ev.Detail = KindDependency, "mysql", "crash recovery"
	case bytes.Contains(msg, []byte("Out of memory")) || bytes.Contains(msg, []byte("out of memory")):
		ev.Kind, ev.Process, ev.Detail = KindDependency, "mysql", "out of memory"
	case bytes.Contains(msg, []byte("ready for connections")):
		ev.Kind, ev.Process = KindRestart, "mysql"
	default:
		id := p.m[serverMySQL].match(msg)
		if id == "" {
			return false
		}
		p.setCause(ev, id)
	}
	return true
}

func detectMySQL(line []byte) bool {
	_, n, ok := timeISO(line, time.UTC)
	if !ok {
		_, n, ok = timeMySQLOld(line, time.UTC)
	}
	if !ok {
		return false
	}
	rest := line[n:]
	// "0 [Note]", " [ERROR]", "140 [Warning] [MY-...]".
	var f [2][]byte
	k := splitFields(rest, f[:])
	if k == 0 {
		return false
	}
	lvl := f[0]
	if _, err := strconv.Atoi(string(lvl)); err == nil && k == 2 {
		lvl = f[1]
	}
	switch string(lvl) {
	case "[Note]", "[Warning]", "[ERROR]", "[System]", "[Error]", "[Information]":
		return true
	}
	return false
}
