//go:build !linux

package benchkit

import (
	"errors"
	"syscall"
)

// Supported reports whether the benchmarks can run on this system: they
// drive nginx (and HAProxy) as Linux packages, so only on Linux.
const Supported = false

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) error { return errors.New("benchkit: Linux only") }
