//go:build linux

package benchkit

import "syscall"

// Supported reports whether the benchmarks can run on this system.
const Supported = true

// sysProcAttr puts a child in its own process group, so that signalGroup
// reaches its workers too, and stops it if the benchmark dies without
// cleaning up (killed with SIGKILL). That signal is SIGTERM, not SIGKILL: an
// nginx master killed outright leaves its workers running, while on SIGTERM
// it stops them.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// signalGroup sends sig to the process group that pid leads.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}
