package server_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runAlone runs the test t again, alone, in a new process of the test
// binary with env=1 in its environment, under the command prefix (none,
// or unshare -n for a network namespace of its own), and reports that
// run's result as t's: a failure, a skip (as a skip), or a pass.
func runAlone(t *testing.T, env string, prefix ...string) {
	t.Helper()
	argv := append(append([]string(nil), prefix...), os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("run alone:\n%s", out)
	if err != nil {
		t.Fatalf("the run alone failed: %v", err)
	}
	if strings.Contains(string(out), "--- SKIP: "+t.Name()) {
		t.Skip("skipped in the run alone (see its output above)")
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatal("the run alone did not pass the test")
	}
}
