package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with the output of the code")

// goldenCases lists the configs under testdata/ and what each one tests.
// Each FILE.yaml has its expected LoadValid output in FILE.golden: "ok",
// or one error per line.
func goldenCases() []struct{ file, desc string } {
	return []struct{ file, desc string }{
		{"good", "every section set to a valid value, TLS and templates from testdata"},
		{"empty", "an empty file"},
		{"comments_only", "a file holding only comments"},
		{"syntax", "a tab in the indentation: a YAML syntax error with its line"},
		{"multi_doc", "two YAML documents"},
		{"top_level_list", "a list instead of a mapping at the top level"},
		{"unknown_keys", "unknown keys at every level, with and without a close known key; x- keys ignored"},
		{"wrong_types", "values of the wrong type: list/mapping/scalar, duration, size, bool, integer; every one reported"},
		{"duplicate_keys", "a key written twice in a struct, in the pools map and at the top level"},
		{"sizes", "sizes that do not parse (negative, overflow), negative and zero durations"},
		{"overload", "client-abuse limits, rate limits, concurrency limits and route priorities out of range"},
		{"resilience", "selection policy, hash key, backups only, health checks, outlier ejection and retries out of range"},
		{"limits", "header limits too small and too large, timeouts zero or negative, shutdown too long"},
		{"shutdown_zero", "shutdown_timeout written as 0, header limits at their exact bounds"},
		{"nothing", "no listeners and no pools"},
		{"listeners", "bad listener addresses and ports, clashes, TLS cert/key missing, unreadable or mismatched"},
		{"admin_remote", "admin on every address without allow_remote"},
		{"admin_bad", "admin address without a port, access_log explicitly empty"},
		{"admin_empty", "admin address explicitly empty (allow_remote set), access_log a directory"},
		{"admin_port_clash", "admin on the port of a listener on every address"},
		{"targets", "target URLs: scheme, path, query, userinfo, host, port, weight, duplicates; pools with no targets"},
		{"timeouts", "pool timeouts zero or negative, max_idle_per_target negative; explicit zeros that are allowed"},
		{"routes", "routes: unknown or missing pool, bad paths and hosts, duplicates, shadowed routes, duplicate names"},
		{"routes_catchall", "a catch-all route first hides the routes after it"},
		{"no_routes_many_pools", "several pools and no routes"},
		{"cidrs", "CIDRs: bare addresses, host bits set, names, bad prefix lengths"},
		{"files", "files that do not exist: access log directory, templates, CA; a CA without PEM; ca with insecure_skip_verify"},
		{"files_not_dir", "a file where a directory is wanted"},
		{"templates_empty", "a templates directory with none of the template files"},
		{"fastcgi", "fastcgi targets: no root, mixed with http, on an http pool, bad URLs, duplicate sockets, every fastcgi key out of range, options that have no effect"},
		{"aliases", "anchors, aliases and merge keys: values merged, an explicit weight 0 through an alias, a self-referencing alias"},
	}
}

// validateOutput returns what LoadValid says about the config at path:
// "ok" or its errors, one per line, with a final newline.
func validateOutput(t *testing.T, path string) string {
	t.Helper()
	_, err := LoadValid(path)
	if err == nil {
		return "ok\n"
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("LoadValid(%q) = %v (%T), want an *Errors", path, err, err)
	}
	return err.Error() + "\n"
}

func TestGolden(t *testing.T) {
	t.Parallel()
	cases := goldenCases()
	yamls, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, y := range yamls {
		name := strings.TrimSuffix(filepath.Base(y), ".yaml")
		if !slices.ContainsFunc(cases, func(c struct{ file, desc string }) bool { return c.file == name }) {
			t.Errorf("%s has no golden case: add it to goldenCases", y)
		}
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", tc.file+".yaml")
			golden := filepath.Join("testdata", tc.file+".golden")
			got := validateOutput(t, path)
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%s (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s: LoadValid(%q):\ngot:\n%s\nwant:\n%s", tc.desc, path, got, want)
			}
		})
	}
}
