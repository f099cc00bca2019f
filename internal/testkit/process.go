package testkit

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatewise/gatewise/internal/loopport"
)

// StartTimeout bounds how long a server may take to accept connections.
const StartTimeout = 10 * time.Second

// StopTimeout bounds how long a server may take to exit after SIGTERM
// before it is killed.
const StopTimeout = 10 * time.Second

// NeedBinary fails the test (never skips it) if path does not exist, naming
// the Debian package that provides it; scripts/test installs them all.
func NeedBinary(t testing.TB, path, debianPackage string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): install it with `apt-get install -y %s`, or run scripts/test", path, err, debianPackage)
	}
}

// FreePort returns a loopback TCP address ("127.0.0.1:port") that was free
// a moment ago, for a server the test starts itself: below the kernel's
// ephemeral range, so that no connection made beside the test takes it
// before the server binds it (loopport.Free).
func FreePort(t testing.TB) string {
	t.Helper()
	addr, err := loopport.Free()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// syncBuffer is a bytes.Buffer safe for a process's writes and the test's
// reads at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Process is a server process started by a test (by StartDaemon or
// StartPHPFPM), with its standard error (and output, unless sent
// elsewhere) captured.
type Process struct {
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
	// extra returns more text for failure messages (such as a log file).
	extra func() string
	// group: signal the process group, not only the process.
	group bool
}

// spawn is how startProcess runs a program.
type spawn struct {
	name   string
	args   []string
	env    []string  // added to the test's environment
	stdout io.Writer // nil: captured with stderr
	group  bool      // own process group, signalled as a whole
	extra  func() string
}

// startProcess starts s.name with s.args, captures its output, and stops
// it when the test ends.
func startProcess(t testing.TB, s spawn) *Process {
	t.Helper()
	p := &Process{cmd: exec.Command(s.name, s.args...), done: make(chan struct{}), extra: s.extra, group: s.group}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if s.stdout != nil {
		p.cmd.Stdout = s.stdout
	}
	if s.env != nil {
		p.cmd.Env = append(os.Environ(), s.env...)
	}
	if s.group {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", s.name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	return p
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process wrote to its captured standard error
// and output so far.
func (p *Process) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM, kills the process if it has not exited within
// StopTimeout, and waits for it. It does nothing if the process has
// already exited; it is called when the test ends.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(StopTimeout):
		p.signal(syscall.SIGKILL)
		<-p.done
	}
}

// waitDial waits until network/address accepts a connection, failing the
// test with the process's output if it exits first or timeout (StartTimeout
// if not positive) passes.
func (p *Process) waitDial(t testing.TB, what, network, address string, timeout time.Duration) {
	t.Helper()
	if timeout <= 0 {
		timeout = StartTimeout
	}
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout(network, address, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited at start: %s\n%s", what, p.Output(), p.more())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s after %v: %v\n%s\n%s", what, address, timeout, err, p.Output(), p.more())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *Process) signal(sig syscall.Signal) {
	if p.group {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
		return
	}
	_ = p.cmd.Process.Signal(sig)
}

func (p *Process) more() string {
	if p.extra == nil {
		return ""
	}
	return p.extra()
}
