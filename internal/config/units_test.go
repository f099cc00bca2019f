package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, in string
		want     time.Duration
		wantErr  string // a substring of the error; "" for none
	}{
		{"seconds", "5s", 5 * time.Second, ""},
		{"compound", "1m30s", 90 * time.Second, ""},
		{"milliseconds", "250ms", 250 * time.Millisecond, ""},
		{"bare zero", "0", 0, ""},
		{"negative parses (Validate refuses it)", "-5s", -5 * time.Second, ""},
		{"surrounding spaces", " 5s ", 5 * time.Second, ""},
		{"word", "abc", 0, `want a duration like 5s, got "abc"`},
		{"number without unit", "30", 0, `missing unit: 30s?`},
		{"fraction without unit", "1.5", 0, `missing unit: 1.5s?`},
		{"days", "1d", 0, `days are not a unit`},
		{"empty", "", 0, `want a duration like 5s, got ""`},
		{"NaN is no number", "NaN", 0, `want a duration like 5s, got "NaN"`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDuration(tc.in)
			checkErr(t, tc.in, err, tc.wantErr)
			if err == nil && got.Duration != tc.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tc.in, got.Duration, tc.want)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, in string
		want     ByteSize
		wantErr  string
	}{
		{"bare bytes", "512", 512, ""},
		{"zero", "0", 0, ""},
		{"B unit", "100B", 100, ""},
		{"KiB", "64KiB", 64 << 10, ""},
		{"MiB", "1MiB", 1 << 20, ""},
		{"GiB", "1GiB", 1 << 30, ""},
		{"TiB", "2TiB", 2 << 40, ""},
		{"decimal KB", "2KB", 2000, ""},
		{"decimal MB", "2MB", 2_000_000, ""},
		{"decimal GB", "3GB", 3_000_000_000, ""},
		{"unit case ignored", "64kib", 64 << 10, ""},
		{"unit upper case", "1MIB", 1 << 20, ""},
		{"space before unit", "64 KiB", 64 << 10, ""},
		{"largest int64", "9223372036854775807", 1<<63 - 1, ""},
		{"8EiB overflows", "8388608TiB", 0, "too large"},
		{"digits overflow", "99999999999999999999", 0, "too large"},
		{"negative", "-1KiB", 0, "cannot be negative"},
		{"fraction", "1.5MiB", 0, "whole number"},
		{"ambiguous k", "64k", 0, `unit "k" is ambiguous`},
		{"ambiguous M", "1M", 0, `unit "M" is ambiguous`},
		{"unknown unit", "5 bytes", 0, "units: B, KiB"},
		{"no number", "KiB", 0, `want a size like 64KiB, got "KiB"`},
		{"empty", "", 0, `want a size like 64KiB, got ""`},
		{"plus sign", "+5", 0, "want a size like 64KiB"},
		{"hex", "0x10", 0, "units:"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := ParseByteSize(tc.in)
			checkErr(t, tc.in, err, tc.wantErr)
			if err == nil && got != tc.want {
				t.Errorf("ParseByteSize(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		in   ByteSize
		want string
	}{
		{"zero", 0, "0"},
		{"not a multiple of 1024", 1000, "1000"},
		{"KiB", 64 << 10, "64KiB"},
		{"MiB", 1 << 20, "1MiB"},
		{"MiB beats KiB", 3 << 20, "3MiB"},
		{"GiB", 2 << 30, "2GiB"},
		{"TiB", 5 << 40, "5TiB"},
		{"1536KiB", 1536 << 10, "1536KiB"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := tc.in.String(); got != tc.want {
				t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
			}
			back, err := ParseByteSize(tc.in.String())
			if err != nil || back != tc.in {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in.String(), back, err, tc.in)
			}
		})
	}
}

func TestTextRoundTrip(t *testing.T) {
	t.Parallel()
	d := Duration{90 * time.Second}
	text, _ := d.MarshalText()
	var d2 Duration
	if err := d2.UnmarshalText(text); err != nil || d2 != d {
		t.Errorf("Duration round trip via %q: got %v, %v; want %v", text, d2, err, d)
	}
	if err := d2.UnmarshalText([]byte("soon")); err == nil {
		t.Errorf("Duration.UnmarshalText(%q): got no error, want one", "soon")
	}
	b := ByteSize(64 << 10)
	text, _ = b.MarshalText()
	var b2 ByteSize
	if err := b2.UnmarshalText(text); err != nil || b2 != b {
		t.Errorf("ByteSize round trip via %q: got %v, %v; want %v", text, b2, err, b)
	}
	if err := b2.UnmarshalText([]byte("big")); err == nil {
		t.Errorf("ByteSize.UnmarshalText(%q): got no error, want one", "big")
	}
}

// checkErr fails t unless err matches wantErr: nil for "", else an error
// containing wantErr.
func checkErr(t *testing.T, in string, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("%q: got error %v, want none", in, err)
	case wantErr != "" && err == nil:
		t.Errorf("%q: got no error, want one containing %q", in, wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Errorf("%q: got error %q, want one containing %q", in, err, wantErr)
	}
}
