package main

import (
	"testing"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

// A command line the program refuses exits with status 2 (a usage error,
// so the script removes its work directory) and says why on one line,
// before anything runs.
func TestRefusedCommandLines(t *testing.T) {
	for _, err := range benchkit.CheckRefused("chaos", run, []benchkit.RefusedCase{
		{Args: []string{"-workers", "0"}, Want: "chaos: -workers 0: want 1 to 1024\n"},
		{Args: []string{"-gatewise", "/bin/true", "-proxies", "gatewise,nope"}, Want: "unknown proxy \"nope\""},
		{Args: []string{"-proxies", "nginx"}, Want: "chaos: -gatewise BIN is required"},
	}) {
		t.Error(err)
	}
}
