package obs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingWriter keeps every Write it gets, and fails while fail is set.
type recordingWriter struct {
	mu     sync.Mutex
	writes []string
	fail   error
	closed bool
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("write to a closed writer")
	}
	if w.fail != nil {
		return 0, w.fail
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *recordingWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

func (w *recordingWriter) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

func (w *recordingWriter) setFail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail = err
}

func TestLineBufferBatchesLines(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	b := NewLineBuffer(w, 32, time.Hour, w, nil)
	for i := range 5 {
		if n, err := b.Write([]byte(fmt.Sprintf("line %d\n", i))); n != 7 || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	// 4 lines of 7 bytes fit in 32; the fifth sends them.
	if got := w.snapshot(); len(got) != 1 || got[0] != "line 0\nline 1\nline 2\nline 3\n" {
		t.Fatalf("writes after 5 lines: %q", got)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := w.snapshot(); len(got) != 2 || got[1] != "line 4\n" {
		t.Fatalf("writes after Flush: %q", got)
	}
	// A line as large as the buffer goes out at once, after what is held.
	_, _ = b.Write([]byte("small\n"))
	big := strings.Repeat("x", 40) + "\n"
	_, _ = b.Write([]byte(big))
	if got := w.snapshot(); len(got) != 4 || got[2] != "small\n" || got[3] != big {
		t.Fatalf("writes after a big line: %q", got)
	}
	_, _ = b.Write([]byte("last\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.snapshot(); got[len(got)-1] != "last\n" || !w.closed {
		t.Fatalf("Close did not write the held line and close: %q, closed %v", got, w.closed)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// After Close, lines go straight to the (closed) writer: an error,
	// not a panic and not a report.
	if _, err := b.Write([]byte("late\n")); err == nil {
		t.Error("a Write after Close reached a closed writer without an error")
	}
}

func TestLineBufferFlushesOnTime(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	b := NewLineBuffer(w, 64<<10, 20*time.Millisecond, nil, nil)
	defer b.Close()
	_, _ = b.Write([]byte("one\n"))
	if got := w.snapshot(); len(got) != 0 {
		t.Fatalf("a line was written before the flush interval: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(w.snapshot()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the held line was not written within 5 s of a 20 ms flush interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The timer is set again by the next line.
	_, _ = b.Write([]byte("two\n"))
	for len(w.snapshot()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second line was not written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := w.snapshot(); got[0] != "one\n" || got[1] != "two\n" {
		t.Errorf("writes %q", got)
	}
}

func TestLineBufferUnbuffered(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	b := NewLineBuffer(w, 0, 0, nil, nil)
	_, _ = b.Write([]byte("a\n"))
	_, _ = b.Write([]byte("b\n"))
	if got := w.snapshot(); len(got) != 2 {
		t.Errorf("size 0: writes %q, want one per line", got)
	}
}

// TestLineBufferKeepsLinesWholeAndInOrder writes numbered lines from many
// goroutines: every line arrives once, whole, and each goroutine's lines
// in the order it wrote them.
func TestLineBufferKeepsLinesWholeAndInOrder(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	b := NewLineBuffer(w, 1000, time.Millisecond, nil, nil)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				_, _ = b.Write([]byte(fmt.Sprintf("%d %d %s\n", g, i, strings.Repeat("y", i%50))))
			}
		}()
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(w.snapshot(), "")
	next := make([]int, writers)
	for _, line := range strings.Split(strings.TrimSuffix(all, "\n"), "\n") {
		var g, i int
		var pad string
		if _, err := fmt.Sscanf(line, "%d %d %s", &g, &i, &pad); err != nil && !(i%50 == 0 && pad == "") {
			t.Fatalf("a broken line %q: %v", line, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		if len(pad) != i%50 {
			t.Fatalf("line %q cut", line)
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines arrived, want %d", g, n, lines)
		}
	}
	for _, wr := range w.snapshot() {
		if len(wr) > 1000 || !strings.HasSuffix(wr, "\n") {
			t.Fatalf("a write of %d bytes, or not ending a line", len(wr))
		}
	}
}

func TestLineBufferReportsFailuresOncePerRun(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	var reports []error
	b := NewLineBuffer(w, 0, 0, nil, func(err error) { reports = append(reports, err) })
	disk := errors.New("no space left on device")
	w.setFail(disk)
	for range 3 {
		if _, err := b.Write([]byte("lost\n")); !errors.Is(err, disk) {
			t.Errorf("Write: %v, want the writer's error", err)
		}
	}
	w.setFail(nil)
	_, _ = b.Write([]byte("ok\n"))
	w.setFail(disk)
	_, _ = b.Write([]byte("lost again\n"))
	if len(reports) != 2 {
		t.Errorf("%d reports for two runs of failures: %v", len(reports), reports)
	}
	if got := w.snapshot(); len(got) != 1 || !bytes.Equal([]byte(got[0]), []byte("ok\n")) {
		t.Errorf("writes %q", got)
	}
}

// TestLineBufferCloseInto: after CloseInto the held lines are in the
// old destination, later lines go to the next writer, and with no next
// writer they are dropped without an error.
func TestLineBufferCloseInto(t *testing.T) {
	t.Parallel()
	old, next := &recordingWriter{}, &recordingWriter{}
	b := NewLineBuffer(old, 1024, time.Hour, old, nil)
	_, _ = b.Write([]byte("before\n"))
	if err := b.CloseInto(next); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Write([]byte("in flight\n")); n != 10 || err != nil {
		t.Fatalf("Write after CloseInto: %d, %v", n, err)
	}
	if got := old.snapshot(); len(got) != 1 || got[0] != "before\n" || !old.closed {
		t.Errorf("old destination: %q, closed %v", got, old.closed)
	}
	if got := next.snapshot(); len(got) != 1 || got[0] != "in flight\n" {
		t.Errorf("next destination: %q", got)
	}
	if err := b.Close(); err != nil { // already closed: nothing changes
		t.Fatal(err)
	}
	off := NewLineBuffer(&recordingWriter{}, 1024, time.Hour, nil, nil)
	_ = off.CloseInto(nil)
	if n, err := off.Write([]byte("dropped\n")); n != 8 || err != nil {
		t.Errorf("Write after CloseInto(nil): %d, %v", n, err)
	}
}
