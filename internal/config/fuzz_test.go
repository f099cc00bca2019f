package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse, ApplyDefaults or validation
// panic, and that what they report is well formed. Seeded with the
// example and every config under testdata/.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Example()))
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, errs := parse("fuzz.yaml", data)
		for _, e := range errs {
			checkFieldError(t, e)
		}
		if c == nil {
			if len(errs) == 0 {
				t.Fatalf("parse returned no config and no error")
			}
			return
		}
		c.ApplyDefaults()
		// Without file checks: the input names arbitrary paths.
		for _, e := range c.validate(false) {
			checkFieldError(t, e)
		}
		_ = c.Line("pools.app.targets[0].url")
	})
}

// checkFieldError fails t for a problem that does not read as one line
// citing the fuzzed file.
func checkFieldError(t *testing.T, e FieldError) {
	t.Helper()
	if e.File != "fuzz.yaml" || e.Line < 0 || e.Problem == "" {
		t.Fatalf("malformed problem: %#v", e)
	}
	if strings.Contains(e.Problem, "\n") && !strings.Contains(e.Problem, "invalid YAML") {
		t.Errorf("problem spans lines: %q", e.Problem)
	}
}
