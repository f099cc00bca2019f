package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildGatewise builds the gatewise binary into a temporary directory
// (with the race detector when the test runs with it) and returns its path.
func buildGatewise(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gatewise")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", bin}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, append(args, "github.com/gatewise/gatewise/cmd/gatewise")...).CombinedOutput()
	if err != nil {
		t.Fatalf("building gatewise: %v\n%s", err, out)
	}
	return bin
}

// bisectProcess is a gatewise bisect started as a process.
type bisectProcess struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
}

func startBisectProcess(t *testing.T, bin string, env []string, args ...string) *bisectProcess {
	t.Helper()
	p := &bisectProcess{cmd: exec.Command(bin, append([]string{"bisect"}, args...)...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	p.cmd.Env = append(p.cmd.Env, env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit code (30s at most).
func (p *bisectProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("gatewise bisect still running 30s later; stderr:\n%s", p.stderr.String())
		return -1
	}
}

// disabledNow returns the plugins commented out in the list file.
func disabledNow(t *testing.T, list string) []string {
	t.Helper()
	data, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "# ") {
			out = append(out, l[1:])
		}
	}
	return out
}

var processPlugins = []string{"p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09", "p10", "p11", "p12", "p13", "p14", "p15", "broken-gallery"}

// TestBisectProcess runs the real binary: SIGINT and SIGTERM in the middle
// of a bisect restore the list file byte for byte; after a kill -9, a new
// bisect is refused and `gatewise bisect --restore` puts everything back.
func TestBisectProcess(t *testing.T) {
	t.Parallel()
	bin := buildGatewise(t)
	fpm := startBisectFPM(t)
	code := map[string]string{"broken-gallery": brokenPlugin}

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := newPHPSite(t, fpm, processPlugins, code, "# plugins enabled on this site\n", "")
			p := startBisectProcess(t, bin, nil, append(s.sedArgs(), "--items", s.list, "--settle", "200ms", "--json")...)
			waitForText(t, p.stderr, "step 3 of", p.done)
			if len(disabledNow(t, s.list)) == 0 {
				t.Fatal("test bug: nothing is disabled in the middle of the bisect")
			}
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			got := p.wait(t)
			t.Logf("stderr:\n%s", p.stderr.String())
			if got != 1 {
				t.Errorf("exit code: got %d, want 1", got)
			}
			var r bisectJSON
			if err := json.Unmarshal([]byte(p.stdout.String()), &r); err != nil {
				t.Fatalf("stdout is not the JSON report: %v: %q", err, p.stdout.String())
			}
			if r.Verdict != "interrupted" || !r.Restored {
				t.Errorf("got %s restored=%v, want interrupted and restored", r.Verdict, r.Restored)
			}
			if !strings.Contains(p.stderr.String(), "gatewise bisect: interrupted after") {
				t.Errorf("stderr does not say it was interrupted")
			}
			s.checkRestored(t)
		})
	}

	t.Run("kill -9, then --restore", func(t *testing.T) {
		t.Parallel()
		testdata, err := filepath.Abs("testdata")
		if err != nil {
			t.Fatal(err)
		}
		// The WordPress preset, with the stand-in wp first in PATH.
		env := []string{"PATH=" + testdata + string(os.PathListSeparator) + os.Getenv("PATH")}
		s := newPHPSite(t, fpm, processPlugins, code, "", "")
		args := []string{"--probe", s.url, "--preset", "wordpress", "--path", s.dir, "--journal", s.journal}
		p := startBisectProcess(t, bin, env, append(args, "--settle", "1s")...)
		waitForText(t, p.stderr, "step 3 of", p.done)
		// Wait for the next state's commands to be done (the process is
		// then in its 1s settle): what the list file disables is what the
		// journal lists.
		var disabled []string
		deadline := time.Now().Add(10 * time.Second)
		for {
			j, err := os.ReadFile(s.journal)
			if err != nil {
				t.Fatal(err)
			}
			var journal struct{ Disabled []string }
			if err := json.Unmarshal(j, &journal); err == nil {
				disabled = disabledNow(t, s.list)
				slices.Sort(disabled)
				slices.Sort(journal.Disabled)
				if len(disabled) > 0 && slices.Equal(disabled, journal.Disabled) {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the list file and the journal never agreed; stderr:\n%s", p.stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		p.wait(t)
		if got := disabledNow(t, s.list); len(got) == 0 {
			t.Fatal("test bug: nothing disabled after the kill")
		}
		t.Logf("killed with %d plugins disabled: %v", len(disabled), disabled)

		// A new bisect refuses to start on a half-configured site.
		again := startBisectProcess(t, bin, env, args...)
		if got := again.wait(t); got != 1 || !strings.Contains(again.stderr.String(), "run gatewise bisect --restore --journal "+s.journal) {
			t.Errorf("a new bisect: exit %d, stderr %q; want 1 and the --restore command", got, again.stderr.String())
		}

		r := startBisectProcess(t, bin, env, "--restore", "--journal", s.journal)
		if got := r.wait(t); got != 0 {
			t.Fatalf("--restore: exit %d; stderr:\n%s", got, r.stderr.String())
		}
		if want := fmt.Sprintf("restored: %d plugins enabled again", len(disabled)); !strings.Contains(r.stdout.String(), want) {
			t.Errorf("--restore: stdout %q, want %q", r.stdout.String(), want)
		}
		s.checkRestored(t)
	})
}
