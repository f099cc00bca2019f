package main

import (
	"bufio"
	"bytes"
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

// errNoProcess is returned when a process group has no process left.
var errNoProcess = errors.New("no process in the group")

// procStat is what the benchmark reads from /proc/PID/stat.
type procStat struct {
	pid   int
	state byte // R, S, D, Z (a zombie: exited, not yet reaped), ...
	pgrp  int
	cpu   time.Duration // utime + stime, all threads
}

// parseStat parses the text of /proc/PID/stat. The command name (field 2)
// is in parentheses and may hold spaces and parentheses itself, so the
// fields are counted from the last ')'.
func parseStat(text string) (procStat, error) {
	open := strings.IndexByte(text, '(')
	end := strings.LastIndexByte(text, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("/proc stat %q: no command name", benchText(text))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(text[:open]))
	if err != nil {
		return procStat{}, fmt.Errorf("/proc stat: pid: %w", err)
	}
	// After ")": state(3) ppid(4) pgrp(5) ... utime(14) stime(15).
	f := strings.Fields(text[end+1:])
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("/proc stat %q: %d fields after the name, want 13 or more", benchText(text), len(f))
	}
	var n [3]int64
	for i, idx := range []int{2, 11, 12} {
		if n[i], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc stat field %d: %w", idx+3, err)
		}
	}
	return procStat{pid: pid, state: f[0][0], pgrp: int(n[0]), cpu: time.Duration(n[1]+n[2]) * clockTick}, nil
}

// benchText shortens s for an error message.
func benchText(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// groupPIDs returns the live processes of process group pgid (zombies
// left out): a proxy started by benchkit.StartChild leads its own group,
// and its workers (nginx's) stay in it.
func groupPIDs(pgid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(string(data))
		if err != nil {
			continue
		}
		if st.pgrp == pgid && st.state != 'Z' {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("process group %d: %w", pgid, errNoProcess)
	}
	return pids, nil
}

// groupCPU returns the CPU time (user and system, every thread) used so far
// by the processes of group pgid, and how many processes there are. A
// worker that exits between two readings takes its time with it, so
// compare readings of long-lived processes only.
func groupCPU(pgid int) (time.Duration, int, error) {
	pids, err := groupPIDs(pgid)
	if err != nil {
		return 0, 0, err
	}
	var sum time.Duration
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		st, err := parseStat(string(data))
		if err != nil {
			return 0, 0, err
		}
		sum += st.cpu
	}
	return sum, len(pids), nil
}

// memReading is the memory of a group of processes.
type memReading struct {
	Bytes int64  `json:"bytes"`
	Kind  string `json:"kind"` // "Pss" or "RSS" (the fallback)
	Procs int    `json:"processes"`
}

// groupMemory returns the proportional set size (Pss, from
// /proc/PID/smaps_rollup) summed over the processes of group pgid, so that
// pages the nginx master shares with its workers count once; where
// smaps_rollup cannot be read, the resident set size (VmRSS) instead.
func groupMemory(pgid int) (memReading, error) {
	pids, err := groupPIDs(pgid)
	if err != nil {
		return memReading{}, err
	}
	r := memReading{Kind: "Pss", Procs: len(pids)}
	for _, pid := range pids {
		kb, err := procField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
		if err != nil {
			r.Kind = "RSS"
			break
		}
		r.Bytes += kb << 10
	}
	if r.Kind == "RSS" {
		r.Bytes = 0
		for _, pid := range pids {
			kb, err := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
			if err != nil {
				return memReading{}, err
			}
			r.Bytes += kb << 10
		}
	}
	return r, nil
}

// procField returns the number of kB on the line of path starting with key,
// such as "Pss:    1234 kB".
func procField(path, key string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, key) {
			continue
		}
		f := strings.Fields(line[len(key):])
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, key, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}
