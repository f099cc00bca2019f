package benchkit

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		want ProcStat
	}{
		// A command name with spaces and a parenthesis, as a process may set.
		{"4242 (we ird) name) S 1 4240 4240 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 3 0 123 1000 50 0",
			ProcStat{PID: 4242, State: 'S', Pgrp: 4240, CPU: 3800 * time.Millisecond}},
		{"123 (php-fpm: pool (www)) S 1 120 120 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10 18446744073709551615",
			ProcStat{PID: 123, State: 'S', Pgrp: 120, CPU: 3 * time.Second}},
		{"7 (nginx) Z 1 7 7 0 -1 4194560 0 0 0 0 1 2 0 0 20 0 1 0 100 0 0 0",
			ProcStat{PID: 7, State: 'Z', Pgrp: 7, CPU: 30 * time.Millisecond}},
	} {
		got, err := ParseProcStat(tc.text)
		if err != nil || got != tc.want {
			t.Errorf("ParseProcStat(%.30q...) = %+v, %v; want %+v", tc.text, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "12 no name S 1", "x (a) S 1 2 3 4 5 6 7 8 9 10 11 12", "12 (a) S 1 2",
		"12 (a) S 1 x 2 3 4 5 6 7 8 9 10 11 12"} {
		if _, err := ParseProcStat(bad); err == nil {
			t.Errorf("ParseProcStat(%q): no error", bad)
		}
	}
}

// TestGroupCPU runs a real process group (a shell that spins and a child
// of it) and reads its processes and CPU time from /proc.
func TestGroupCPU(t *testing.T) {
	t.Parallel()
	sh, err := FindBinary("", "sh")
	if err != nil {
		t.Fatal(err)
	}
	// The loop forks nothing (a process that exits takes its CPU time with
	// it) and is bounded: a few seconds of work at most.
	ch, err := StartChild("spin", []string{sh, "-c", "sleep 20 & n=0; while [ $n -lt 20000000 ]; do n=$((n+1)); done"},
		filepath.Join(t.TempDir(), "spin.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Stop()
	var pids []int
	for deadline := time.Now().Add(5 * time.Second); len(pids) < 2 && time.Now().Before(deadline); {
		pids, _ = GroupPIDs(ch.Pid())
		time.Sleep(20 * time.Millisecond)
	}
	if len(pids) != 2 {
		t.Fatalf("group %d has %v, want the shell and its sleep", ch.Pid(), pids)
	}
	cpu0, n, err := GroupCPU(ch.Pid())
	if err != nil || n != 2 {
		t.Fatalf("GroupCPU: %v, %d processes, %v", cpu0, n, err)
	}
	time.Sleep(300 * time.Millisecond)
	cpu1, _, err := GroupCPU(ch.Pid())
	if err != nil {
		t.Fatal(err)
	}
	// A spinning shell on a shared 2-core machine: well above 0 in 0.3s.
	if d := cpu1 - cpu0; d < 2*clockTick || d > 2*time.Second {
		t.Errorf("the spinning group used %v of CPU in 0.3s, want 20ms to 2s", d)
	}
	ch.Stop()
	// The orphaned sleep is killed with the group; its new parent reaps it.
	for deadline := time.Now().Add(5 * time.Second); ; {
		_, _, err := GroupCPU(ch.Pid())
		if errors.Is(err, ErrNoProcess) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GroupCPU 5s after Stop: %v, want ErrNoProcess", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
