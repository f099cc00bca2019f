package fastcgi

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"github.com/gatewise/gatewise/internal/cause"
)

// PHPError is a message PHP wrote to the FastCGI error stream, such as
// "PHP Fatal error:  Uncaught Exception: boom in /var/www/x.php:3". It is
// the Err of the *cause.Error that RoundTrip returns for a PHP failure, so
// the owner's log shows it; it is never put in the cause's Detail, which a
// visitor may see.
type PHPError struct {
	// Kind is PHP's name for the message's level: "Fatal error",
	// "Parse error", "Warning", ...
	Kind string
	// Message is the message without its kind and location, such as
	// "Uncaught Exception: boom".
	Message string
	// File is the PHP file the message names; empty when it names none.
	File string
	// Line is the line in File; zero when unknown.
	Line int
}

// Error returns the message as PHP logs it, with the file and line:
// "PHP Fatal error: Uncaught Exception: boom in /var/www/x.php on line 3".
func (e *PHPError) Error() string {
	s := "PHP " + e.Kind + ": " + e.Message
	if e.File != "" {
		s += " in " + e.File
		if e.Line > 0 {
			s += " on line " + strconv.Itoa(e.Line)
		}
	}
	return s
}

// Fatal reports whether the message ended the script: a fatal, parse,
// compile or core error.
func (e *PHPError) Fatal() bool {
	switch e.Kind {
	case "Fatal error", "Parse error", "Compile error", "Core error", "Recoverable fatal error":
		return true
	}
	return false
}

// Cause returns the cause a fatal message stands for and the detail safe to
// show anyone: php_memory_exhausted, php_timeout (detail
// "max_execution_time") or php_fatal_error.
func (e *PHPError) Cause() (cause.ID, string) {
	switch {
	case strings.HasPrefix(e.Message, "Allowed memory size of ") || strings.HasPrefix(e.Message, "Out of memory"):
		return cause.PHPMemoryExhausted, ""
	case strings.HasPrefix(e.Message, "Maximum execution time of "):
		return cause.PHPTimeout, "max_execution_time"
	}
	return cause.PHPFatalError, ""
}

// messageStart matches the first line of a PHP log message, after the
// optional "PHP message: " that PHP-FPM puts before each message it sends
// on the error stream.
var messageStart = regexp.MustCompile(`^(?:PHP message: )?PHP ([A-Z][A-Za-z ]{2,30}):\s+(.*)$`)

// location matches the file and line at the end of a message's first line:
// "... in /path/x.php on line 12" or "... in /path/x.php:12". The greedy
// prefix makes it the last " in " of the line.
var location = regexp.MustCompile(`^(.*) in (.+?)(?::(\d+)| on line (\d+))$`)

// thrownIn matches the last line of an uncaught exception's message.
var thrownIn = regexp.MustCompile(`(?m)^\s*thrown in (.+?) on line (\d+)\s*$`)

// parseMessages splits text from the FastCGI error stream into PHP
// messages. Lines that start no message continue the previous one (a stack
// trace); lines before the first message are ignored.
func parseMessages(text []byte) []*PHPError {
	var out []*PHPError
	var cur *PHPError
	var rest strings.Builder
	flush := func() {
		if cur == nil {
			return
		}
		if cur.File == "" {
			if m := thrownIn.FindStringSubmatch(rest.String()); m != nil {
				cur.File = m[1]
				cur.Line, _ = strconv.Atoi(m[2])
			}
		}
		out = append(out, cur)
		cur = nil
		rest.Reset()
	}
	for len(text) > 0 {
		var line []byte
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, nil
		}
		line = bytes.TrimRight(line, "\r")
		m := messageStart.FindSubmatch(line)
		if m == nil {
			if cur != nil {
				rest.Write(line)
				rest.WriteByte('\n')
			}
			continue
		}
		flush()
		cur = &PHPError{Kind: string(m[1]), Message: string(m[2])}
		if l := location.FindStringSubmatch(cur.Message); l != nil {
			cur.Message, cur.File = l[1], l[2]
			n := l[3]
			if n == "" {
				n = l[4]
			}
			cur.Line, _ = strconv.Atoi(n)
		}
	}
	flush()
	return out
}

// stderrCapture keeps the start of a request's FastCGI error stream, up to
// a limit, and finds PHP's fatal errors in it.
type stderrCapture struct {
	max       int
	buf       []byte
	truncated bool
	// scanned is how much of buf has been searched for a fatal error.
	scanned int
	fatal   *PHPError
}

// write appends p (or what fits under the limit) and reports whether a
// fatal error is now known that was not before. PHP-FPM sends each message
// in one record, so the text is scanned to its end at once; a last line
// without a newline is scanned again with the next record, in case a
// message was split.
func (c *stderrCapture) write(p []byte) bool {
	if room := c.max - len(c.buf); room < len(p) {
		p = p[:max(room, 0)]
		c.truncated = true
	}
	c.buf = append(c.buf, p...)
	if c.fatal != nil || c.scanned >= len(c.buf) {
		return false
	}
	for _, m := range parseMessages(c.buf[c.scanned:]) {
		if m.Fatal() {
			c.fatal = m
			break
		}
	}
	if i := bytes.LastIndexByte(c.buf, '\n'); i+1 > c.scanned {
		c.scanned = i + 1
	}
	return c.fatal != nil
}
