package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gatewise/gatewise/bench/internal/benchkit"
)

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
	pids, err := benchkit.GroupPIDs(pgid)
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
