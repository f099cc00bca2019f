package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gatewise/gatewise/internal/cause"
)

// detectLines is how many non-empty lines Detect looks at.
const detectLines = 20

// Options configure a Reader.
type Options struct {
	// Table is the cause taxonomy. Nil means cause.NewTable().
	Table *cause.Table
	// Since and Until keep only events at or after Since and before Until.
	// Zero means no bound. Events whose time is unknown are kept.
	Since, Until time.Time
	// Location is the time zone of logs that write local time without a
	// zone (nginx, Apache, PHP-FPM, syslog). Nil means time.Local.
	Location *time.Location
	// Format forces a format instead of detecting it. Empty means detect.
	Format Format
}

// Reader reads log files into events. It holds no mutable state: one
// Reader may scan several files at once.
type Reader struct {
	opts Options
	p    *parser
}

// NewReader returns a Reader. It fails when a signature of the table does
// not compile.
func NewReader(opts Options) (*Reader, error) {
	if opts.Table == nil {
		opts.Table = cause.NewTable()
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	p, err := newParser(opts.Table, opts.Location)
	if err != nil {
		return nil, err
	}
	return &Reader{opts: opts, p: p}, nil
}

// FileStats is what scanning one file found.
type FileStats struct {
	// Source is the file's name as given ("-" for the standard input).
	Source string `json:"source"`
	// Format is the detected (or forced) format.
	Format Format `json:"format"`
	// Compressed reports whether the file was gzip-compressed.
	Compressed bool `json:"compressed,omitempty"`
	// Lines is how many lines were read, Events how many became events
	// (before the Since/Until filter), Unreadable how many did not fit the
	// format or were longer than MaxLine.
	Lines      int64 `json:"lines"`
	Events     int64 `json:"events"`
	Unreadable int64 `json:"unreadable"`
	// Bytes is how many bytes were read (after decompression).
	Bytes int64 `json:"bytes"`
	// FirstUnreadable is the first unreadable line, cut to 200 bytes, to
	// show what the reader did not understand.
	FirstUnreadable string `json:"first_unreadable,omitempty"`
}

// ErrUnreadable wraps the error of a file that cannot be opened or read.
var ErrUnreadable = errors.New("cannot read log")

// Source is an opened log: a name for messages, the reader, and the
// reference time for year-less time stamps (the file's modification time,
// or now for the standard input).
type Source struct {
	Name string
	R    io.Reader
	Ref  time.Time
}

// OpenFile opens a file for Scan. The error, wrapping ErrUnreadable and the
// os error, names the file.
func OpenFile(name string) (*os.File, Source, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, Source{}, fmt.Errorf("%w %s: %w", ErrUnreadable, name, unwrapPath(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Source{}, fmt.Errorf("%w %s: %w", ErrUnreadable, name, unwrapPath(err))
	}
	if st.IsDir() {
		f.Close()
		return nil, Source{}, fmt.Errorf("%w %s: is a directory", ErrUnreadable, name)
	}
	return f, Source{Name: name, R: f, Ref: st.ModTime()}, nil
}

// unwrapPath drops the *PathError around an error, whose text repeats the
// file name.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Scan reads src to its end (or until ctx is done), calling emit for each
// event that passes the Since/Until filter. emit may keep the event. It
// returns the file's statistics, and an error only when reading fails
// (wrapping ErrUnreadable); lines it does not understand are counted, not
// errors.
func (rd *Reader) Scan(ctx context.Context, src Source, emit func(Event)) (FileStats, error) {
	st := FileStats{Source: src.Name}
	br := bufio.NewReaderSize(src.R, MaxLine)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return st, fmt.Errorf("%w %s: gzip: %w", ErrUnreadable, src.Name, err)
		}
		defer zr.Close()
		st.Compressed = true
		br = bufio.NewReaderSize(zr, MaxLine)
	}
	st.Format = rd.opts.Format
	if st.Format == "" {
		sample, _ := br.Peek(MaxLine)
		st.Format = Detect(sample)
	}
	ref := src.Ref
	if ref.IsZero() {
		ref = time.Now()
	}
	ls := lineScanner{br: br}
	err := rd.scanLines(ctx, &ls, parseFor(st.Format), &lineCtx{ref: ref}, &st, emit)
	if err != nil {
		return st, fmt.Errorf("%w %s: %w", ErrUnreadable, src.Name, err)
	}
	return st, nil
}

// scanLines runs parse over every line of ls until its end or ctx is done.
func (rd *Reader) scanLines(ctx context.Context, ls *lineScanner, parse parseFunc, lc *lineCtx, st *FileStats, emit func(Event)) error {
	var ev Event
	for {
		if st.Lines&0xFFFF == 0 && ctx.Err() != nil {
			return nil
		}
		line, tooLong, err := ls.next()
		if len(line) > 0 || tooLong {
			st.Lines++
			st.Bytes += int64(len(line))
			if tooLong {
				st.Bytes += ls.skipped
				rd.unreadable(st, line)
			} else if body := trimEOL(line); len(body) > 0 {
				isEvent, readable := parse(rd.p, lc, body, &ev)
				if !readable {
					rd.unreadable(st, body)
				}
				if isEvent {
					st.Events++
					ev.Source, ev.Format, ev.Line, ev.Raw = st.Source, st.Format, st.Lines, rawString(body)
					if rd.keep(ev.Time) {
						emit(ev)
					}
					ev = Event{}
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (rd *Reader) unreadable(st *FileStats, line []byte) {
	st.Unreadable++
	if st.FirstUnreadable == "" {
		st.FirstUnreadable = string(bytes.ToValidUTF8(limit(trimEOL(line), 200), []byte("?")))
	}
}

// keep reports whether an event at t passes the Since/Until filter.
func (rd *Reader) keep(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	if !rd.opts.Since.IsZero() && t.Before(rd.opts.Since) {
		return false
	}
	if !rd.opts.Until.IsZero() && !t.Before(rd.opts.Until) {
		return false
	}
	return true
}

// lineScanner splits a bufio.Reader into lines no longer than its buffer
// (MaxLine), without copying them.
type lineScanner struct {
	br      *bufio.Reader
	skipped int64 // bytes skipped in the last too-long line
}

// next returns the next line with its "\n" (the last line may lack it).
// A line longer than the buffer is skipped to its end and returned cut,
// with tooLong true. The slice is valid until the next call.
func (ls *lineScanner) next() (line []byte, tooLong bool, err error) {
	line, err = ls.br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, false, err
	}
	head := limit(line, 200)
	ls.skipped = int64(len(line) - len(head))
	for errors.Is(err, bufio.ErrBufferFull) {
		var more []byte
		more, err = ls.br.ReadSlice('\n')
		ls.skipped += int64(len(more))
	}
	return head, true, err
}

// formatOrder is the order formats are tried in Detect: the first of the
// formats with the most matching lines wins.
func formatOrder() []struct {
	f      Format
	detect func([]byte) bool
} {
	return []struct {
		f      Format
		detect func([]byte) bool
	}{
		{FormatNginxError, detectNginxError},
		{FormatApacheError, detectApacheError},
		{FormatPHP, detectPHP},
		{FormatPHPFPM, detectFPM},
		{FormatGatewise, detectGatewise},
		{FormatCaddy, detectCaddy},
		{FormatTraefikJSON, detectTraefikJSON},
		{FormatTraefik, detectTraefikText},
		{FormatMySQL, detectMySQL},
		{FormatSyslog, detectSyslog},
		{FormatHAProxy, detectHAProxy},
		{FormatNginxAccess, detectNginxAccess},
		{FormatKernel, detectKernel},
	}
}

// Detect returns the format of a log from its beginning: the format that
// reads most of its first 20 non-empty lines (at least half of them), or
// FormatUnknown.
func Detect(sample []byte) Format {
	order := formatOrder()
	scores := make([]int, len(order))
	n := 0
	for len(sample) > 0 && n < detectLines {
		var line []byte
		i := bytes.IndexByte(sample, '\n')
		if i < 0 {
			line, sample = sample, nil
		} else {
			line, sample = sample[:i], sample[i+1:]
		}
		line = trimEOL(line)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		n++
		for k, o := range order {
			if o.detect(line) {
				scores[k]++
			}
		}
	}
	best := -1
	for k := range order {
		if scores[k] > 0 && (best < 0 || scores[k] > scores[best]) {
			best = k
		}
	}
	if best < 0 || scores[best]*2 < n {
		return FormatUnknown
	}
	return order[best].f
}

// parseFor returns the parse function of a format.
func parseFor(f Format) parseFunc {
	switch f {
	case FormatNginxError:
		return nginxError
	case FormatNginxAccess:
		return nginxAccess
	case FormatApacheError:
		return apacheError
	case FormatPHPFPM:
		return fpmLog
	case FormatPHP:
		return phpLog
	case FormatHAProxy:
		return haproxyLog
	case FormatCaddy:
		return caddyLog
	case FormatTraefikJSON:
		return traefikJSON
	case FormatTraefik:
		return traefikText
	case FormatKernel:
		return kernelLog
	case FormatSyslog:
		return syslogLog
	case FormatMySQL:
		return mysqlLog
	case FormatGatewise:
		return gatewiseLog
	}
	return unknownLog
}

// ParseFormat returns the format named s, or an error listing the names.
func ParseFormat(s string) (Format, error) {
	for _, o := range formatOrder() {
		if string(o.f) == s {
			return o.f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q: want one of nginx-error, nginx-access, apache-error, php-fpm, php, haproxy, caddy, traefik-json, traefik, kernel, syslog, mysql, gatewise", s)
}

// unknownLog reads a file of unknown format: every line is matched against
// every server's signatures, and its time is looked for in the usual
// places. No line is unreadable.
func unknownLog(p *parser, lc *lineCtx, line []byte, ev *Event) (bool, bool) {
	if id := phpMessage(line); id != "" {
		p.setCause(ev, id)
	} else if kernelMessage(p, line, ev) {
		// ev is filled.
	} else if id := p.m["*"].match(line); id != "" {
		p.setCause(ev, id)
	} else {
		return false, true
	}
	if t, ok := timeNginxError(line, p.loc); ok {
		ev.Time = t
	} else if t, _, ok := syslogHeader(line, lc.ref, p.loc); ok {
		ev.Time = t
	} else if len(line) > 1 && line[0] == '[' {
		if t, _, ok := timeCtime(line[1:], p.loc); ok {
			ev.Time = t
		} else if t, _, ok := timeFPM(line[1:], p.loc); ok {
			ev.Time = t
		}
	}
	return true, true
}
