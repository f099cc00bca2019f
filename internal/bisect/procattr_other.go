//go:build !unix

package bisect

import "os/exec"

// ownProcessGroup leaves cmd as it is: process groups are a unix notion.
func ownProcessGroup(*exec.Cmd) {}

// processAlive cannot tell here, and says no.
func processAlive(int) bool { return false }
