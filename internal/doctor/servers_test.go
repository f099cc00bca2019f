package doctor

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/gatewise/gatewise/internal/testkit"
)

// The real servers the tests start, from Debian's packages (scripts/test
// installs them).
const (
	mariadbBinary   = "/usr/sbin/mariadbd"
	mariadbInstall  = "/usr/bin/mariadb-install-db"
	memcachedBinary = "/usr/bin/memcached"
	redisBinary     = "/usr/bin/redis-server"
)

// startupTimeout bounds a server's start.
const startupTimeout = 30 * time.Second

// need fails the test with the install line when a program is missing.
func need(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): install it with `apt-get install -y %s`, or run scripts/test", path, err, pkg)
	}
}

// freePort returns a loopback address that was free a moment ago, below
// the ephemeral range (testkit.FreePort).
func freePort(t *testing.T) string {
	t.Helper()
	return testkit.FreePort(t)
}

// server is a process started by a test.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	log  string // a log file to show when it fails
}

// startProcess starts a server and stops it when the test ends.
func startProcess(t *testing.T, log string, name string, args ...string) *server {
	t.Helper()
	s := &server{t: t, cmd: exec.Command(name, args...), out: &bytes.Buffer{}, done: make(chan struct{}), log: log}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	return s
}

// waitFor waits until addr (host:port or a socket path) accepts a
// connection.
func (s *server) waitFor(addr string) {
	s.t.Helper()
	deadline := time.Now().Add(startupTimeout)
	for {
		c, err := net.DialTimeout(network(addr), addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("%s exited: %s\n%s", s.cmd.Path, s.out.String(), s.readLog())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s does not listen on %s after %s: %v\n%s", s.cmd.Path, addr, startupTimeout, err, s.readLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) readLog() string {
	if s.log == "" {
		return ""
	}
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// stop ends the server with SIGTERM (SIGKILL after 15s) and waits for it.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// testEnv returns an env for network checks: the real host, a short
// timeout.
func testEnv(timeout time.Duration) *env {
	return newEnv(Options{CheckTimeout: timeout, Journal: func(context.Context, time.Time) ([]byte, error) { return nil, nil }})
}

// runCheck runs a check the way Run does: under the env's timeout, with
// its findings redacted.
func runCheck(e *env, name, target string, run func(context.Context) []Finding) []Finding {
	rs := e.runAll(context.Background(), []check{{name: name, target: target, run: run}}, func(Progress) {})
	return rs[0].findings
}

// expect checks that fs is one finding of the status, whose summary and
// evidence hold every want.
func expect(t *testing.T, fs []Finding, st Status, cause string, want ...string) {
	t.Helper()
	if len(fs) != 1 {
		t.Fatalf("want one finding, got %d: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Status != st || f.Cause != cause {
		t.Errorf("got %s %q (%s), want %s %q", f.Status, f.Cause, f.Summary, st, cause)
	}
	text := f.Summary + "\n" + strings.Join(f.Evidence, "\n")
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("finding lacks %q:\n%s", w, text)
		}
	}
}

// mariadb is a MariaDB server started by a test, with a user "app"
// (password "apppw") besides root.
type mariadb struct {
	*server
	addr, socket string
}

// startMariaDB creates a data directory and starts mariadbd on loopback
// and a socket, with max_connections = 10 (MariaDB's least).
func startMariaDB(t *testing.T) *mariadb {
	t.Helper()
	need(t, mariadbBinary, "mariadb-server")
	need(t, mariadbInstall, "mariadb-server")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	install := exec.Command(mariadbInstall, "--no-defaults", "--datadir="+data, "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m := &mariadb{addr: freePort(t), socket: filepath.Join(dir, "mysqld.sock")}
	_, port, _ := net.SplitHostPort(m.addr)
	log := filepath.Join(dir, "error.log")
	m.server = startProcess(t, log, mariadbBinary, "--no-defaults", "--datadir="+data, "--user=root",
		"--bind-address=127.0.0.1", "--port="+port, "--socket="+m.socket, "--pid-file="+filepath.Join(dir, "pid"),
		"--max-connections=10", "--innodb-buffer-pool-size=16M", "--skip-name-resolve", "--skip-log-bin", "--log-error="+log)
	m.waitFor(m.addr)
	m.waitFor(m.socket)
	db := m.open(t, "root", "")
	for _, q := range []string{"CREATE USER 'app'@'%' IDENTIFIED BY 'apppw'", "GRANT SELECT, PROCESS ON *.* TO 'app'@'%'"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close() // so that the slot kept for administrators is free
	return m
}

// open returns a database handle as user over TCP, closed at the end.
func (m *mariadb) open(t *testing.T, user, pass string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, pass, "tcp", m.addr
	cfg.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMySQLRealServer(t *testing.T) {
	t.Parallel()
	m := startMariaDB(t)
	e := testEnv(4 * time.Second)
	check := func(dsn string) []Finding {
		return runCheck(e, "mysql", Redact(dsn), func(ctx context.Context) []Finding { return e.mysql(ctx, dsn) })
	}

	t.Run("healthy, handshake only", func(t *testing.T) {
		expect(t, check(m.addr), StatusOK, "", "answers the handshake", "MariaDB")
	})
	t.Run("healthy, socket", func(t *testing.T) {
		expect(t, check(m.socket), StatusOK, "", "answers the handshake")
	})
	t.Run("healthy, with credentials", func(t *testing.T) {
		fs := check("mysql://app:apppw@" + m.addr + "/")
		expect(t, fs, StatusOK, "", "SELECT 1 ok", "of 10 connections", "Threads_connected")
		if strings.Contains(fs[0].Summary+strings.Join(fs[0].Evidence, ""), "apppw") || fs[0].Target != "mysql://app:[REDACTED]@"+m.addr+"/" {
			t.Errorf("the password is not redacted: target %q", fs[0].Target)
		}
	})
	t.Run("driver DSN, wrong password", func(t *testing.T) {
		expect(t, check("app:wrong@tcp("+m.addr+")/"), StatusSkip, "", "error 1045")
	})

	t.Run("max_connections reached", func(t *testing.T) {
		// Hold connections as app until the server refuses one with 1040.
		db := m.open(t, "app", "apppw")
		ctx := context.Background()
		var held []*sql.Conn
		t.Cleanup(func() {
			for _, c := range held {
				c.Close()
			}
		})
		refused := false
		for i := 0; i < 20 && !refused; i++ {
			c, err := db.Conn(ctx)
			if err == nil {
				err = c.PingContext(ctx)
			}
			var me *mysql.MySQLError
			switch {
			case err == nil:
				held = append(held, c)
			case errors.As(err, &me) && me.Number == mysqlTooManyConnections:
				refused = true
			default:
				t.Fatalf("connection %d: %v", i, err)
			}
		}
		if !refused {
			t.Fatalf("20 connections open and none refused: max_connections is not 10")
		}
		// As app, doctor is refused like the application.
		expect(t, check("mysql://app:apppw@"+m.addr+"/"), StatusFail, KindDependency, "error 1040", "Too many connections")
		// As root, it gets the slot MariaDB keeps for administrators and
		// sees the count at the limit.
		// (A connection closed just before may still hold its slot for a
		// moment, refusing even root: ask again until it is gone.)
		var fs []Finding
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if fs = check("root@tcp(" + m.addr + ")/"); strings.Contains(fs[0].Summary, "at max_connections") {
				break
			}
		}
		expect(t, fs, StatusFail, KindDependency, "at max_connections", "of max_connections 10")
	})

	t.Run("stopped", func(t *testing.T) {
		m.stop()
		expect(t, check("mysql://app:apppw@"+m.addr+"/"), StatusFail, KindDependency, "connection refused")
		expect(t, check(m.socket), StatusFail, KindDependency, "socket does not exist")
	})
}

// startMemcached starts memcached on loopback with a connection limit of
// conns (memcached uses some of them itself).
func startMemcached(t *testing.T, conns int) (*server, string) {
	t.Helper()
	need(t, memcachedBinary, "memcached")
	addr := freePort(t)
	host, port, _ := net.SplitHostPort(addr)
	s := startProcess(t, "", memcachedBinary, "-u", "root", "-l", host, "-p", port, "-U", "0", "-t", "1", "-m", "16", "-c", fmt.Sprint(conns))
	s.waitFor(addr)
	return s, addr
}

func TestMemcachedRealServer(t *testing.T) {
	t.Parallel()
	e := testEnv(3 * time.Second)
	check := func(addr string) []Finding {
		return runCheck(e, "memcached", addr, func(ctx context.Context) []Finding { return e.memcached(ctx, addr) })
	}
	t.Run("healthy", func(t *testing.T) {
		_, addr := startMemcached(t, 64)
		expect(t, check(addr), StatusOK, "", "memcached 1.", "max_connections 64")
	})
	t.Run("saturated", func(t *testing.T) {
		s, addr := startMemcached(t, 16)
		// Open connections until memcached turns one away.
		var held []net.Conn
		t.Cleanup(func() {
			for _, c := range held {
				c.Close()
			}
		})
		full := false
		for i := 0; i < 30 && !full; i++ {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprint(c, "version\r\n")
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			c.SetDeadline(time.Time{})
			if strings.Contains(line, "Too many open connections") {
				full = true
				c.Close()
				continue
			}
			held = append(held, c)
		}
		if !full {
			t.Fatal("30 connections open and none turned away")
		}
		expect(t, check(addr), StatusFail, KindDependency, "connection limit", "Too many open connections")
		// Once the clients leave, the rejections remain in its stats.
		for _, c := range held {
			c.Close()
		}
		held = nil
		deadline := time.Now().Add(5 * time.Second)
		var fs []Finding
		for time.Now().Before(deadline) {
			if fs = check(addr); fs[0].Status == StatusWarn {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		expect(t, fs, StatusWarn, KindDependency, "rejected since it started")
		s.stop()
		expect(t, check(addr), StatusFail, KindDependency, "connection refused")
	})
}

// startRedis starts redis-server on loopback with maxclients and extra
// settings.
func startRedis(t *testing.T, maxClients int, extra ...string) (*server, string) {
	t.Helper()
	need(t, redisBinary, "redis-server")
	addr := freePort(t)
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{"--port", port, "--bind", host, "--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--maxclients", fmt.Sprint(maxClients)}, extra...)
	s := startProcess(t, "", redisBinary, args...)
	s.waitFor(addr)
	return s, addr
}

func TestRedisRealServer(t *testing.T) {
	t.Parallel()
	e := testEnv(3 * time.Second)
	check := func(addr string) []Finding {
		return runCheck(e, "redis", Redact(addr), func(ctx context.Context) []Finding { return e.redis(ctx, addr) })
	}
	t.Run("healthy", func(t *testing.T) {
		_, addr := startRedis(t, 100)
		expect(t, check(addr), StatusOK, "", "PONG", "maxclients 100")
	})
	t.Run("password", func(t *testing.T) {
		_, addr := startRedis(t, 100, "--requirepass", "s3cretpw")
		expect(t, check(addr), StatusSkip, "", "NOAUTH")
		fs := check("redis://:s3cretpw@" + addr)
		expect(t, fs, StatusOK, "", "PONG")
		if strings.Contains(fs[0].Target, "s3cretpw") {
			t.Errorf("target holds the password: %q", fs[0].Target)
		}
	})
	t.Run("maxmemory", func(t *testing.T) {
		_, addr := startRedis(t, 100, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		value := strings.Repeat("x", 64<<10)
		for i := 0; i < 200; i++ {
			if _, err := redisCmd(c, r, "SET", fmt.Sprint("k", i), value); err != nil {
				break // OOM command not allowed: full
			}
		}
		expect(t, check(addr), StatusFail, KindDependency, "maxmemory with noeviction")
	})
	t.Run("maxclients", func(t *testing.T) {
		s, addr := startRedis(t, 2)
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if v, err := redisCmd(c, bufio.NewReader(c), "PING"); err != nil || v != "PONG" {
				t.Fatalf("client %d: %v %v", i, v, err)
			}
		}
		expect(t, check(addr), StatusFail, KindDependency, "maxclients", "max number of clients reached")
		s.stop()
		expect(t, check(addr), StatusFail, KindDependency, "connection refused")
	})
}
