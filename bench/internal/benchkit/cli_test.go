package benchkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		want    error
		stderr  string
		verbose bool
	}{
		{args: nil},
		{args: []string{"-v", "-n", "3"}, verbose: true},
		{args: []string{"-h"}, want: flag.ErrHelp},
		{args: []string{"-n", "three"}, want: ErrUsage, stderr: "invalid value"},
		{args: []string{"-bogus"}, want: ErrUsage, stderr: "not defined: -bogus"},
		{args: []string{"-v", "extra"}, want: ErrUsage, stderr: `prog: unexpected argument "extra"`, verbose: true},
	} {
		var stderr strings.Builder
		fs := flag.NewFlagSet("prog", flag.ContinueOnError)
		fs.SetOutput(&stderr)
		v := fs.Bool("v", false, "verbose")
		fs.Int("n", 1, "count")
		err := ParseFlags(fs, tc.args, &stderr)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("ParseFlags(%q) = %v, want %v", tc.args, err, tc.want)
		}
		if !strings.Contains(stderr.String(), tc.stderr) || (tc.stderr == "" && tc.want == nil && stderr.Len() > 0) {
			t.Errorf("ParseFlags(%q) printed %q, want %q", tc.args, stderr.String(), tc.stderr)
		}
		if *v != tc.verbose {
			t.Errorf("ParseFlags(%q): -v %v, want %v", tc.args, *v, tc.verbose)
		}
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{fmt.Errorf("parsing: %w", flag.ErrHelp), 0, ""},
		{ErrUsage, 2, ""},
		{Usagef("-rounds %d: want 1 to 9", 12), 2, "prog: -rounds 12: want 1 to 9\n"},
		{fmt.Errorf("flags: %w", Usagef("-scenarios: unknown scenario %q", "x")), 2, "prog: flags: -scenarios: unknown scenario \"x\"\n"},
		{fmt.Errorf("nginx: %w", io.ErrUnexpectedEOF), 1, "prog: nginx: unexpected EOF\n"},
		{errors.New("two\nlines"), 1, "prog: two | lines\n"},
	} {
		var stderr strings.Builder
		if got := ExitCode("prog", tc.err, &stderr); got != tc.code || stderr.String() != tc.stderr {
			t.Errorf("ExitCode(%v) = %d, printed %q; want %d, %q", tc.err, got, stderr.String(), tc.code, tc.stderr)
		}
	}
}

func TestRunRecoveredTurnsAPanicIntoAnError(t *testing.T) {
	cleaned := false
	err := runRecovered(context.Background(), func(context.Context, []string, io.Writer, io.Writer) error {
		defer func() { cleaned = true }()
		panic("boom")
	})
	if err == nil || err.Error() != "internal error: boom" {
		t.Errorf("err = %v, want internal error: boom", err)
	}
	if !cleaned {
		t.Error("run's deferred clean-up did not run")
	}
	var stderr strings.Builder
	if code := ExitCode("prog", err, &stderr); code != 1 || stderr.String() != "prog: internal error: boom\n" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// CheckRefused reports each case that was not refused as a usage error
// with its line: accepted, failed otherwise, or refused saying something
// else.
func TestCheckRefused(t *testing.T) {
	run := func(_ context.Context, args []string, _, _ io.Writer) error {
		switch args[0] {
		case "usage":
			return Usagef("-n %s: want 1 to 9", args[1])
		case "fail":
			return errors.New("nginx is missing")
		}
		return nil
	}
	errs := CheckRefused("prog", run, []RefusedCase{
		{Args: []string{"usage", "10"}, Want: "prog: -n 10: want 1 to 9\n"},
		{Args: []string{"usage", "11"}, Want: "want 2 to 8"},
		{Args: []string{"fail"}, Want: "missing"},
		{Args: []string{"ok"}, Want: ""},
	})
	if len(errs) != 3 {
		t.Fatalf("got %d errors, want 3 (all but the first case): %v", len(errs), errs)
	}
	for i, want := range []string{`"11"`, `"fail"`, `"ok"`} {
		if !strings.Contains(errs[i].Error(), want) {
			t.Errorf("error %d: %v, want it to name %s", i, errs[i], want)
		}
	}
}
