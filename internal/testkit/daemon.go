package testkit

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// LookBinary returns the path of program name, looked up in PATH, then in
// /usr/sbin and /sbin, or fails the test (never skips it) naming the Debian
// package that provides it.
func LookBinary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatalf("%s is not installed: apt-get install -y %s (scripts/test installs it)", name, debianPackage)
	return ""
}

// Daemon describes a server run in the foreground with a config file written
// by the test, such as nginx, apache2 or haproxy.
type Daemon struct {
	// Binary is the program's name or path, found with LookBinary. Required.
	Binary string
	// Package is the Debian package providing Binary, named when it is
	// missing. Default: Binary.
	Package string
	// Dir is where ConfigFile is written. Default: a new t.TempDir().
	Dir string
	// ConfigFile is the config file's name in Dir. Default "server.conf".
	ConfigFile string
	// Config is the config file's text. If empty, no file is written.
	Config string
	// Args are the program's arguments; the caller includes the config
	// path (filepath.Join(Dir, ConfigFile)) and the foreground flag.
	Args []string
	// Stdout receives the program's standard output (such as a log
	// written there). Default: captured with its standard error, in
	// Process.Output.
	Stdout io.Writer
	// Env is added to the test's environment. Default none.
	Env []string
	// Addr is the TCP address waited for until it accepts. Required.
	Addr string
	// Group runs the program in its own process group and signals the
	// whole group on stop (for servers that fork workers). Default false.
	Group bool
	// StartTimeout bounds the wait for Addr. Default StartTimeout.
	StartTimeout time.Duration
}

// StartDaemon writes d.Config, starts d.Binary, waits until d.Addr accepts
// (failing the test with the program's output if it exits or times out),
// and stops it (SIGTERM, then SIGKILL after StopTimeout) when the test ends.
func StartDaemon(t testing.TB, d Daemon) *Process {
	t.Helper()
	if d.Package == "" {
		d.Package = d.Binary
	}
	bin := LookBinary(t, d.Binary, d.Package)
	if d.Dir == "" {
		d.Dir = t.TempDir()
	}
	if d.ConfigFile == "" {
		d.ConfigFile = "server.conf"
	}
	if d.Config != "" {
		if err := os.WriteFile(filepath.Join(d.Dir, d.ConfigFile), []byte(d.Config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := startProcess(t, spawn{name: bin, args: d.Args, env: d.Env, stdout: d.Stdout, group: d.Group})
	p.waitDial(t, d.Binary, "tcp", d.Addr, d.StartTimeout)
	return p
}
