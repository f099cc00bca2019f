package bisect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// DefaultCommandTimeout bounds each command when Shell.Timeout is 0: wp-cli
// loads WordPress for every command, which can take seconds on a busy host.
const DefaultCommandTimeout = 2 * time.Minute

// maxCommandOutput bounds what is kept of a command's output, per stream.
const maxCommandOutput = 1 << 20

// ErrCommand is wrapped by every *CommandError.
var ErrCommand = errors.New("command failed")

// CommandError is a command that could not start, exited with an error or
// ran past its timeout.
type CommandError struct {
	// Command is the command line, as given to the shell.
	Command string
	// Err is the cause: an *exec.ExitError, context.DeadlineExceeded for a
	// timeout, or the error that kept it from starting.
	Err error
	// Stderr holds the last lines of the command's standard error.
	Stderr string
}

// Error returns one line: the command, why it failed and its stderr.
func (e *CommandError) Error() string {
	why := e.Err.Error()
	if errors.Is(e.Err, context.DeadlineExceeded) {
		why = "timed out"
	}
	msg := fmt.Sprintf("command %q failed (%s)", e.Command, why)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap returns ErrCommand and the cause.
func (e *CommandError) Unwrap() []error { return []error{ErrCommand, e.Err} }

// Shell runs command lines with /bin/sh -c.
type Shell struct {
	// Dir is the working directory of the commands. Empty means the
	// current directory.
	Dir string
	// Timeout bounds each command. 0 means DefaultCommandTimeout.
	Timeout time.Duration
}

// Run runs command and returns its standard output. The command runs in a
// process group of its own, so a Ctrl-C at the terminal reaches gatewise
// (which finishes the command in hand, then restores the site) and not the
// command; the group is killed when ctx is done or the timeout passes.
func (sh Shell) Run(ctx context.Context, command string) (string, error) {
	timeout := sh.Timeout
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Dir = sh.Dir
	var stdout, stderr capped
	stdout.max, stderr.max = maxCommandOutput, maxCommandOutput
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ownProcessGroup(cmd)
	cmd.WaitDelay = 2 * time.Second // a child left holding the pipes
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return stdout.String(), &CommandError{Command: command, Err: err, Stderr: lastLines(stderr.String(), 5, 600)}
	}
	return stdout.String(), nil
}

// capped is a buffer that keeps the first max bytes written to it.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// lastLines returns the last n non-empty lines of s joined by " | ", at
// most max bytes (the end kept).
func lastLines(s string, n, max int) string {
	var lines []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, " | ")
	if len(out) > max {
		out = "…" + out[len(out)-max:]
	}
	return out
}

// Quote returns s quoted for a POSIX shell: as it is when it holds only
// characters the shell takes literally, else in single quotes.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:@%+=,", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Expand returns template with every "{}" replaced by item, shell-quoted.
func Expand(template, item string) string {
	return strings.ReplaceAll(template, "{}", Quote(item))
}

// ParseItems reads a list of items, one a line: blank lines and lines
// starting with # are skipped, spaces around an item are trimmed. An item
// with a control character or twice in the list is an error naming its
// line (from names the source in the error).
func ParseItems(from string, data []byte) ([]string, error) {
	var items []string
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, c := range line {
			if c < 0x20 || c == 0x7f {
				return nil, fmt.Errorf("%w: %s:%d: %q holds a control character", ErrBadItems, from, i+1, line)
			}
		}
		if first, ok := seen[line]; ok {
			return nil, fmt.Errorf("%w: %s:%d: %q is already on line %d", ErrBadItems, from, i+1, line, first)
		}
		seen[line] = i + 1
		items = append(items, line)
		if len(items) > MaxItems {
			return nil, fmt.Errorf("%w: %s: more than %d items", ErrBadItems, from, MaxItems)
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: %s: no items", ErrBadItems, from)
	}
	return items, nil
}

// MaxItems is the most items a bisect takes.
const MaxItems = 10000

// ErrBadItems reports a list of items that cannot be used.
var ErrBadItems = errors.New("bad list of items")
