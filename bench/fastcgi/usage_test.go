package main

import (
	"testing"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// A command line the program refuses exits with status 2 (a usage error,
// so the script removes its work directory) and says why on one line,
// before anything runs.
func TestRefusedCommandLines(t *testing.T) {
	for _, err := range benchkit.CheckRefused("fastcgi", run, []benchkit.RefusedCase{
		{Args: []string{"-children", "0"}, Want: "fastcgi: -children 0: want 1 to 256\n"},
		{Args: []string{"-runs", "nope"}, Want: "unknown contender \"nope\""},
	}) {
		t.Error(err)
	}
}
