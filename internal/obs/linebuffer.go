package obs

import (
	"io"
	"sync"
	"time"
)

// LineBuffer is the access log's writer: it holds whole lines in memory
// and writes them to its destination together, when the next line would
// not fit and at most a flush interval after the first line it holds, as
// nginx's "access_log ... buffer=64k flush=1s" does. A line is never
// split between writes, and lines reach the destination in the order
// their Writes returned. With a size of 0 each line is written at once.
// Make one with NewLineBuffer; it is safe for concurrent use.
type LineBuffer struct {
	mu      sync.Mutex // guards the fields below it, up to out
	buf     []byte     // lines not yet written
	spare   []byte     // the other buffer, while it is not being written
	size    int
	every   time.Duration
	timer   *time.Timer
	pending bool // the timer is set
	closed  bool
	// next receives the Writes made after CloseInto (nil: they are
	// dropped); used only when redirected.
	next       io.Writer
	redirected bool

	out     sync.Mutex // held while writing to w, taken before mu is released
	w       io.Writer
	closer  io.Closer
	onError func(error)
	failing bool // the last write to w failed (guarded by out)
}

// NewLineBuffer returns a LineBuffer that writes to w, holding up to size
// bytes (0 or less: none) for at most every (0 or less: 1s). Close closes
// closer (nil: nothing) after the last write. onError (nil: none) is
// called with the error of a failed write to w, once per run of
// failures: the lines of a failed write are lost.
func NewLineBuffer(w io.Writer, size int, every time.Duration, closer io.Closer, onError func(error)) *LineBuffer {
	if every <= 0 {
		every = time.Second
	}
	return &LineBuffer{w: w, size: max(size, 0), every: every, closer: closer, onError: onError}
}

// Write holds p, one or more whole lines, for a later write; it writes
// the lines held first when p would not fit, and writes p at once when it
// is as large as the buffer or the buffer is closed or has no size. It
// returns the error of a write it made itself, else nil.
func (b *LineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	var err error
	for len(b.buf) > 0 && len(b.buf)+len(p) > b.size {
		err = b.flushAndUnlock()
		b.mu.Lock()
	}
	if b.redirected {
		next := b.next
		b.mu.Unlock()
		if next == nil {
			return len(p), nil
		}
		return next.Write(p)
	}
	if b.closed || len(p) >= b.size {
		// Written at once, in order: the buffer is empty and out is
		// taken before mu is released.
		b.out.Lock()
		closed := b.closed
		b.mu.Unlock()
		_, werr := b.w.Write(p)
		if !closed {
			b.noteLocked(werr)
		}
		b.out.Unlock()
		if werr != nil {
			return 0, werr
		}
		return len(p), err
	}
	if b.buf == nil {
		b.buf = make([]byte, 0, b.size)
	}
	b.buf = append(b.buf, p...)
	if !b.pending {
		b.pending = true
		if b.timer == nil {
			b.timer = time.AfterFunc(b.every, b.flushOnTimer)
		} else {
			b.timer.Reset(b.every)
		}
	}
	b.mu.Unlock()
	return len(p), err
}

// flushAndUnlock writes the lines held, with mu held on entry and
// released on return. Writers meanwhile fill the other buffer.
func (b *LineBuffer) flushAndUnlock() error {
	data := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.out.Lock()
	b.mu.Unlock()
	_, err := b.w.Write(data)
	b.noteLocked(err)
	b.out.Unlock()
	b.mu.Lock()
	if b.spare == nil {
		b.spare = data[:0]
	}
	b.mu.Unlock()
	return err
}

// noteLocked reports the first failure of a run to onError; out is held.
func (b *LineBuffer) noteLocked(err error) {
	switch {
	case err != nil && !b.failing:
		b.failing = true
		if b.onError != nil {
			b.onError(err)
		}
	case err == nil:
		b.failing = false
	}
}

// flushOnTimer writes the lines held when the flush interval is up.
func (b *LineBuffer) flushOnTimer() {
	b.mu.Lock()
	b.pending = false
	if len(b.buf) == 0 || b.closed {
		b.mu.Unlock()
		return
	}
	_ = b.flushAndUnlock()
}

// Flush writes the lines held now.
func (b *LineBuffer) Flush() error {
	b.mu.Lock()
	if len(b.buf) == 0 {
		b.mu.Unlock()
		return nil
	}
	return b.flushAndUnlock()
}

// Close writes the lines held, stops the flush timer and closes the
// closer given to NewLineBuffer. Later Writes go to the destination at
// once, and their errors are not reported. Close may be called more than
// once; only the first closes.
func (b *LineBuffer) Close() error {
	return b.close(false, nil)
}

// CloseInto is Close for a reload: the lines of the requests still in
// flight, written after it, go to next (the new config's access log; nil
// when it is off: they are dropped) instead of a closed file.
func (b *LineBuffer) CloseInto(next io.Writer) error {
	return b.close(true, next)
}

func (b *LineBuffer) close(redirect bool, next io.Writer) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.redirected, b.next = redirect, next
	if b.timer != nil {
		b.timer.Stop()
	}
	var err error
	if len(b.buf) > 0 {
		err = b.flushAndUnlock()
	} else {
		b.mu.Unlock()
	}
	if b.closer != nil {
		b.out.Lock()
		if cerr := b.closer.Close(); err == nil {
			err = cerr
		}
		b.out.Unlock()
	}
	return err
}
