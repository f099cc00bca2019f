package obs

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// accessLine is one access-log line's fields, in the order they are
// written.
type accessLine struct {
	time                                   time.Time
	requestID, remote, method, host, path  string
	proto                                  string
	status                                 int
	cause, route, pool, upstream           string
	attempts, upstreamStatus               int
	bytesIn, bytesOut                      int64
	duration, dns, connect, tls, firstByte time.Duration
	reused                                 bool
	userAgent                              string
	phase                                  string // "" when the request did not fail
}

// appendJSON appends the line as one JSON object and a newline: the same
// keys, order and value forms as log/slog's JSONHandler wrote them
// ("time", "level", "msg", then the fields; durations as milliseconds
// with microsecond precision), without its generic path (reflection for
// every float, an attribute slice per line).
func (l *accessLine) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = l.time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request"`...)
	b = appendString(b, "request_id", l.requestID)
	b = appendString(b, "remote", l.remote)
	b = appendString(b, "method", l.method)
	b = appendString(b, "host", l.host)
	b = appendString(b, "path", l.path)
	b = appendString(b, "proto", l.proto)
	b = appendInt(b, "status", int64(l.status))
	b = appendString(b, "cause", l.cause)
	b = appendString(b, "route", l.route)
	b = appendString(b, "pool", l.pool)
	b = appendString(b, "upstream", l.upstream)
	b = appendInt(b, "attempts", int64(l.attempts))
	b = appendInt(b, "upstream_status", int64(l.upstreamStatus))
	b = appendInt(b, "bytes_in", l.bytesIn)
	b = appendInt(b, "bytes_out", l.bytesOut)
	b = appendMillis(b, "duration_ms", l.duration)
	b = appendMillis(b, "dns_ms", l.dns)
	b = appendMillis(b, "connect_ms", l.connect)
	b = appendMillis(b, "tls_ms", l.tls)
	b = appendMillis(b, "first_byte_ms", l.firstByte)
	b = append(b, `,"reused":`...)
	b = strconv.AppendBool(b, l.reused)
	b = appendString(b, "user_agent", l.userAgent)
	if l.phase != "" {
		b = appendString(b, "phase", l.phase)
	}
	return append(b, "}\n"...)
}

func appendKey(b []byte, key string) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	return append(b, `":`...)
}

func appendInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(appendKey(b, key), v, 10)
}

// appendMillis writes d in milliseconds with microsecond precision, as
// encoding/json writes such a float64 (shortest form, no exponent): the
// whole milliseconds, then the microseconds as up to three decimals
// without trailing zeros, in integer arithmetic (a float's shortest form
// costs several times more, and is these digits for every such value).
func appendMillis(b []byte, key string, d time.Duration) []byte {
	b = appendKey(b, key)
	us := d.Microseconds()
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	digits := [4]byte{'.', byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := len(digits)
	for digits[n-1] == '0' {
		n--
	}
	return append(b, digits[:n]...)
}

// appendString writes s as a JSON string: quotes, backslashes and control
// bytes escaped, invalid UTF-8 replaced by U+FFFD, and U+2028 and U+2029
// escaped (as encoding/json and log/slog do, so a line is also valid
// JavaScript). Visitors choose the path, Host and User-Agent: nothing they
// send can break a line or forge a field.
func appendString(b []byte, key, s string) []byte {
	b = appendKey(b, key)
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, "89"[r-'\u2028'])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
