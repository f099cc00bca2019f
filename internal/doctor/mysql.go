package doctor

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQL error numbers doctor recognises.
const (
	mysqlTooManyConnections = 1040
	mysqlAccessDenied       = 1045
	mysqlUnknownDatabase    = 1049
	mysqlHostBlocked        = 1129
	mysqlUserConnections    = 1203
)

// mysqlFix is the fix of a server at max_connections.
const mysqlFix = "MySQL refuses connections past max_connections (\"Too many connections\", error 1040). Find what holds them (SHOW PROCESSLIST: slow queries, locks, sleeping persistent connections), keep PHP-FPM's pm.max_children × connections per worker below max_connections, and raise it if memory allows (SET GLOBAL max_connections = N, and in my.cnf)."

// mysqlDownFix is the fix of a server that cannot be reached.
const mysqlDownFix = "Start MySQL/MariaDB (systemctl status mariadb or mysql; its error log says why it stopped: a crash, an OOM kill, a full disk) and check the address the application uses (bind-address, port and socket in my.cnf; ss -ltnp)."

// mysqlTarget is a parsed --mysql value.
type mysqlTarget struct {
	cfg *mysql.Config
	// creds reports whether a user was given: only then are SELECT 1 and
	// the connection counts checked.
	creds bool
}

// parseMySQL reads host:port, a socket path, mysql://user:pass@host:port/db
// (?socket=PATH for a socket) or the driver's user:pass@tcp(host:port)/db.
func parseMySQL(s string, timeout time.Duration) (mysqlTarget, error) {
	cfg := mysql.NewConfig()
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = timeout, timeout, timeout
	cfg.AllowNativePasswords = true
	cfg.AllowCleartextPasswords = false
	switch {
	case strings.HasPrefix(s, "mysql://") || strings.HasPrefix(s, "mariadb://"):
		u, err := url.Parse(s)
		if err != nil {
			return mysqlTarget{}, fmt.Errorf("mysql DSN %q: %w", Redact(s), err)
		}
		cfg.Net, cfg.Addr = "tcp", u.Host
		if u.Port() == "" {
			cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
		}
		if sock := u.Query().Get("socket"); sock != "" {
			cfg.Net, cfg.Addr = "unix", sock
		}
		if u.User != nil {
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
		}
		cfg.DBName = strings.TrimPrefix(u.Path, "/")
	case strings.Contains(s, "@") || strings.Contains(s, "("):
		c, err := mysql.ParseDSN(s)
		if err != nil {
			return mysqlTarget{}, fmt.Errorf("mysql DSN %q: %w", Redact(s), err)
		}
		c.Timeout, c.ReadTimeout, c.WriteTimeout = timeout, timeout, timeout
		cfg = c
	default:
		cfg.Net, cfg.Addr = network(s), s
		if cfg.Net == "tcp" {
			if _, _, err := net.SplitHostPort(s); err != nil {
				cfg.Addr = net.JoinHostPort(s, "3306")
			}
		}
	}
	return mysqlTarget{cfg: cfg, creds: cfg.User != ""}, nil
}

// greeting is what the server says first.
type greeting struct {
	version string
	errNum  int
	errMsg  string
}

// readGreeting connects and reads the server's first packet: its handshake
// (protocol 10 and the version), or an error packet (1040 Too many
// connections, 1129 host blocked) sent in its place.
func readGreeting(ctx context.Context, network, addr string) (greeting, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return greeting{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	r := bufio.NewReader(c)
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return greeting{}, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if n == 0 || n > 1<<16 {
		return greeting{}, fmt.Errorf("not a MySQL server: a first packet of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return greeting{}, err
	}
	return parseGreeting(p)
}

// parseGreeting reads a handshake or error packet's payload.
func parseGreeting(p []byte) (greeting, error) {
	if len(p) == 0 {
		return greeting{}, errors.New("not a MySQL server: an empty first packet")
	}
	switch p[0] {
	case 0x0a:
		end := 1
		for end < len(p) && p[end] != 0 {
			end++
		}
		v := string(p[1:end])
		v = strings.TrimPrefix(v, "5.5.5-") // MariaDB's prefix for old clients
		return greeting{version: v}, nil
	case 0xff:
		if len(p) < 3 {
			return greeting{}, errors.New("not a MySQL server: a short error packet")
		}
		g := greeting{errNum: int(binary.LittleEndian.Uint16(p[1:3]))}
		msg := p[3:]
		if len(msg) > 6 && msg[0] == '#' {
			msg = msg[6:]
		}
		g.errMsg = string(msg)
		return g, nil
	}
	return greeting{}, fmt.Errorf("not a MySQL server: protocol %d", p[0])
}

// mysql is check 5 for MySQL/MariaDB: the handshake, and with credentials
// SELECT 1, Threads_connected against max_connections, and error 1040.
func (e *env) mysql(ctx context.Context, dsn string) []Finding {
	t, err := parseMySQL(dsn, e.opts.CheckTimeout)
	if err != nil {
		return []Finding{skip(err.Error())}
	}
	cfg := t.cfg
	g, err := readGreeting(ctx, cfg.Net, cfg.Addr)
	if err != nil {
		return []Finding{depFail("cannot connect: "+connectProblem(err, "MySQL"), mysqlDownFix)}
	}
	if g.errNum != 0 {
		return []Finding{mysqlErrorFinding(g.errNum, g.errMsg, "handshake", cfg.User)}
	}
	ev := []string{"handshake: " + g.version}
	if !t.creds {
		return []Finding{ok("MySQL "+g.version+" answers the handshake (give a user in the DSN to check SELECT 1 and its connections)", ev...)}
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return []Finding{skip("cannot set up the MySQL client: " + err.Error())}
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	db.SetMaxOpenConns(1)
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			f := mysqlErrorFinding(int(me.Number), me.Message, "SELECT 1", cfg.User)
			f.Evidence = append(ev, f.Evidence...)
			return []Finding{f}
		}
		return []Finding{depFail("mysql: SELECT 1: "+connectProblem(err, "MySQL"), mysqlDownFix)}
	}
	ev = append(ev, "SELECT 1 as "+cfg.User+": ok")
	status := map[string]int64{}
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Threads_running', 'Max_used_connections', 'Aborted_connects', 'Connection_errors_max_connections', 'Uptime')")
	if err == nil {
		for rows.Next() {
			var k, v string
			if rows.Scan(&k, &v) == nil {
				status[k], _ = strconv.ParseInt(v, 10, 64)
			}
		}
		rows.Close()
	}
	var maxConn int64
	if err := db.QueryRowContext(ctx, "SELECT @@max_connections").Scan(&maxConn); err != nil || len(status) == 0 {
		return []Finding{ok("MySQL "+g.version+": SELECT 1 ok (the user cannot read the connection counts)", ev...)}
	}
	threads := status["Threads_connected"]
	ev = append(ev,
		fmt.Sprintf("Threads_connected %d (this check included) of max_connections %d; Threads_running %d", threads, maxConn, status["Threads_running"]),
		fmt.Sprintf("Max_used_connections %d, Connection_errors_max_connections %d, Aborted_connects %d since start (up %ds)", status["Max_used_connections"], status["Connection_errors_max_connections"], status["Aborted_connects"], status["Uptime"]),
	)
	switch {
	case maxConn > 0 && threads >= maxConn:
		f := depFail(fmt.Sprintf("MySQL is at max_connections: %d connected of %d", threads, maxConn), mysqlFix)
		f.Evidence = ev
		return []Finding{f}
	case maxConn > 0 && threads >= maxConn*8/10:
		f := newFinding(StatusWarn, weightDependency-10, fmt.Sprintf("MySQL is near max_connections: %d connected of %d", threads, maxConn), ev, mysqlFix)
		f.Cause = KindDependency
		return []Finding{f}
	case status["Connection_errors_max_connections"] > 0 || maxConn > 0 && status["Max_used_connections"] >= maxConn:
		f := newFinding(StatusWarn, weightDependency-20, fmt.Sprintf("MySQL has reached max_connections since it started (Max_used_connections %d of %d)", status["Max_used_connections"], maxConn), ev, mysqlFix)
		f.Cause = KindDependency
		return []Finding{f}
	}
	return []Finding{ok(fmt.Sprintf("MySQL %s: SELECT 1 ok, %d of %d connections", g.version, threads, maxConn), ev...)}
}

// mysqlErrorFinding turns a server error into a finding.
func mysqlErrorFinding(num int, msg, step, user string) Finding {
	ev := []string{fmt.Sprintf("%s: error %d: %s", step, num, msg)}
	switch num {
	case mysqlTooManyConnections, mysqlUserConnections:
		f := depFail(fmt.Sprintf("MySQL refuses connections: error %d (%s)", num, msg), mysqlFix)
		f.Evidence = ev
		return f
	case mysqlHostBlocked:
		f := depFail("MySQL blocks this host after too many connection errors (1129)", "Run `mariadb-admin flush-hosts` (or `mysqladmin flush-hosts`), raise max_connect_errors, and find the client whose connections fail.")
		f.Evidence = ev
		return f
	case mysqlAccessDenied:
		return newFinding(StatusSkip, weightInfo, fmt.Sprintf("MySQL answers, but refuses the user %s (error 1045): the connection counts were not read", user), ev, "Give doctor a user that can log in (the application's, from its config); it needs no privilege for SELECT 1, and PROCESS for the counts.")
	case mysqlUnknownDatabase:
		f := newFinding(StatusWarn, weightDependency-20, "the database named in the DSN does not exist (1049)", ev, "Check the database name in the application's config against SHOW DATABASES.")
		f.Cause = KindDependency
		return f
	}
	f := depFail(fmt.Sprintf("MySQL error %d: %s", num, msg), mysqlDownFix)
	f.Evidence = ev
	return f
}
