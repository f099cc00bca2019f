package benchkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// 100 on every Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

// ErrNoProcess is returned by GroupPIDs and GroupCPU when a process group
// has no live process left.
var ErrNoProcess = errors.New("no process in the group")

// ProcStat is what the benchmarks read from /proc/PID/stat.
type ProcStat struct {
	PID   int
	State byte // R, S, D, Z (a zombie: exited, not yet reaped), ...
	Pgrp  int
	CPU   time.Duration // utime + stime, all threads
}

// ParseProcStat parses the text of /proc/PID/stat. The command name
// (field 2) is in parentheses and may hold spaces and parentheses itself,
// so the fields are counted from the last ')'.
func ParseProcStat(text string) (ProcStat, error) {
	open := strings.IndexByte(text, '(')
	end := strings.LastIndexByte(text, ')')
	if open < 0 || end < open {
		return ProcStat{}, fmt.Errorf("/proc stat %q: no command name", shorten(text))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(text[:open]))
	if err != nil {
		return ProcStat{}, fmt.Errorf("/proc stat: pid: %w", err)
	}
	// After ")": state(3) ppid(4) pgrp(5) ... utime(14) stime(15).
	f := strings.Fields(text[end+1:])
	if len(f) < 13 {
		return ProcStat{}, fmt.Errorf("/proc stat %q: %d fields after the name, want 13 or more", shorten(text), len(f))
	}
	var n [3]int64
	for i, idx := range []int{2, 11, 12} {
		if n[i], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return ProcStat{}, fmt.Errorf("/proc stat field %d: %w", idx+3, err)
		}
	}
	return ProcStat{PID: pid, State: f[0][0], Pgrp: int(n[0]), CPU: time.Duration(n[1]+n[2]) * clockTick}, nil
}

// shorten cuts s to 60 bytes for an error message.
func shorten(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// groupStats returns the stat of every live process (zombies left out) of
// process group pgid.
func groupStats(pgid int) ([]ProcStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var sts []ProcStat
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := ParseProcStat(string(data))
		if err != nil {
			continue
		}
		if st.Pgrp == pgid && st.State != 'Z' {
			sts = append(sts, st)
		}
	}
	if len(sts) == 0 {
		return nil, fmt.Errorf("process group %d: %w", pgid, ErrNoProcess)
	}
	return sts, nil
}

// GroupPIDs returns the live processes of process group pgid (zombies left
// out): a child started by StartChild leads its own group, and its workers
// (nginx's, php-fpm's) stay in it. An empty group wraps ErrNoProcess.
func GroupPIDs(pgid int) ([]int, error) {
	sts, err := groupStats(pgid)
	if err != nil {
		return nil, err
	}
	pids := make([]int, len(sts))
	for i, st := range sts {
		pids[i] = st.PID
	}
	return pids, nil
}

// GroupCPU returns the CPU time (user and system, every thread) used so far
// by the live processes of group pgid, and how many there are. A worker
// that exits between two readings takes its time with it, so compare
// readings of long-lived processes only. An empty group wraps
// ErrNoProcess.
func GroupCPU(pgid int) (time.Duration, int, error) {
	sts, err := groupStats(pgid)
	if err != nil {
		return 0, 0, err
	}
	var sum time.Duration
	for _, st := range sts {
		sum += st.CPU
	}
	return sum, len(sts), nil
}
