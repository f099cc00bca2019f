// Package heapfloor keeps the Go garbage collector's heap target at or
// above a floor, so a gateway whose live data is a few megabytes does not
// collect garbage dozens of times a second.
//
// With Go's default pacing (GOGC=100) the heap may grow to twice the live
// heap before the next collection. A gateway under load holds little live
// data (3 MiB at 50 connections) but allocates some every request, so it
// collected about 40 times a second on the small-GET benchmark, and every
// collection has fixed costs: stopping the world twice, starting the mark
// workers, scanning every goroutine's stack, and write barriers on while
// it runs. The default floor, 32 MiB, makes that about 3 a second.
//
// The floor is kept by raising GOGC after each collection while the live
// heap is small, and lowering it back as the live heap grows: once the
// starting GOGC alone reaches the floor (at GOGC=100, a live heap of half
// the floor), GOGC is the value the process started with. Setting the
// GOGC environment variable turns the floor off: the operator's choice
// stands.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// DefaultFloor is the heap target the gateway keeps at least: 32 MiB.
const DefaultFloor = 32 << 20

// FloorWithin returns the floor for a process that may use limit bytes
// of memory (0 or less: no limit): DefaultFloor, or a quarter of the
// limit when that is less, so the floor never brings a small container
// near its limit.
func FloorWithin(limit int64) int64 {
	if limit > 0 {
		return min(DefaultFloor, limit/4)
	}
	return DefaultFloor
}

// runtimeMinimumHeap is the Go runtime's smallest heap target at
// GOGC=100 (4 MiB, runtime.defaultHeapMinimum), which it scales with
// GOGC: at GOGC=1600 no target is below 64 MiB. The percent the floor
// sets is capped so that this minimum alone never passes the floor.
const runtimeMinimumHeap = 4 << 20

// liveMetric is the runtime metric read after each collection: the heap
// marked live by it. gogcMetric is GOGC, read once at Start.
const (
	liveMetric = "/gc/heap/live:bytes"
	gogcMetric = "/gc/gogc:percent"
)

// maxBase is the largest starting GOGC the floor works with; above it
// (GOGC=off reads as the largest uint64) Start does nothing.
const maxBase = 1 << 30

// Keeper holds the floor. Make one with Start; Stop ends it.
type Keeper struct {
	floor   int64
	base    int // the GOGC the process had at Start, restored by Stop
	stopped atomic.Bool
	once    sync.Once

	mu      sync.Mutex // guards percent and sample
	percent int        // the GOGC last set
	sample  []metrics.Sample
}

// Start keeps the heap target at floor bytes or more (0 or less:
// DefaultFloor) from the next collection on. It returns nil, and changes
// nothing, when getenv("GOGC") is not empty (the operator chose the
// pacing) or when garbage collection is off. getenv is os.Getenv in the
// gateway; nil means no variable is set.
func Start(floor int64, getenv func(string) string) *Keeper {
	if getenv != nil && getenv("GOGC") != "" {
		return nil
	}
	if floor <= 0 {
		floor = DefaultFloor
	}
	gogc := []metrics.Sample{{Name: gogcMetric}}
	metrics.Read(gogc)
	if gogc[0].Value.Kind() != metrics.KindUint64 || gogc[0].Value.Uint64() == 0 || gogc[0].Value.Uint64() > maxBase {
		return nil // off (it reads as the largest uint64), or unknown
	}
	base := int(gogc[0].Value.Uint64())
	k := &Keeper{floor: floor, base: base, percent: base,
		sample: []metrics.Sample{{Name: liveMetric}}}
	k.adjust()
	k.arm()
	return k
}

// arm attaches a cleanup to a new object that nothing references: the
// next collection frees it, the cleanup runs after that collection and
// arms the next one.
func (k *Keeper) arm() {
	sentinel := new([16]byte)
	runtime.AddCleanup(sentinel, func(k *Keeper) {
		if k.stopped.Load() {
			return
		}
		k.adjust()
		k.arm()
	}, k)
}

// adjust sets GOGC from the live heap of the last collection.
func (k *Keeper) adjust() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped.Load() {
		return
	}
	metrics.Read(k.sample)
	if k.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	want := PercentFor(int64(k.sample[0].Value.Uint64()), k.floor, k.base)
	// Small moves are not worth the call: the target moves by less
	// than an eighth.
	if d := want - k.percent; d*8 > k.percent || -d*8 > k.percent {
		debug.SetGCPercent(want)
		k.percent = want
	}
}

// PercentFor returns the GOGC that makes the heap target of a heap with
// live bytes live about floor, and never less than base: the target is
// live × (1 + GOGC/100), and no less than 4 MiB × GOGC/100 (the runtime's
// minimum), so the percent is at most floor / 4 MiB × 100. An unknown
// live heap (0 or less: no collection yet) gets base.
func PercentFor(live, floor int64, base int) int {
	if live <= 0 || live*(100+int64(base))/100 >= floor {
		return base
	}
	p := min(floor*100/live-100, floor*100/runtimeMinimumHeap)
	return int(max(p, int64(base)))
}

// Percent returns the GOGC the keeper last set; 0 for a nil Keeper.
func (k *Keeper) Percent() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.percent
}

// Stop ends the floor and restores the GOGC the process had at Start.
// Stop may be called more than once, and on a nil Keeper.
func (k *Keeper) Stop() {
	if k == nil {
		return
	}
	k.once.Do(func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.stopped.Store(true)
		debug.SetGCPercent(k.base)
		k.percent = k.base
	})
}
