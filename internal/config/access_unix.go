//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package config

import "syscall"

// writable returns nil when the current user may write to the file or
// directory at path (or create files in it), as access(2) with W_OK says.
func writable(path string) error {
	const wOK = 0x2
	return syscall.Access(path, wOK)
}
