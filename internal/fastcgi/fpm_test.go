package fastcgi

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fpmBinary is Debian's php-fpm; scripts/test installs it (php8.2-fpm).
const fpmBinary = "/usr/sbin/php-fpm8.2"

// pool is one pool of a test php-fpm master.
type pool struct {
	// name is the pool's name; also the key in fpm.pools.
	name string
	// tcp listens on 127.0.0.1 and a free port instead of a unix socket.
	tcp bool
	// maxChildren is pm.max_children (pm = static). Default 2.
	maxChildren int
	// backlog is listen.backlog. Default 16.
	backlog int
	// terminate is request_terminate_timeout, such as "2s". Default none.
	terminate string
	// extra lines for the pool's section.
	extra []string

	// network and address are set by startFPM.
	network, address string
}

// fpm is a php-fpm master started by a test, with its document root.
type fpm struct {
	t     testing.TB
	dir   string
	root  string
	log   string
	cmd   *exec.Cmd
	pools map[string]*pool
	done  chan struct{}
}

// startFPM starts php-fpm (without php.ini, so its settings are the test's)
// with the given pools and a fresh document root, and stops it when the
// test ends.
func startFPM(t testing.TB, pools ...*pool) *fpm {
	t.Helper()
	if _, err := os.Stat(fpmBinary); err != nil {
		t.Fatalf("php-fpm is missing (%v): install it with `apt-get install -y php8.2-fpm`, or run scripts/test", err)
	}
	dir := t.TempDir()
	f := &fpm{t: t, dir: dir, root: filepath.Join(dir, "www"), log: filepath.Join(dir, "fpm.log"), pools: map[string]*pool{}, done: make(chan struct{})}
	if err := os.Mkdir(f.root, 0o755); err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "[global]\nerror_log = %s\ndaemonize = no\npid = %s\nlog_level = notice\n", f.log, filepath.Join(dir, "fpm.pid"))
	for _, p := range pools {
		if p.maxChildren == 0 {
			p.maxChildren = 2
		}
		if p.backlog == 0 {
			p.backlog = 16
		}
		if p.tcp {
			p.network, p.address = "tcp", freePort(t)
		} else {
			p.network, p.address = "unix", filepath.Join(dir, p.name+".sock")
		}
		fmt.Fprintf(&conf, "[%s]\nlisten = %s\nlisten.backlog = %d\npm = static\npm.max_children = %d\n", p.name, p.address, p.backlog, p.maxChildren)
		conf.WriteString("pm.status_path = /fpm-status\ncatch_workers_output = yes\n")
		conf.WriteString("php_value[memory_limit] = 32M\nphp_flag[log_errors] = on\nphp_flag[display_errors] = off\nphp_value[post_max_size] = 200M\n")
		if p.terminate != "" {
			fmt.Fprintf(&conf, "request_terminate_timeout = %s\n", p.terminate)
		}
		for _, l := range p.extra {
			conf.WriteString(l + "\n")
		}
		f.pools[p.name] = p
	}
	confPath := filepath.Join(dir, "fpm.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	f.cmd = exec.Command(fpmBinary, "--nodaemonize", "-n", "--fpm-config", confPath, "-R")
	var out bytes.Buffer
	f.cmd.Stdout, f.cmd.Stderr = &out, &out
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("starting php-fpm: %v", err)
	}
	go func() { f.cmd.Wait(); close(f.done) }()
	t.Cleanup(f.stop)
	for _, p := range pools {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial(p.network, p.address)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-f.done:
				t.Fatalf("php-fpm exited: %s\n%s", out.String(), f.readLog())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("php-fpm pool %s does not listen on %s after 10s: %v\n%s", p.name, p.address, err, f.readLog())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return f
}

// stop ends the master (and its workers) and waits for it.
func (f *fpm) stop() {
	select {
	case <-f.done:
		return
	default:
	}
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		f.cmd.Process.Kill()
		<-f.done
	}
}

func (f *fpm) readLog() string {
	b, _ := os.ReadFile(f.log)
	return string(b)
}

// write creates a file under the document root.
func (f *fpm) write(name, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// transport returns a Transport for the named pool, closed at the end.
func (f *fpm) transport(name string, o Options) *Transport {
	f.t.Helper()
	p := f.pools[name]
	o.Network, o.Address = p.network, p.address
	if o.Root == "" {
		o.Root = f.root
	}
	tr, err := New(o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { tr.Close() })
	return tr
}

// workers returns the pids of the master's children.
func (f *fpm) workers() []int {
	f.t.Helper()
	master := f.cmd.Process.Pid
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
		if len(fields) > 1 && fields[1] == strconv.Itoa(master) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// freePort returns a free loopback TCP address.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
