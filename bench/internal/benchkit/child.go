// Package benchkit holds what the benchmark programs under bench/ share:
// running proxies as child processes and stopping them, waiting for a
// port, finding binaries, checking configs, running load tools and reading
// wrk's output, the CPU time of process groups from /proc, and the machine
// and version facts for their reports.
package benchkit

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

	"github.com/gatewise/gatewise/internal/loopport"
)

// CheckCommand runs a config check and returns an error whose text is the
// check's first line of output when it fails. The full output is printed
// to stderr, after prog (the program's name, such as "chaos").
func CheckCommand(ctx context.Context, prog, what, bin string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err == nil {
		return nil
	}
	text := strings.TrimSpace(string(out))
	if text != "" {
		fmt.Fprintf(os.Stderr, "%s: %s says:\n%s\n", prog, what, text)
	}
	first, _, _ := strings.Cut(text, "\n")
	if first == "" {
		first = err.Error()
	}
	return fmt.Errorf("%s failed: %s", what, first)
}

// Child is a proxy process in its own process group, so that stopping it
// stops its workers too.
type Child struct {
	name    string
	cmd     *exec.Cmd
	log     *os.File
	logPath string
	done    chan struct{}
	waitErr error
}

// StartChild starts argv with stdout and stderr going to logPath.
func StartChild(name string, argv []string, logPath string) (*Child, error) {
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
	c := &Child{name: name, cmd: cmd, log: log, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// Exited reports whether the child has exited.
func (c *Child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// WaitErr is the child's exit error; valid once Exited reports true.
func (c *Child) WaitErr() error {
	select {
	case <-c.done:
		return c.waitErr
	default:
		return nil
	}
}

// Stop sends SIGTERM to the child's process group, SIGKILL after 5s, and
// then SIGKILL to whatever is left of the group (such as nginx workers
// whose master died). It reports whether SIGKILL was needed.
func (c *Child) Stop() (killed bool) {
	pid := c.cmd.Process.Pid
	if !c.Exited() {
		_ = signalGroup(pid, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			killed = true
			_ = signalGroup(pid, syscall.SIGKILL)
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
			}
		}
	}
	_ = signalGroup(pid, syscall.SIGKILL)
	_ = c.log.Close()
	return killed
}

// LastLines returns the last n non-empty lines of the child's log, joined
// with " | ", for one-line errors.
func (c *Child) LastLines(n int) string {
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

// WaitListening waits until addr accepts connections, the child exits, or
// timeout passes.
func WaitListening(ctx context.Context, c *Child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if c.Exited() {
			msg := fmt.Sprintf("%s exited before listening (%v)", c.name, c.waitErr)
			if l := c.LastLines(3); l != "" {
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

// FreeAddr returns a loopback host:port that was free a moment ago, below
// the kernel's ephemeral range, so that the load of a scenario before it
// cannot take it as a source port before its proxy binds it
// (loopport.Free).
func FreeAddr() (string, error) {
	return loopport.Free()
}

// FindBinary returns an absolute path to an executable: given, or looked
// up on PATH and in the sbin directories (where Debian puts nginx and
// haproxy, which are not on a normal user's PATH).
func FindBinary(given, name string) (string, error) {
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

// OneLine folds a message onto one line.
func OneLine(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r", ""))
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}
