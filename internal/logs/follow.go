package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// FollowInterval is how often Follow looks for new lines, a replaced file
// or a truncated one.
const FollowInterval = 250 * time.Millisecond

// Follow tails the file name from its current end, like tail -F: it calls
// emit for each event in the lines appended to it, until ctx is done. When
// the file is replaced (rotated: another file under the name) or
// truncated, it reads the new content from its start. The format is
// detected from the file's first lines when it is first opened (or taken
// from Options.Format). Memory is bounded: at most one partial line of
// MaxLine bytes is held. It returns nil when ctx is done, and an error
// wrapping ErrUnreadable when the file cannot be opened at the start.
func (rd *Reader) Follow(ctx context.Context, name string, emit func(Event)) error {
	f, src, err := OpenFile(name)
	if err != nil {
		return err
	}
	format := rd.opts.Format
	if format == "" {
		sample := make([]byte, MaxLine)
		n, _ := io.ReadFull(f, sample)
		format = Detect(sample[:n])
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("%w %s: %w", ErrUnreadable, name, unwrapPath(err))
	}
	offset := st.Size()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("%w %s: %w", ErrUnreadable, name, err)
	}
	t := &tail{rd: rd, f: f, info: st, offset: offset, lc: lineCtx{ref: src.Ref},
		stats: FileStats{Source: name, Format: format}, parse: parseFor(format), emit: emit}
	defer func() { t.f.Close() }()
	tick := time.NewTicker(FollowInterval)
	defer tick.Stop()
	for {
		t.read()
		t.checkRotation(name)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// tail is the state of one followed file.
type tail struct {
	rd      *Reader
	f       *os.File
	info    os.FileInfo
	offset  int64
	partial []byte // the start of a line not yet ended, at most MaxLine
	skip    bool   // the current line is too long: drop it to its end
	buf     [32 << 10]byte
	lc      lineCtx
	stats   FileStats
	parse   parseFunc
	emit    func(Event)
}

// read reads what was appended and handles its complete lines.
func (t *tail) read() {
	for {
		n, err := t.f.Read(t.buf[:])
		t.offset += int64(n)
		data := t.buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				t.add(data)
				break
			}
			t.add(data[:i])
			t.line()
			data = data[i+1:]
		}
		if n == 0 || err != nil {
			return
		}
	}
}

// add appends to the partial line, or marks it too long.
func (t *tail) add(b []byte) {
	if t.skip {
		return
	}
	if len(t.partial)+len(b) > MaxLine {
		t.skip = true
		t.partial = t.partial[:0]
		return
	}
	t.partial = append(t.partial, b...)
}

// line handles the complete line in partial.
func (t *tail) line() {
	t.stats.Lines++
	if t.skip {
		t.skip = false
		t.stats.Unreadable++
		return
	}
	body := trimEOL(t.partial)
	if len(body) > 0 {
		var ev Event
		isEvent, readable := t.parse(t.rd.p, &t.lc, body, &ev)
		if !readable {
			t.stats.Unreadable++
		}
		if isEvent {
			ev.Source, ev.Format, ev.Line, ev.Raw = t.stats.Source, t.stats.Format, t.stats.Lines, rawString(body)
			if t.rd.keep(ev.Time) {
				t.emit(ev)
			}
		}
	}
	t.partial = t.partial[:0]
}

// checkRotation reopens the file when name is now another file, or when
// the file shrank (truncated): the new content is read from its start.
func (t *tail) checkRotation(name string) {
	st, err := os.Stat(name)
	if err != nil {
		return // gone for now (between rename and create): keep waiting
	}
	switch {
	case !os.SameFile(st, t.info):
		f, err := os.Open(name)
		if err != nil {
			return
		}
		t.read() // the last lines written to the old file
		t.f.Close()
		t.f, t.info, t.offset = f, st, 0
		t.partial, t.skip = t.partial[:0], false
		t.read()
	case st.Size() < t.offset:
		if _, err := t.f.Seek(0, io.SeekStart); err != nil && !errors.Is(err, os.ErrClosed) {
			return
		}
		t.offset = 0
		t.partial, t.skip = t.partial[:0], false
		t.read()
	}
}
