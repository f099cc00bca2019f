package limit

// memoryFiguresAvailable says whether /proc and the cgroup filesystem give
// the memory figures MemoryGuard watches.
const memoryFiguresAvailable = true
