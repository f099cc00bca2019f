package proxy

import (
	"errors"
	"io"
	"sync"
)

// errSuperseded is returned by the body reader of an attempt that a later
// attempt replaced (the transport may still be reading it when the retry
// starts).
var errSuperseded = errors.New("request body: superseded by a retry")

// replayBody keeps the first bytes of a request body as the attempts read
// it, so a retry can send the same body again: the kept bytes first, then
// the rest of the original. A body longer than the limit can be replayed
// only while no more than limit bytes of it have been read.
type replayBody struct {
	mu    sync.Mutex
	src   io.Reader // the visitor's body; the server closes it
	limit int64
	kept  []byte
	read  int64 // bytes read from src
	eof   bool
	err   error // a read error from src other than EOF
	gen   int
}

func newReplayBody(src io.Reader, limit int64) *replayBody {
	return &replayBody{src: src, limit: limit}
}

// replayable reports whether the body read so far is all kept.
func (b *replayBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read <= b.limit && b.err == nil
}

// readErr returns the error, other than EOF, that reading the visitor's
// body failed with, or nil.
func (b *replayBody) readErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// reader returns a reader of the whole body for a new attempt; readers of
// earlier attempts stop working.
func (b *replayBody) reader() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	return &attemptBody{b: b, gen: b.gen}
}

// attemptBody is one attempt's view of the body.
type attemptBody struct {
	b   *replayBody
	gen int
	off int64
}

func (a *attemptBody) Read(p []byte) (int, error) {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.gen != b.gen {
		return 0, errSuperseded
	}
	if a.off < int64(len(b.kept)) {
		n := copy(p, b.kept[a.off:])
		a.off += int64(n)
		return n, nil
	}
	if a.off < b.read {
		// Bytes beyond the limit were read by an earlier attempt and
		// not kept: this body cannot be replayed.
		return 0, errNotReplayable
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if n > 0 {
		if keep := b.limit - int64(len(b.kept)); keep > 0 && b.read == int64(len(b.kept)) {
			b.kept = append(b.kept, p[:min(int64(n), keep)]...)
		}
		b.read += int64(n)
		a.off += int64(n)
	}
	switch {
	case err == io.EOF: //nolint:errorlint // io.EOF is returned unwrapped by contract
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

// Close does nothing: the server closes the visitor's body, and a retry may
// still need it.
func (a *attemptBody) Close() error { return nil }

// errNotReplayable is returned when a retry would need body bytes that
// were not kept.
var errNotReplayable = errors.New("request body: larger than retry.replay_body_bytes, cannot be sent again")
