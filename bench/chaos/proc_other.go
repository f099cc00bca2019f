//go:build !linux

package main

import (
	"errors"
	"syscall"
)

// supported reports whether chaos can run on this system: it drives nginx
// and HAProxy as Linux packages, so only on Linux.
const supported = false

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) error { return errors.New("chaos: Linux only") }
