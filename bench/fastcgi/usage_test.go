package main

import (
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
		if err := benchkit.CheckRefused("fastcgi", run, tc.args, tc.want); err != nil {
			t.Error(err)
		}
	}
}
