package testkit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PHPFPMBinary is Debian's php-fpm 8.2, from the package PHPFPMPackage.
const PHPFPMBinary = "/usr/sbin/php-fpm8.2"

// PHPFPMPackage is the Debian package that provides PHPFPMBinary;
// scripts/test installs it.
const PHPFPMPackage = "php8.2-fpm"

// Pool is one pool of a php-fpm master started by StartPHPFPM; pm is
// always static.
type Pool struct {
	// Name is the pool's section name, and its unix socket's base name.
	// Required.
	Name string
	// TCP listens on 127.0.0.1 and a free port instead of a unix socket in
	// the master's directory. Default false.
	TCP bool
	// MaxChildren is pm.max_children. Default 2.
	MaxChildren int
	// Backlog is listen.backlog. Default 0: not written (php-fpm's own).
	Backlog int
	// StatusPath is pm.status_path, such as "/fpm-status". Default none.
	StatusPath string
	// TerminateTimeout is request_terminate_timeout, such as "2s".
	// Default none.
	TerminateTimeout string
	// Extra are more lines for the pool's section, written last, such as
	// "php_flag[display_errors] = on". Default none.
	Extra []string
}

// PHPFPMConfig is what StartPHPFPM writes into the master's config.
type PHPFPMConfig struct {
	// Pools are the master's pools. At least one is required.
	Pools []Pool
	// Global are more lines for the [global] section, such as
	// "log_level = notice". Default none.
	Global []string
	// StartTimeout bounds the wait for each pool's socket. Default
	// StartTimeout.
	StartTimeout time.Duration
}

// PHPFPM is a php-fpm master started by a test (as root with -R, without a
// php.ini, so its settings are the test's), with a fresh document root.
type PHPFPM struct {
	t     testing.TB
	proc  *Process
	dir   string
	root  string
	log   string
	pools map[string]Pool
	addrs map[string][2]string
}

// StartPHPFPM writes the config into a new t.TempDir(), creates the
// document root dir/www, starts php-fpm, waits until every pool's socket
// accepts (c.StartTimeout each), and stops the master when the test ends. It
// fails the test (never skips it) if php-fpm is not installed.
func StartPHPFPM(t testing.TB, c PHPFPMConfig) *PHPFPM {
	t.Helper()
	NeedBinary(t, PHPFPMBinary, PHPFPMPackage)
	if len(c.Pools) == 0 {
		t.Fatal("testkit.StartPHPFPM: no pool")
	}
	dir := t.TempDir()
	f := &PHPFPM{t: t, dir: dir, root: filepath.Join(dir, "www"), log: filepath.Join(dir, "fpm.log"),
		pools: map[string]Pool{}, addrs: map[string][2]string{}}
	if err := os.Mkdir(f.root, 0o755); err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "[global]\nerror_log = %s\ndaemonize = no\npid = %s\n", f.log, filepath.Join(dir, "fpm.pid"))
	for _, l := range c.Global {
		conf.WriteString(l + "\n")
	}
	for _, p := range c.Pools {
		if p.Name == "" {
			t.Fatal("testkit.StartPHPFPM: a pool has no name")
		}
		if _, dup := f.pools[p.Name]; dup {
			t.Fatalf("testkit.StartPHPFPM: pool %q twice", p.Name)
		}
		if p.MaxChildren == 0 {
			p.MaxChildren = 2
		}
		network, address := "unix", filepath.Join(dir, p.Name+".sock")
		if p.TCP {
			network, address = "tcp", FreePort(t)
		}
		fmt.Fprintf(&conf, "[%s]\nlisten = %s\n", p.Name, address)
		if p.Backlog > 0 {
			fmt.Fprintf(&conf, "listen.backlog = %d\n", p.Backlog)
		}
		fmt.Fprintf(&conf, "pm = static\npm.max_children = %d\n", p.MaxChildren)
		if p.StatusPath != "" {
			fmt.Fprintf(&conf, "pm.status_path = %s\n", p.StatusPath)
		}
		if p.TerminateTimeout != "" {
			fmt.Fprintf(&conf, "request_terminate_timeout = %s\n", p.TerminateTimeout)
		}
		for _, l := range p.Extra {
			conf.WriteString(l + "\n")
		}
		f.pools[p.Name] = p
		f.addrs[p.Name] = [2]string{network, address}
	}
	confPath := filepath.Join(dir, "fpm.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	f.proc = startProcess(t, spawn{name: PHPFPMBinary, args: []string{"--nodaemonize", "-n", "--fpm-config", confPath, "-R"}, extra: f.ReadLog})
	for _, p := range c.Pools {
		a := f.addrs[p.Name]
		f.proc.waitDial(t, "php-fpm pool "+p.Name, a[0], a[1], c.StartTimeout)
	}
	return f
}

// Network returns the named pool's network, "unix" or "tcp"; it fails the
// test if there is no such pool.
func (f *PHPFPM) Network(pool string) string { return f.addr(pool)[0] }

// Address returns the named pool's socket path or host:port; it fails the
// test if there is no such pool.
func (f *PHPFPM) Address(pool string) string { return f.addr(pool)[1] }

func (f *PHPFPM) addr(pool string) [2]string {
	f.t.Helper()
	a, ok := f.addrs[pool]
	if !ok {
		f.t.Fatalf("testkit: php-fpm has no pool %q", pool)
	}
	return a
}

// Dir returns the master's directory (config, log, sockets, and the
// document root below it); tests may put their own files there.
func (f *PHPFPM) Dir() string { return f.dir }

// Root returns the document root, Dir()/www.
func (f *PHPFPM) Root() string { return f.root }

// Write creates the file name (slash-separated, relative) under the
// document root with content, creating its directories.
func (f *PHPFPM) Write(name, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// ReadLog returns the master's error log (with the workers' output), or ""
// if it cannot be read.
func (f *PHPFPM) ReadLog() string {
	b, _ := os.ReadFile(f.log)
	return string(b)
}

// Output returns what the master wrote to stdout and stderr.
func (f *PHPFPM) Output() string { return f.proc.Output() }

// Pid returns the master's process id.
func (f *PHPFPM) Pid() int { return f.proc.Pid() }

// Stop ends the master and its workers (SIGTERM, then SIGKILL after
// StopTimeout) and waits for it; it is also called when the test ends.
func (f *PHPFPM) Stop() { f.proc.Stop() }

// Workers returns the pids of the master's children, read from /proc.
func (f *PHPFPM) Workers() []int {
	f.t.Helper()
	master := strconv.Itoa(f.proc.Pid())
	entries, err := os.ReadDir("/proc")
	if err != nil {
		f.t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ")".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 1 && fields[1] == master {
			pids = append(pids, pid)
		}
	}
	return pids
}
