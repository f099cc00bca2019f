package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// checkEnv runs a config check with env as its environment, as
// benchkit.CheckCommand does: an error whose text is the check's first
// line of output, the whole output on stderr.
func checkEnv(ctx context.Context, env []string, what, bin string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	text := strings.TrimSpace(string(out))
	if text != "" {
		fmt.Fprintf(os.Stderr, "compare: %s says:\n%s\n", what, text)
	}
	first, _, _ := strings.Cut(text, "\n")
	// Caddy logs JSON lines before its "Error: ..." line.
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "Error") {
			first = l
			break
		}
	}
	if first == "" {
		first = err.Error()
	}
	return fmt.Errorf("%s failed: %s", what, first)
}
