package doctor

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// memcachedFix is the fix of a memcached at its connection limit.
const memcachedFix = "Memcached refuses connections past its limit (-c in /etc/memcached.conf, default 1024): raise it, and look for clients that open a connection per request and keep it (persistent connections × PHP-FPM workers). A full cache (evictions) needs more memory (-m)."

// memcachedDownFix is the fix of a memcached that cannot be reached.
const memcachedDownFix = "Start memcached (systemctl status memcached) and check the address the application uses against the one it listens on (-l and -p in /etc/memcached.conf; ss -ltnp)."

// maxStats bounds the lines of a stats answer.
const maxStats = 1000

// memcached is check 5 for Memcached: version, then stats (connections
// against the maximum, rejected connections, evictions) over its text
// protocol.
func (e *env) memcached(ctx context.Context, addr string) []Finding {
	conn, err := dial(ctx, addr)
	if err != nil {
		return []Finding{depFail("cannot connect: "+connectProblem(err, "memcached"), memcachedDownFix)}
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("version\r\n")); err != nil {
		return []Finding{depFail("memcached: "+connectProblem(err, "memcached"), memcachedDownFix)}
	}
	line, err := readLine(r)
	if err != nil {
		return []Finding{depFail("memcached accepted the connection but did not answer version: "+connectProblem(err, "memcached"), memcachedDownFix)}
	}
	if strings.Contains(line, "Too many open connections") {
		f := depFail("memcached is at its connection limit: it answered \"" + line + "\"")
		f.Evidence = []string{"version → " + line}
		f.Fix = memcachedFix
		return []Finding{f}
	}
	version, found := strings.CutPrefix(line, "VERSION ")
	if !found {
		return []Finding{depFail(fmt.Sprintf("the server does not speak memcached's protocol: version → %q", line), memcachedDownFix)}
	}
	if _, err := conn.Write([]byte("stats\r\n")); err != nil {
		return []Finding{depFail("memcached: "+connectProblem(err, "memcached"), memcachedDownFix)}
	}
	stats := map[string]string{}
	for i := 0; i < maxStats; i++ {
		line, err := readLine(r)
		if err != nil {
			return []Finding{depFail("memcached did not finish its stats: "+connectProblem(err, "memcached"), memcachedDownFix)}
		}
		if line == "END" {
			break
		}
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "STAT" {
			stats[f[1]] = f[2]
		}
	}
	n := func(k string) int64 {
		v, _ := strconv.ParseInt(stats[k], 10, 64)
		return v
	}
	cur, maxc, rejected := n("curr_connections"), n("max_connections"), n("rejected_connections")
	ev := []string{
		fmt.Sprintf("memcached %s, up %ss", version, stats["uptime"]),
		fmt.Sprintf("connections: %d open, max_connections %d, rejected %d since start, listen_disabled_num %d", cur, maxc, rejected, n("listen_disabled_num")),
		fmt.Sprintf("memory: %s used of limit_maxbytes %s, evictions %d", mib(n("bytes")), mib(n("limit_maxbytes")), n("evictions")),
	}
	switch {
	case maxc > 0 && cur >= maxc*9/10:
		f := depFail(fmt.Sprintf("memcached is near its connection limit: %d of %d", cur, maxc), memcachedFix)
		f.Evidence = ev
		return []Finding{f}
	case rejected > 0 || n("listen_disabled_num") > 0:
		f := newFinding(StatusWarn, weightDependency-20, fmt.Sprintf("memcached has turned connections away: %d rejected since it started", rejected), ev, memcachedFix)
		f.Cause = KindDependency
		return []Finding{f}
	case n("evictions") > 0 && n("limit_maxbytes") > 0 && n("bytes") >= n("limit_maxbytes")*9/10:
		f := newFinding(StatusWarn, weightInfo+10, fmt.Sprintf("memcached is full: %d evictions", n("evictions")), ev, memcachedFix)
		f.Cause = KindDependency
		return []Finding{f}
	}
	return []Finding{ok(fmt.Sprintf("memcached %s: %d connections of %d", version, cur, maxc), ev...)}
}

// depFail builds a failed dependency finding; fix is optional.
func depFail(summary string, fix ...string) Finding {
	f := newFinding(StatusFail, weightDependency, summary, nil, strings.Join(fix, " "))
	f.Cause = KindDependency
	return f
}
