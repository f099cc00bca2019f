// Package gatewise_test holds the repository-wide tests that look at the
// source tree itself rather than at one package.
package gatewise_test

import (
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestPackageDocs checks that every package in the tree has a doc comment
// in one of its non-test files, starting the way `go doc` expects:
// "Package NAME ..." for a library, "Command NAME ..." for a main package
// (NAME being its directory's name), as in tailscale's pkgdoc_test.go.
func TestPackageDocs(t *testing.T) {
	t.Parallel()
	type pkg struct {
		name string   // the package clause of its first file
		docs []string // "file: first line" of each package comment
		ok   bool     // some package comment starts as it should
	}
	pkgs := map[string]*pkg{} // by directory
	ctx := build.Default
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// What the go command ignores too.
			name := d.Name()
			if path != "." && (name == "testdata" || name == "vendor" || name == "node_modules" ||
				strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir, file := filepath.Split(path)
		dir = filepath.Clean(dir)
		// Skip files that build constraints exclude (such as
		// "//go:build ignore" programs).
		if match, err := ctx.MatchFile(dir, file); err != nil {
			return err
		} else if !match {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		p := pkgs[dir]
		if p == nil {
			p = &pkg{name: f.Name.Name}
			pkgs[dir] = p
		}
		if f.Doc == nil {
			return nil
		}
		text := f.Doc.Text()
		first, _, _ := strings.Cut(text, "\n")
		p.docs = append(p.docs, file+": "+first)
		want := "Package " + f.Name.Name + " "
		if f.Name.Name == "main" {
			want = "Command " + filepath.Base(mustAbs(t, dir)) + " "
		}
		if strings.HasPrefix(text, want) {
			p.ok = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dirs := make([]string, 0, len(pkgs))
	for dir := range pkgs {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		p := pkgs[dir]
		want := "Package " + p.name
		if p.name == "main" {
			want = "Command " + filepath.Base(mustAbs(t, dir))
		}
		switch {
		case len(p.docs) == 0:
			t.Errorf("%s: package %s has no package doc comment: add one starting %q to one of its files (doc.go, or the main file)", dir, p.name, want+" ...")
		case !p.ok:
			t.Errorf("%s: package %s's doc comment does not start %q: %q", dir, p.name, want+" ...", p.docs)
		case len(p.docs) > 1:
			t.Logf("%s: more than one file has a package comment (go doc joins them): %q", dir, p.docs)
		}
	}
	if len(pkgs) == 0 {
		t.Error("found no package: is the test running at the repository's root?")
	}
}

// mustAbs returns dir as an absolute path, so that "." has a base name.
func mustAbs(t *testing.T, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
