package benchkit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes the machine a benchmark ran on, for its report.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPU      string `json:"cpu_model"`
	MemoryGi string `json:"memory"`
	OS       string `json:"os"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
}

// MachineInfo returns the facts about this machine, "unknown" where a
// fact cannot be read.
func MachineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown", MemoryGi: "unknown", OS: "unknown", Kernel: "unknown"}
	if v := fileField("/proc/cpuinfo", "model name", ":"); v != "" {
		m.CPU = v
	}
	if v := fileField("/proc/meminfo", "MemTotal", ":"); v != "" {
		if kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64); err == nil {
			m.MemoryGi = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	if v := fileField("/etc/os-release", "PRETTY_NAME", "="); v != "" {
		m.OS = strings.Trim(v, `"`)
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// Describe returns the machine's facts as one phrase for a report.
func (m Machine) Describe() string {
	return fmt.Sprintf("%d CPUs (%s), %s of memory, %s, Linux %s, %s", m.CPUs, m.CPU, m.MemoryGi, m.OS, m.Kernel, m.Go)
}

// fileField returns the value of the first line of path whose key is key.
func fileField(path, key, sep string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// GatewiseVersion returns the version line for gatewise in a report: the
// binary's own version line with note and the repository's git describe
// when note is set (a binary given by the user), else the describe with
// the version line in parentheses.
func GatewiseVersion(ctx context.Context, repo, bin, note string) string {
	desc := RepoDescribe(ctx, repo)
	line := OrUnknown(FirstLine(Output(ctx, bin, "version")))
	if note != "" {
		return line + "; " + note + "; repository at " + desc
	}
	return desc + " (" + line + ")"
}

// RepoDescribe returns git describe of the repository at repo, or
// "unknown commit".
func RepoDescribe(ctx context.Context, repo string) string {
	desc := FirstLine(Output(ctx, "git", "-C", repo, "describe", "--tags", "--always", "--dirty"))
	if desc == "" {
		desc = "unknown commit"
	}
	return desc
}

// Output runs a command for at most 10s and returns its combined output,
// or "" when it fails.
func Output(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

// FirstLine returns the first line of s, trimmed.
func FirstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

// OrUnknown returns s, or "unknown" when s is empty.
func OrUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
