package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// scenario is what the configs are written for.
type scenario struct {
	slots   int           // the upstream's concurrent slots
	service time.Duration // its service time
}

// capacity is the upstream's requests per second.
func (s scenario) capacity() float64 { return float64(s.slots) / s.service.Seconds() }

// contender is one way to put something in front of the upstream.
type contender struct {
	name string
	bin  string // empty: no proxy (the clients go straight to the upstream)
	// config returns the config file's text for a proxy listening on
	// listen in front of the upstream at target (host:port), with its
	// files in dir.
	config func(dir, listen, target string, s scenario) string
	file   string // the config file's name in dir
	lang   string // the config's language, for the report
	// check validates the config file; nil when valid.
	check func(ctx context.Context, c *contender, file, dir string) error
	// argv is the command line that runs the proxy in the foreground.
	argv func(c *contender, file, dir string) []string
}

func directContender() *contender { return &contender{name: "no gateway"} }

func gatewiseContender(name, bin string, fixed bool) *contender {
	return &contender{
		name: name, bin: bin, file: "gatewise.yaml", lang: "yaml",
		config: func(_, listen, target string, s scenario) string { return gatewiseConfig(listen, target, s, fixed) },
		check: func(ctx context.Context, c *contender, file, _ string) error {
			return checkCommand(ctx, "gatewise config validate", c.bin, "config", "validate", file)
		},
		argv: func(c *contender, file, _ string) []string {
			return []string{c.bin, "serve", "--config", file, "--log-level", "warn"}
		},
	}
}

// gatewiseConfig is gatewise with its default admission control (an
// adaptive concurrency limit, a queue of 100 for up to 1s), or a fixed
// limit of the upstream's slots.
func gatewiseConfig(listen, target string, s scenario, fixed bool) string {
	conc := "    # concurrency: the defaults (an adaptive limit, a queue of 100, 1s)\n"
	if fixed {
		conc = fmt.Sprintf("    concurrency:\n      max_in_flight: %d\n", s.slots)
	}
	return fmt.Sprintf(`# gatewise in front of the overloaded upstream.
listeners:
  - address: %s
admin:
  address: "off"
access_log: "off"
shutdown_timeout: 3s
limits:
  # Every client of the benchmark comes from 127.0.0.1.
  max_conns_per_ip: 0
pools:
  app:
    targets:
      - url: http://%s
%s`, listen, target, conc)
}

func nginxContender(bin string) *contender {
	return &contender{
		name: "nginx", bin: bin, file: "nginx.conf", lang: "nginx",
		config: nginxConfig,
		check: func(ctx context.Context, c *contender, file, dir string) error {
			return checkCommand(ctx, "nginx -t", c.bin, "-t", "-q", "-e", filepath.Join(dir, "error.log"),
				"-c", file, "-p", dir, "-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+";")
		},
		argv: func(c *contender, file, dir string) []string {
			return []string{c.bin, "-e", filepath.Join(dir, "error.log"), "-c", file, "-p", dir,
				"-g", "daemon off; pid " + filepath.Join(dir, "nginx.pid") + ";"}
		},
	}
}

// nginxConfig is open-source nginx's documented overload protection: at
// most the upstream's slots in flight (limit_conn over the whole server,
// and max_conns on the upstream server, shared by the workers through a
// zone), a request rate of the upstream's capacity with a burst of its
// slots (limit_req ... nodelay), and 503 with a Retry-After for the rest.
// The upstream queue (the "queue" directive) is nginx Plus only, so the
// excess is refused at once.
func nginxConfig(dir, listen, target string, s scenario) string {
	rate := int(s.capacity() + 0.5)
	return fmt.Sprintf(`# nginx in front of the overloaded upstream: limit_conn and
# limit_req with burst and nodelay, 503 with Retry-After when refused.
user root;
worker_processes auto;
error_log %[1]s/error.log warn;

events {
    worker_connections 8192;
}

http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;

    limit_conn_zone $server_name zone=inflight:1m;
    limit_req_zone $server_name zone=rate:1m rate=%[4]dr/s;

    upstream app {
        zone app 64k;
        server %[3]s max_conns=%[5]d;
        keepalive 32;
    }

    server {
        listen %[2]s;

        limit_conn inflight %[5]d;
        limit_conn_status 503;
        limit_conn_log_level warn;
        limit_req zone=rate burst=%[5]d nodelay;
        limit_req_status 503;
        limit_req_log_level warn;
        error_page 502 503 =503 @overloaded;

        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 5s;
            proxy_read_timeout 30s;
        }

        location @overloaded {
            add_header Retry-After 1 always;
            return 503 "overloaded\n";
        }
    }
}
`, dir, listen, target, rate, s.slots)
}

// checkCommand runs a config check and returns an error whose text is the
// check's output when it fails.
func checkCommand(ctx context.Context, what, bin string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err == nil {
		return nil
	}
	text := strings.TrimSpace(string(out))
	if text != "" {
		fmt.Fprintf(os.Stderr, "overload: %s says:\n%s\n", what, text)
	}
	first, _, _ := strings.Cut(text, "\n")
	if first == "" {
		first = err.Error()
	}
	return fmt.Errorf("%s failed: %s", what, first)
}

// child is a proxy process in its own process group, so that stopping it
// stops its workers too.
type child struct {
	name    string
	cmd     *exec.Cmd
	log     *os.File
	logPath string
	done    chan struct{}
	waitErr error
}

// startChild starts argv with stdout and stderr going to logPath.
func startChild(name string, argv []string, logPath string) (*child, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: log, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group, SIGKILL after 5s, and
// then SIGKILL to whatever is left of the group.
func (c *child) stop() {
	pid := c.cmd.Process.Pid
	if !c.exited() {
		_ = signalGroup(pid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = signalGroup(pid, syscall.SIGKILL)
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
			}
		}
	}
	_ = signalGroup(pid, syscall.SIGKILL)
	_ = c.log.Close()
}

// lastLines returns the last n non-empty lines of the child's log.
func (c *child) lastLines(n int) string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(bytes.ToValidUTF8(data, nil))), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// waitListening waits until addr accepts connections, the child exits, or
// timeout passes.
func waitListening(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if c.exited() {
			msg := fmt.Sprintf("%s exited before listening (%v)", c.name, c.waitErr)
			if l := c.lastLines(3); l != "" {
				msg += ": " + l
			}
			return errors.New(msg)
		}
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v; see %s", c.name, addr, timeout, c.logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	return addr, nil
}

// findBinary returns an absolute path to an executable: given, or looked
// up on PATH and in the sbin directories (where Debian puts nginx).
func findBinary(given, name string) (string, error) {
	if given != "" {
		p, err := exec.LookPath(given)
		if err != nil {
			return "", fmt.Errorf("%s binary %s: not an executable file", name, given)
		}
		return filepath.Abs(p)
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/sbin", name)
}
