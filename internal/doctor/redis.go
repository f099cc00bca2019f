package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// redisFix is the fix of a Redis at maxclients.
const redisFix = "Redis refuses clients past maxclients (redis.conf, default 10000, lowered to fit the open files limit): raise it (and LimitNOFILE), and look for clients that leak connections (CLIENT LIST shows their age and idle time; set timeout to close idle ones)."

// redisDownFix is the fix of a Redis that cannot be reached.
const redisDownFix = "Start Redis (systemctl status redis-server) and check the address the application uses against the one it listens on (bind, port and unixsocket in redis.conf; ss -ltnp)."

// redisMemFix is the fix of a Redis out of memory.
const redisMemFix = "Redis is at maxmemory: with maxmemory-policy noeviction it refuses writes (\"OOM command not allowed\"). Raise maxmemory if the host has room, or set an eviction policy (allkeys-lru) for a cache, and find the big keys (redis-cli --bigkeys)."

// maxBulk bounds a RESP bulk string read (INFO's answer).
const maxBulk = 4 << 20

// errRedis is an error reply from Redis ("-ERR ...").
type errRedis struct{ msg string }

func (e *errRedis) Error() string { return e.msg }

// redisAddr parses host:port, a socket path or redis://[user:pass@]host:port
// into the address and the credentials.
func redisAddr(s string) (addr, user, pass string, err error) {
	if !strings.Contains(s, "://") {
		return s, "", "", nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", "", fmt.Errorf("redis address %q: %w", Redact(s), err)
	}
	switch u.Scheme {
	case "redis":
	case "unix":
		return u.Path, "", "", nil
	default:
		return "", "", "", fmt.Errorf("redis address %q: scheme %q: want redis:// or unix:// (doctor does not speak TLS to Redis)", Redact(s), u.Scheme)
	}
	addr = u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	return addr, user, pass, nil
}

// redisCmd sends a command as a RESP array and reads the answer.
func redisCmd(conn io.Writer, r *bufio.Reader, args ...string) (any, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&sb, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, sb.String()); err != nil {
		return nil, err
	}
	return readRESP(r, 0)
}

// readRESP reads one RESP value: a string for simple and bulk strings, an
// int64, a []any, nil, or an *errRedis error.
func readRESP(r *bufio.Reader, depth int) (any, error) {
	if depth > 4 {
		return nil, errors.New("RESP nested too deep")
	}
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if line == "" {
		return nil, errors.New("empty RESP line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, &errRedis{msg: body}
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n > maxBulk {
			return nil, fmt.Errorf("bad RESP bulk length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n > 1000 {
			return nil, fmt.Errorf("bad RESP array length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, 0, n)
		for range n {
			v, err := readRESP(r, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("not a Redis answer: %q", truncate(line, 80))
}

// parseInfo parses INFO's "key:value" lines.
func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// redis is check 5 for Redis: PING, then INFO (clients against maxclients,
// memory against maxmemory, rejected connections) over RESP.
func (e *env) redis(ctx context.Context, target string) []Finding {
	addr, user, pass, err := redisAddr(target)
	if err != nil {
		return []Finding{skip(err.Error())}
	}
	conn, err := dial(ctx, addr)
	if err != nil {
		return []Finding{depFail("cannot connect: "+connectProblem(err, "Redis"), redisDownFix)}
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if pass != "" {
		args := []string{"AUTH", pass}
		if user != "" {
			args = []string{"AUTH", user, pass}
		}
		if _, err := redisCmd(conn, r, args...); err != nil {
			return []Finding{e.redisError(err, "AUTH")}
		}
	}
	pong, err := redisCmd(conn, r, "PING")
	if err != nil {
		return []Finding{e.redisError(err, "PING")}
	}
	if pong != "PONG" {
		return []Finding{depFail(fmt.Sprintf("the server does not speak Redis's protocol: PING → %v", pong), redisDownFix)}
	}
	v, err := redisCmd(conn, r, "INFO")
	if err != nil {
		return []Finding{e.redisError(err, "INFO")}
	}
	text, _ := v.(string)
	info := parseInfo(text)
	n := func(k string) int64 {
		x, _ := strconv.ParseInt(info[k], 10, 64)
		return x
	}
	clients, maxClients := n("connected_clients"), n("maxclients")
	if maxClients == 0 {
		if v, err := redisCmd(conn, r, "CONFIG", "GET", "maxclients"); err == nil {
			if a, ok := v.([]any); ok && len(a) == 2 {
				if s, ok := a[1].(string); ok {
					maxClients, _ = strconv.ParseInt(s, 10, 64)
				}
			}
		}
	}
	used, maxMem := n("used_memory"), n("maxmemory")
	ev := []string{
		fmt.Sprintf("redis %s (%s), up %ss", info["redis_version"], info["redis_mode"], info["uptime_in_seconds"]),
		fmt.Sprintf("clients: %d connected (this check included), maxclients %d, rejected_connections %d since start", clients, maxClients, n("rejected_connections")),
		fmt.Sprintf("memory: used_memory %s, maxmemory %s (policy %s), evicted_keys %d", mib(used), mib(maxMem), info["maxmemory_policy"], n("evicted_keys")),
	}
	switch {
	case maxClients > 0 && clients >= maxClients:
		f := depFail(fmt.Sprintf("Redis is at maxclients: %d of %d", clients, maxClients), redisFix)
		f.Evidence = ev
		return []Finding{f}
	case maxMem > 0 && used >= maxMem*95/100 && info["maxmemory_policy"] == "noeviction":
		f := depFail(fmt.Sprintf("Redis is at maxmemory with noeviction: %s of %s, writes are refused", mib(used), mib(maxMem)), redisMemFix)
		f.Evidence = ev
		return []Finding{f}
	case maxClients > 0 && clients >= maxClients*9/10:
		f := newFinding(StatusWarn, weightDependency-10, fmt.Sprintf("Redis is near maxclients: %d of %d", clients, maxClients), ev, redisFix)
		f.Cause = KindDependency
		return []Finding{f}
	case maxMem > 0 && used >= maxMem*9/10:
		f := newFinding(StatusWarn, weightDependency-10, fmt.Sprintf("Redis is near maxmemory: %s of %s", mib(used), mib(maxMem)), ev, redisMemFix)
		f.Cause = KindDependency
		return []Finding{f}
	case n("rejected_connections") > 0:
		f := newFinding(StatusWarn, weightDependency-20, fmt.Sprintf("Redis has turned away %d connections since it started (maxclients %d)", n("rejected_connections"), maxClients), ev, redisFix)
		f.Cause = KindDependency
		return []Finding{f}
	}
	return []Finding{ok(fmt.Sprintf("redis %s: PONG, %d clients of %d", info["redis_version"], clients, maxClients), ev...)}
}

// redisError builds the finding of a failed command.
func (e *env) redisError(err error, cmd string) Finding {
	var re *errRedis
	if !errors.As(err, &re) {
		return depFail(fmt.Sprintf("redis: %s: %s", cmd, connectProblem(err, "Redis")), redisDownFix)
	}
	switch {
	case strings.Contains(re.msg, "max number of clients reached"):
		f := depFail("Redis is at maxclients: it answered \"" + re.msg + "\"")
		f.Evidence = []string{cmd + " → -" + re.msg}
		f.Fix = redisFix
		return f
	case strings.HasPrefix(re.msg, "NOAUTH"), strings.HasPrefix(re.msg, "WRONGPASS"), strings.Contains(re.msg, "invalid password"):
		return newFinding(StatusSkip, weightInfo, "Redis needs a password to be checked: "+re.msg, []string{cmd + " → -" + re.msg}, "Give doctor the password: --redis redis://:PASSWORD@HOST:PORT (it is redacted from the output and report).")
	case strings.HasPrefix(re.msg, "LOADING"):
		f := newFinding(StatusWarn, weightDependency-10, "Redis is loading its dataset and refuses commands until it is done", []string{cmd + " → -" + re.msg}, "Wait for Redis to finish loading; if it restarts often, look at why (its log, OOM kills).")
		f.Cause = KindDependency
		return f
	}
	f := depFail(fmt.Sprintf("redis: %s → -%s", cmd, re.msg), redisDownFix)
	return f
}

// truncate cuts s to n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
