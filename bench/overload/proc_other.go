//go:build !linux

package main

import (
	"errors"
	"syscall"
)

// supported reports whether overload can run on this system: it drives
// nginx as a Linux package, so only on Linux.
const supported = false

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) error { return errors.New("overload: Linux only") }
