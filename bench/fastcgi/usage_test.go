package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// A command line the program refuses exits with status 2 (a usage error,
// so the script removes its work directory) and says why on one line,
// before anything runs.
func TestRefusedCommandLines(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-children", "0"}, "fastcgi: -children 0: want 1 to 256\n"},
		{[]string{"-runs", "nope"}, "unknown contender \"nope\""},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		var stderr strings.Builder
		code := benchkit.ExitCode("fastcgi", err, &stderr)
		if !errors.Is(err, benchkit.ErrUsage) || code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, %q (%v); want exit 2 with %q", tc.args, code, stderr.String(), err, tc.want)
		}
	}
}
