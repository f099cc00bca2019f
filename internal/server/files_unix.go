//go:build unix

package server

import "syscall"

// openFilesLimit returns the process's open-files limit (RLIMIT_NOFILE's
// soft limit, which Go raised to the hard one at start), and false when it
// cannot be read.
func openFilesLimit() (uint64, bool) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, false
	}
	return uint64(l.Cur), true
}
