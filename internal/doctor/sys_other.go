//go:build !linux

package doctor

import "errors"

// errNotLinux is returned by the system facts that only Linux gives.
var errNotLinux = errors.New("only on Linux")

// statfs is not implemented off Linux.
func statfs(path string) (DiskUsage, error) { return DiskUsage{}, errNotLinux }

// readKmsg is not implemented off Linux.
func readKmsg(path string) ([]byte, error) { return nil, errNotLinux }
