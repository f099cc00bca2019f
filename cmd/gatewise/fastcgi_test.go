package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFastCGIQuickStart runs the quick start of the README in front of a
// real php-fpm on a unix socket: gatewise serve --upstream
// fastcgi+unix://SOCKET --root DIR.
func TestFastCGIQuickStart(t *testing.T) {
	t.Parallel()
	const fpmBin = "/usr/sbin/php-fpm8.2"
	if _, err := os.Stat(fpmBin); err != nil {
		t.Fatalf("php-fpm is missing (%v): install it with `apt-get install -y php8.2-fpm`, or run scripts/test", err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "www")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "index.php", `<?php echo "PHP says hello to ", $_SERVER['REQUEST_URI'];`)
	sock := filepath.Join(dir, "php-fpm.sock")
	conf := writeFile(t, dir, "fpm.conf", fmt.Sprintf("[global]\nerror_log = %s\ndaemonize = no\npid = %s\n[www]\nlisten = %s\npm = static\npm.max_children = 2\n",
		filepath.Join(dir, "fpm.log"), filepath.Join(dir, "fpm.pid"), sock))
	fpm := exec.Command(fpmBin, "--nodaemonize", "-n", "--fpm-config", conf, "-R")
	if err := fpm.Start(); err != nil {
		t.Fatal(err)
	}
	fpmDone := make(chan struct{})
	go func() { _ = fpm.Wait(); close(fpmDone) }()
	t.Cleanup(func() {
		_ = fpm.Process.Signal(syscall.SIGTERM)
		select {
		case <-fpmDone:
		case <-time.After(10 * time.Second):
			_ = fpm.Process.Kill()
			<-fpmDone
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("php-fpm does not listen on %s: %v", sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	addr := freeAddr(t)
	p := startGatewise(t, "serve", "--listen", addr, "--admin-listen", "off", "--upstream", "fastcgi+unix://"+sock, "--root", root)
	waitListening(t, p, addr)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/2024/hello/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "PHP says hello to /2024/hello/" {
		t.Errorf("GET /2024/hello/: got %d %q, want 200 from the front controller", res.StatusCode, body)
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0", code)
	}
	p.checkNoCrash(t)
}

// TestFastCGIQuickStartBadInput checks the quick start's PHP-FPM flags:
// each mistake is one line on stderr and exit code 2.
func TestFastCGIQuickStartBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		desc   string
		args   []string
		wantIn []string
	}{
		{"fastcgi without --root", []string{"serve", "--upstream", "fastcgi+unix:///run/php/php8.2-fpm.sock"}, []string{"--root", "required"}},
		{"--root for an http upstream", []string{"serve", "--upstream", "http://127.0.0.1:9", "--root", dir}, []string{"--root", "only for PHP-FPM"}},
		{"--index for an http upstream", []string{"serve", "--upstream", "http://127.0.0.1:9", "--index", "app.php"}, []string{"--index", "only for PHP-FPM"}},
		{"a root that does not exist", []string{"serve", "--upstream", "fastcgi://127.0.0.1:9000", "--root", filepath.Join(dir, "nope")}, []string{"--root", "does not exist"}},
		{"a bad index", []string{"serve", "--upstream", "fastcgi://127.0.0.1:9000", "--root", dir, "--index", "../x.php"}, []string{"--index", "plain file name"}},
		{"fastcgi without a port", []string{"serve", "--upstream", "fastcgi://127.0.0.1", "--root", dir}, []string{"--upstream", "missing port"}},
		{"a relative socket", []string{"serve", "--upstream", "fastcgi+unix://php.sock", "--root", dir}, []string{"--upstream", "three slashes"}},
		{"http and fastcgi mixed", []string{"serve", "--upstream", "http://127.0.0.1:9", "--upstream", "fastcgi://127.0.0.1:9000", "--root", dir}, []string{"--upstream", "a fastcgi target in a pool of http targets"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runGatewise(t, tc.args...)
			if code != 2 {
				t.Errorf("exit code: got %d, want 2", code)
			}
			lines := nonEmptyLines(stderr)
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "gatewise") || crashText.MatchString(stderr) {
				t.Fatalf("stderr: got %q, want one line starting with gatewise", stderr)
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(lines[0], w) {
					t.Errorf("stderr: got %q, want it to contain %q", lines[0], w)
				}
			}
		})
	}
}
