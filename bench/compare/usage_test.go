package main

import (
	"testing"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// A command line the program refuses exits with status 2 (a usage error,
// so the script removes its work directory) and says why on one line,
// before anything runs.
func TestRefusedCommandLines(t *testing.T) {
	for _, err := range benchkit.CheckRefused("compare", run, []benchkit.RefusedCase{
		{Args: []string{"-rounds", "12"}, Want: "compare: -rounds 12: want 1 to 9\n"},
		{Args: []string{"-scenarios", "small,nope"}, Want: "unknown scenario \"nope\""},
		{Args: []string{"-contenders", "nginx,nope"}, Want: "unknown contender \"nope\""},
		{Args: []string{"-scenarios", ","}, Want: "compare: -scenarios: nothing to run\n"},
	}) {
		t.Error(err)
	}
}
