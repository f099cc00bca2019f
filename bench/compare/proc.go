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
	Kind  string `json:"kind"` // "private" or "RSS" (the fallback)
	Procs int    `json:"processes"`
}

// groupMemory returns the private memory (Private_Clean + Private_Dirty,
// from /proc/PID/smaps_rollup: the pages no other process maps) summed
// over the processes of group pgid, where smaps_rollup cannot be read the
// resident set size (VmRSS) instead. What connections cost is private to
// the process holding them; a proportional share (Pss) of the libraries
// every process maps moves whenever another program starts or exits, by
// more than 200 connections cost nginx.
func groupMemory(pgid int) (memReading, error) {
	pids, err := benchkit.GroupPIDs(pgid)
	if err != nil {
		return memReading{}, err
	}
	r := memReading{Kind: "private", Procs: len(pids)}
	for _, pid := range pids {
		path := fmt.Sprintf("/proc/%d/smaps_rollup", pid)
		clean, err := procField(path, "Private_Clean:")
		if err != nil {
			r.Kind = "RSS"
			break
		}
		dirty, err := procField(path, "Private_Dirty:")
		if err != nil {
			r.Kind = "RSS"
			break
		}
		r.Bytes += (clean + dirty) << 10
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
