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
		{[]string{"-rounds", "12"}, "compare: -rounds 12: want 1 to 9\n"},
		{[]string{"-scenarios", "small,nope"}, "unknown scenario \"nope\""},
		{[]string{"-contenders", "nginx,nope"}, "unknown contender \"nope\""},
		{[]string{"-scenarios", ","}, "compare: -scenarios: nothing to run\n"},
	} {
		if err := benchkit.CheckRefused("compare", run, tc.args, tc.want); err != nil {
			t.Error(err)
		}
	}
}
