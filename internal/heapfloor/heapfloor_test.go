package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor int64
		base, want  int
	}{
		{0, 64 * mib, 100, 100},         // no collection yet
		{32 * mib, 64 * mib, 100, 100},  // half the floor: GOGC=100 reaches it
		{100 * mib, 64 * mib, 100, 100}, // above the floor
		{16 * mib, 64 * mib, 100, 300},  // 16 × (1 + 3) = 64
		{8 * mib, 64 * mib, 100, 700},   // 8 × 8 = 64
		{3 * mib, 64 * mib, 100, 1600},  // capped: 4 MiB × 16 = 64 MiB
		{1024, 64 * mib, 100, 1600},     // a tiny heap, the same cap
		{16 * mib, 64 * mib, 500, 500},  // a higher base already reaches it
		{16 * mib, 32 * mib, 100, 100},  // 16 × 2 = 32
		{4 * mib, 16 * mib, 100, 300},   // a lower floor
		{1 * mib, 16 * mib, 100, 400},   // capped at 16 / 4 × 100
		{12 * mib, 16 * mib, 100, 100},  // 12 × 2 > 16
		{8*mib - 1, 16 * mib, 100, 100}, // just under half the floor
		{7 * mib, 16 * mib, 100, 128},   // 16 / 7 - 1 = 1.28
		{8 * mib, 64 * mib, 2000, 2000}, // never below base
		{2 * mib, 4 * mib, 50, 100},     // 2 × 2 = 4, cap 100
		{1 * mib, 64 * mib, 100, 1600},  // cap, not 6300
		{40 * mib, 64 * mib, 100, 100},  // 40 × 2 = 80
		{21 * mib, 64 * mib, 100, 204},  // 64 / 21 - 1 = 2.04
		{64 * mib, 64 * mib, 100, 100},  // at the floor
		{65 * mib, 64 * mib, 0, 0},      // GOGC=0 stays 0 above the floor
	} {
		if got := PercentFor(c.live, c.floor, c.base); got != c.want {
			t.Errorf("PercentFor(live %d, floor %d, base %d) = %d, want %d", c.live, c.floor, c.base, got, c.want)
		}
	}
}

func TestFloorWithin(t *testing.T) {
	for limit, want := range map[int64]int64{
		0:         DefaultFloor,
		-1:        DefaultFloor,
		1 << 30:   DefaultFloor,
		256 << 20: 32 << 20,
		128 << 20: 32 << 20,
		100 << 20: 25 << 20,
		64 << 20:  16 << 20,
	} {
		if got := FloorWithin(limit); got != want {
			t.Errorf("FloorWithin(%d) = %d, want %d", limit, got, want)
		}
	}
}

// readGC returns the runtime's current GOGC and heap goal.
func readGC() (gogc, goal uint64) {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// collectUntil runs collections until ok holds, for at most 5 s: the
// keeper adjusts in a cleanup that runs shortly after each collection.
func collectUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s of collections: %s", what)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKeeperRaisesTheTargetAndLowersItForALargeHeap(t *testing.T) {
	const floor = 64 << 20
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	k := Start(floor, func(string) string { return "" })
	if k == nil {
		t.Fatal("Start returned nil with GOGC unset and collection on")
	}
	defer k.Stop()
	collectUntil(t, "the keeper never raised GOGC for a small heap", func() bool { return k.Percent() > 100 })
	gogc, goal := readGC()
	if int(gogc) != k.Percent() {
		t.Errorf("runtime GOGC %d, keeper says %d", gogc, k.Percent())
	}
	// The live heap of a test binary is a few MiB; the goal is the floor,
	// give or take the stacks and globals the runtime adds.
	if goal < floor*9/10 || goal > floor*3/2 {
		t.Errorf("heap goal %d MiB with a floor of %d MiB", goal>>20, floor>>20)
	}

	// 48 MiB live: GOGC=100 already reaches the floor (96 MiB).
	held := make([][]byte, 48)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	collectUntil(t, "the keeper kept GOGC high with 48 MiB live", func() bool { return k.Percent() == 100 })
	if gogc, _ := readGC(); gogc != 100 {
		t.Errorf("runtime GOGC %d with 48 MiB live, want 100", gogc)
	}
	runtime.KeepAlive(held)
	held = nil

	collectUntil(t, "the keeper did not raise GOGC again once the heap shrank", func() bool { return k.Percent() > 100 })
	k.Stop()
	k.Stop()
	if gogc, _ := readGC(); gogc != 100 {
		t.Errorf("after Stop: GOGC %d, want the 100 it started with", gogc)
	}
	// Stopped: collections change nothing any more.
	debug.SetGCPercent(150)
	runtime.GC()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if gogc, _ := readGC(); gogc != 150 {
		t.Errorf("a stopped keeper changed GOGC to %d", gogc)
	}
}

func TestStartLeavesTheOperatorsChoice(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	if k := Start(0, func(name string) string {
		if name == "GOGC" {
			return "200"
		}
		return ""
	}); k != nil {
		k.Stop()
		t.Fatal("Start kept a floor with GOGC set in the environment")
	}
	debug.SetGCPercent(-1)
	if k := Start(0, nil); k != nil {
		k.Stop()
		t.Fatal("Start kept a floor with garbage collection off")
	}
	if gogc, _ := readGC(); gogc != ^uint64(0) { // off reads as the largest uint64
		t.Errorf("Start changed GOGC=off to %d", gogc)
	}
	var k *Keeper
	k.Stop()
	if k.Percent() != 0 {
		t.Error("a nil Keeper reports a percent")
	}
}
