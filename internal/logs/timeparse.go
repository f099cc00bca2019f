package logs

import (
	"bytes"
	"strconv"
	"time"
)

// The time formats of the logs, parsed by hand: time.Parse costs more than
// the rest of a line's work.

// digits returns the value of b[i:i+n] when it is all ASCII digits.
func digits(b []byte, i, n int) (int, bool) {
	if i < 0 || i+n > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[i : i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// month returns the month named by the three letters at b[i:].
func month(b []byte, i int) (time.Month, bool) {
	if i < 0 || i+3 > len(b) {
		return 0, false
	}
	switch string(b[i : i+3]) {
	case "Jan":
		return time.January, true
	case "Feb":
		return time.February, true
	case "Mar":
		return time.March, true
	case "Apr":
		return time.April, true
	case "May":
		return time.May, true
	case "Jun":
		return time.June, true
	case "Jul":
		return time.July, true
	case "Aug":
		return time.August, true
	case "Sep":
		return time.September, true
	case "Oct":
		return time.October, true
	case "Nov":
		return time.November, true
	case "Dec":
		return time.December, true
	}
	return 0, false
}

// clock parses "15:04:05" at b[i:].
func clock(b []byte, i int) (h, m, s int, ok bool) {
	if i+8 > len(b) || b[i+2] != ':' || b[i+5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := digits(b, i, 2)
	m, ok2 := digits(b, i+3, 2)
	s, ok3 := digits(b, i+6, 2)
	return h, m, s, ok1 && ok2 && ok3 && h < 24 && m < 60 && s < 61
}

// fraction parses ".123456" at b[i:] into nanoseconds and the bytes used.
func fraction(b []byte, i int) (int, int) {
	if i >= len(b) || b[i] != '.' {
		return 0, 0
	}
	ns, n := 0, 0
	for j := i + 1; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		if n < 9 {
			ns = ns*10 + int(b[j]-'0')
		}
		n++
	}
	for k := n; k < 9; k++ {
		ns *= 10
	}
	return ns, n + 1
}

func mkTime(y int, mo time.Month, d, h, mi, s, ns int, loc *time.Location) (time.Time, bool) {
	if d < 1 || d > 31 || mo < 1 {
		return time.Time{}, false
	}
	return time.Date(y, mo, d, h, mi, s, ns, loc), true
}

// timeNginxError parses "2006/01/02 15:04:05" (local time) at b[0:].
func timeNginxError(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) < 19 || b[4] != '/' || b[7] != '/' || b[10] != ' ' {
		return time.Time{}, false
	}
	y, ok1 := digits(b, 0, 4)
	mo, ok2 := digits(b, 5, 2)
	d, ok3 := digits(b, 8, 2)
	h, mi, s, ok4 := clock(b, 11)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, false
	}
	return mkTime(y, time.Month(mo), d, h, mi, s, 0, loc)
}

// timeCLF parses "02/Jan/2006:15:04:05 -0700" (also with ".000" after the
// seconds, as HAProxy writes, and then without a zone) at b[0:].
func timeCLF(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) < 20 || b[2] != '/' || b[6] != '/' || b[11] != ':' {
		return time.Time{}, false
	}
	d, ok1 := digits(b, 0, 2)
	mo, ok2 := month(b, 3)
	y, ok3 := digits(b, 7, 4)
	h, mi, s, ok4 := clock(b, 12)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, false
	}
	ns, n := fraction(b, 20)
	i := 20 + n
	if i+6 <= len(b) && b[i] == ' ' && (b[i+1] == '+' || b[i+1] == '-') {
		if off, ok := digits(b, i+2, 4); ok {
			secs := (off/100*60 + off%100) * 60
			if b[i+1] == '-' {
				secs = -secs
			}
			loc = fixedZone(secs)
		}
	}
	return mkTime(y, mo, d, h, mi, s, ns, loc)
}

// fixedZone returns UTC for offset 0 and a fixed zone otherwise.
func fixedZone(secs int) *time.Location {
	if secs == 0 {
		return time.UTC
	}
	return time.FixedZone("", secs)
}

// timeCtime parses "Mon Jan 02 15:04:05.000000 2006" (Apache 2.4, the
// fraction optional as in Apache 2.2 and dmesg -T) at b[0:], with a space
// or a zero padding the day. It returns the bytes used.
func timeCtime(b []byte, loc *time.Location) (time.Time, int, bool) {
	if len(b) < 24 || b[3] != ' ' || b[7] != ' ' {
		return time.Time{}, 0, false
	}
	mo, ok1 := month(b, 4)
	dd := b[8:10]
	d := 0
	switch {
	case dd[0] == ' ' && dd[1] >= '0' && dd[1] <= '9':
		d = int(dd[1] - '0')
	default:
		var ok bool
		if d, ok = digits(dd, 0, 2); !ok {
			return time.Time{}, 0, false
		}
	}
	h, mi, s, ok2 := clock(b, 11)
	if !ok1 || !ok2 {
		return time.Time{}, 0, false
	}
	ns, n := fraction(b, 19)
	i := 19 + n
	if i+5 > len(b) || b[i] != ' ' {
		return time.Time{}, 0, false
	}
	y, ok3 := digits(b, i+1, 4)
	if !ok3 {
		return time.Time{}, 0, false
	}
	t, ok := mkTime(y, mo, d, h, mi, s, ns, loc)
	return t, i + 5, ok
}

// timeFPM parses "02-Jan-2006 15:04:05" (PHP-FPM, PHP) at b[0:], with an
// optional fraction; it returns the bytes used.
func timeFPM(b []byte, loc *time.Location) (time.Time, int, bool) {
	if len(b) < 20 || b[2] != '-' || b[6] != '-' || b[11] != ' ' {
		return time.Time{}, 0, false
	}
	d, ok1 := digits(b, 0, 2)
	mo, ok2 := month(b, 3)
	y, ok3 := digits(b, 7, 4)
	h, mi, s, ok4 := clock(b, 12)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, 0, false
	}
	ns, n := fraction(b, 20)
	t, ok := mkTime(y, mo, d, h, mi, s, ns, loc)
	return t, 20 + n, ok
}

// timeSyslog parses "Jan  2 15:04:05" (BSD syslog, journalctl's short
// format) at b[0:]. The line has no year: it is the year of ref, or the
// year before when that would put the line more than a day after ref (a
// log of December read in January).
func timeSyslog(b []byte, ref time.Time, loc *time.Location) (time.Time, bool) {
	if len(b) < 15 || b[3] != ' ' || b[6] != ' ' {
		return time.Time{}, false
	}
	mo, ok1 := month(b, 0)
	d := 0
	if b[4] == ' ' {
		v, ok := digits(b, 5, 1)
		if !ok {
			return time.Time{}, false
		}
		d = v
	} else {
		v, ok := digits(b, 4, 2)
		if !ok {
			return time.Time{}, false
		}
		d = v
	}
	h, mi, s, ok2 := clock(b, 7)
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	ref = ref.In(loc)
	t, ok := mkTime(ref.Year(), mo, d, h, mi, s, 0, loc)
	if ok && t.After(ref.Add(24*time.Hour)) {
		t = t.AddDate(-1, 0, 0)
	}
	return t, ok
}

// timeISO parses an RFC 3339 time at b[0:] ("2006-01-02T15:04:05.999Z",
// "+07:00" or "+0700" zones, and "2006-01-02 15:04:05" with a space and no
// zone, as MariaDB writes, in loc). It returns the bytes used.
func timeISO(b []byte, loc *time.Location) (time.Time, int, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') {
		return time.Time{}, 0, false
	}
	y, ok1 := digits(b, 0, 4)
	mo, ok2 := digits(b, 5, 2)
	d, ok3 := digits(b, 8, 2)
	h, mi, s, ok4 := clock(b, 11)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, 0, false
	}
	ns, n := fraction(b, 19)
	i := 19 + n
	if i < len(b) {
		switch b[i] {
		case 'Z':
			loc = time.UTC
			i++
		case '+', '-':
			hh, okh := digits(b, i+1, 2)
			j := i + 3
			if j < len(b) && b[j] == ':' {
				j++
			}
			mm, okm := digits(b, j, 2)
			if okh && okm {
				secs := (hh*60 + mm) * 60
				if b[i] == '-' {
					secs = -secs
				}
				loc = fixedZone(secs)
				i = j + 2
			}
		}
	}
	t, ok := mkTime(y, time.Month(mo), d, h, mi, s, ns, loc)
	return t, i, ok
}

// timeUnixFloat parses seconds since the epoch with a fraction, as Caddy
// writes "ts".
func timeUnixFloat(b []byte) (time.Time, bool) {
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(b)), 64)
	if err != nil || f <= 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
}
