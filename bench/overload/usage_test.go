package main

import (
	"testing"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// A command line the program refuses exits with status 2 (a usage error,
// so the script removes its work directory) and says why on one line,
// before anything runs.
func TestRefusedCommandLines(t *testing.T) {
	for _, err := range benchkit.CheckRefused("overload", run, []benchkit.RefusedCase{
		{Args: []string{"-slots", "0"}, Want: "overload: -slots 0: want 1 to 1000\n"},
		{Args: []string{"-runs", "nope"}, Want: "unknown contender \"nope\""},
	}) {
		t.Error(err)
	}
}
