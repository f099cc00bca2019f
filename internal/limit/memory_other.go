//go:build !linux

package limit

// memoryFiguresAvailable says whether /proc and the cgroup filesystem give
// the memory figures MemoryGuard watches: not on this system, where the
// guard never reports pressure.
const memoryFiguresAvailable = false
