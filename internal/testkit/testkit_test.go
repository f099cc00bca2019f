package testkit

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalTB records the first Fatal and ends the goroutine calling it, as a
// real test would; cleanups run when the recording ends.
type fatalTB struct {
	testing.TB
	msg      string
	cleanups []func()
}

func (f *fatalTB) Helper()           {}
func (f *fatalTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fatalTB) Fatal(a ...any)    { f.msg = fmt.Sprint(a...); runtime.Goexit() }
func (f *fatalTB) Fatalf(s string, a ...any) {
	f.msg = fmt.Sprintf(s, a...)
	runtime.Goexit()
}

// fatalOf runs fn with a fatalTB and returns its Fatal message ("" if none).
func fatalOf(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); fn(f) }()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return f.msg
}

func TestPHPFPM(t *testing.T) {
	f := StartPHPFPM(t, PHPFPMConfig{Pools: []Pool{{Name: "u", MaxChildren: 3, StatusPath: "/fpm-status"}, {Name: "t", TCP: true}}})
	if f.Network("u") != "unix" || f.Address("u") != filepath.Join(f.Dir(), "u.sock") {
		t.Errorf("pool u: %s %s", f.Network("u"), f.Address("u"))
	}
	if f.Network("t") != "tcp" || !strings.HasPrefix(f.Address("t"), "127.0.0.1:") {
		t.Errorf("pool t: %s %s", f.Network("t"), f.Address("t"))
	}
	conf, err := os.ReadFile(filepath.Join(f.Dir(), "fpm.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[u]\n", "pm.max_children = 3\n", "pm.status_path = /fpm-status\n", "[t]\n", "pm.max_children = 2\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("fpm.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(string(conf), "listen.backlog") {
		t.Errorf("fpm.conf sets listen.backlog without Backlog:\n%s", conf)
	}
	if n := len(f.Workers()); n != 5 {
		t.Errorf("%d workers, want 5 (3 + 2, pm = static)", n)
	}
	f.Write("a/b.php", "<?php echo 1;")
	if _, err := os.Stat(filepath.Join(f.Root(), "a", "b.php")); err != nil {
		t.Error(err)
	}
	f.Stop()
	if c, err := net.Dial("tcp", f.Address("t")); err == nil {
		c.Close()
		t.Error("pool t still accepts after Stop")
	}
	if n := len(f.Workers()); n != 0 {
		t.Errorf("%d workers after Stop", n)
	}
}

func TestPHPFPMBadConfig(t *testing.T) {
	msg := fatalOf(t, func(tb testing.TB) {
		StartPHPFPM(tb, PHPFPMConfig{Pools: []Pool{{Name: "www", Extra: []string{"no_such_directive = 1"}}}})
	})
	if !strings.Contains(msg, "php-fpm pool www exited") || !strings.Contains(msg, "no_such_directive") {
		t.Errorf("message %q lacks the exit and php-fpm's complaint", msg)
	}
	if msg := fatalOf(t, func(tb testing.TB) { StartPHPFPM(tb, PHPFPMConfig{}) }); !strings.Contains(msg, "no pool") {
		t.Errorf("no pools: %q", msg)
	}
}

func TestNeedBinary(t *testing.T) {
	msg := fatalOf(t, func(tb testing.TB) { NeedBinary(tb, "/nonexistent/prog", "some-pkg") })
	if !strings.Contains(msg, "apt-get install -y some-pkg") {
		t.Errorf("message %q lacks the install line", msg)
	}
	msg = fatalOf(t, func(tb testing.TB) { LookBinary(tb, "no-such-program-here", "other-pkg") })
	if !strings.Contains(msg, "apt-get install -y other-pkg") {
		t.Errorf("message %q lacks the install line", msg)
	}
}

// nginxConf is a minimal nginx answering 204 on addr.
func nginxConf(dir, addr string) string {
	return fmt.Sprintf(`worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 16; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp_body;
	proxy_temp_path %[1]s/tmp_proxy;
	fastcgi_temp_path %[1]s/tmp_fastcgi;
	uwsgi_temp_path %[1]s/tmp_uwsgi;
	scgi_temp_path %[1]s/tmp_scgi;
	server { listen %[2]s; location / { return 204; } }
}
`, dir, addr)
}

func TestDaemon(t *testing.T) {
	dir, addr := t.TempDir(), FreePort(t)
	p := StartDaemon(t, Daemon{Binary: "nginx", Dir: dir, ConfigFile: "nginx.conf", Config: nginxConf(dir, addr),
		Args: []string{"-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;"}, Addr: addr, Group: true})
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("status %d, want 204", res.StatusCode)
	}
	p.Stop()
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("nginx still accepts after Stop (its workers outlived the group's SIGTERM)")
	}
}

func TestDaemonExitsAtStart(t *testing.T) {
	msg := fatalOf(t, func(tb testing.TB) {
		dir := t.TempDir()
		StartDaemon(tb, Daemon{Binary: "nginx", Dir: dir, ConfigFile: "nginx.conf", Config: "no_such_directive;\n",
			Args: []string{"-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;"}, Addr: FreePort(t)})
	})
	if !strings.Contains(msg, "exited at start") || !strings.Contains(msg, "no_such_directive") {
		t.Errorf("message %q lacks the exit and nginx's complaint", msg)
	}
}
