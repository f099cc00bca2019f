//go:build linux || darwin

package benchkit

import (
	"fmt"
	"syscall"
)

// RaiseNofile raises this process's open-files limit (which the programs
// it starts inherit) to want when it is lower: to want when the hard
// limit allows it or the process may raise that (root), else to the hard
// limit. It returns the limit in force afterwards, which the caller
// compares with what it needs; the error is a failure to read or set it.
func RaiseNofile(want uint64) (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("open-files limit: %w", err)
	}
	if rl.Cur >= want {
		return rl.Cur, nil
	}
	try := syscall.Rlimit{Cur: want, Max: max(want, rl.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err != nil {
		try = syscall.Rlimit{Cur: rl.Max, Max: rl.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err != nil {
			return 0, fmt.Errorf("open-files limit: %w", err)
		}
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("open-files limit: %w", err)
	}
	return rl.Cur, nil
}
