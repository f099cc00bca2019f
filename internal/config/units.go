package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a Go duration string such as "5s", "1m30s" or
// "250ms"; a bare "0" is zero. A number without a unit other than 0 is
// refused, so "30" is not silently read as 30 nanoseconds.
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	d, err := time.ParseDuration(t)
	if err == nil {
		return Duration{d}, nil
	}
	if isDecimal(t) {
		return Duration{}, fmt.Errorf("want a duration like 5s, got %q (missing unit: %ss?)", s, t)
	}
	if strings.HasSuffix(t, "d") {
		return Duration{}, fmt.Errorf("want a duration like 5s, got %q (days are not a unit: use hours, such as 24h)", s)
	}
	return Duration{}, fmt.Errorf("want a duration like 5s, got %q", s)
}

// isDecimal reports whether s is a plain decimal number such as "30",
// "-5" or "1.5".
func isDecimal(s string) bool {
	s = strings.TrimLeft(s, "+-")
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r != '.':
			return false
		}
	}
	return digits > 0
}

// MarshalText writes the duration as a Go duration string, such as "1m30s".
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// UnmarshalText parses a Go duration string with ParseDuration; it lets
// a Duration be a flag (flag.TextVar) or a JSON string.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// byteUnits returns the size units ParseByteSize knows, keyed by their
// lower-case spelling. Built on each call: it is a constant table.
func byteUnits() map[string]int64 {
	return map[string]int64{
		"":    1,
		"b":   1,
		"kb":  1000,
		"mb":  1000 * 1000,
		"gb":  1000 * 1000 * 1000,
		"tb":  1000 * 1000 * 1000 * 1000,
		"kib": 1 << 10,
		"mib": 1 << 20,
		"gib": 1 << 30,
		"tib": 1 << 40,
	}
}

// ParseByteSize parses a size: a whole number of bytes with an optional
// unit, binary (KiB, MiB, GiB, TiB: powers of 1024) or decimal (KB, MB, GB,
// TB: powers of 1000), in any letter case, such as "512", "64KiB", "1MiB",
// "2MB" or "1 GiB". Negative sizes, fractions, sizes that do not fit in an
// int64 and the ambiguous units K, M, G are refused.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	switch {
	case strings.HasPrefix(t, "-"):
		return 0, fmt.Errorf("want a size like 64KiB, got %q (a size cannot be negative)", s)
	case num == "":
		return 0, fmt.Errorf("want a size like 64KiB, got %q", s)
	case strings.HasPrefix(unit, "."):
		return 0, fmt.Errorf("want a size like 64KiB, got %q (use a whole number of a smaller unit, such as 1536KiB)", s)
	}
	mult, ok := byteUnits()[unit]
	if !ok {
		switch unit {
		case "k", "m", "g", "t":
			return 0, fmt.Errorf("want a size like 64KiB, got %q (unit %q is ambiguous: write %siB for powers of 1024 or %sB for powers of 1000)",
				s, t[i:], strings.ToUpper(unit), strings.ToUpper(unit))
		}
		return 0, fmt.Errorf("want a size like 64KiB, got %q (units: B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("want a size like 64KiB, got %q (too large)", s)
	}
	return ByteSize(n * mult), nil
}

// String writes the size with the largest binary unit that divides it
// exactly: 65536 is "64KiB", 1000 is "1000".
func (b ByteSize) String() string {
	n := int64(b)
	if n != 0 {
		for _, u := range []struct {
			name string
			size int64
		}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
			if n%u.size == 0 {
				return strconv.FormatInt(n/u.size, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// MarshalText writes the size as String does.
func (b ByteSize) MarshalText() ([]byte, error) {
	return []byte(b.String()), nil
}

// UnmarshalText parses a size with ParseByteSize; it lets a ByteSize be a
// flag (flag.TextVar) or a JSON string.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseRate parses a rate such as "50/s", "600/m" or "10000/h" (also
// "50/second", "1/minute", "2/hour") and returns it in requests per second.
func ParseRate(s string) (float64, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("want a rate such as 50/s, 600/m or 10000/h, got %q", s)
	}
	count, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || count <= 0 || count > 1e9 || count != count {
		return 0, fmt.Errorf("want a positive count before the /, such as 50/s, got %q", s)
	}
	var per float64
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "s", "sec", "second":
		per = 1
	case "m", "min", "minute":
		per = 60
	case "h", "hour":
		per = 3600
	default:
		return 0, fmt.Errorf("want a rate per s, m or h, such as 50/s, got %q", s)
	}
	return count / per, nil
}
