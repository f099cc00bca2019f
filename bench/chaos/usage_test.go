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
		{[]string{"-workers", "0"}, "chaos: -workers 0: want 1 to 1024\n"},
		{[]string{"-gatewise", "/bin/true", "-proxies", "gatewise,nope"}, "unknown proxy \"nope\""},
		{[]string{"-proxies", "nginx"}, "chaos: -gatewise BIN is required"},
	} {
		if err := benchkit.CheckRefused("chaos", run, tc.args, tc.want); err != nil {
			t.Error(err)
		}
	}
}
