// Command gendocs writes the generated parts of gatewise's cause pages from
// the cause table: the heading and the block between the generated:begin
// and generated:end markers of each docs/causes/ID.md (creating a page with
// a skeleton of its hand-written sections when it is missing), and the index
// docs/causes/README.md. The hand-written sections of a page are kept as
// they are.
//
// It runs from `go generate ./internal/cause`. Usage:
//
//	gendocs [-root DIR]
//
// -root is the repository's root; by default the nearest directory above
// the working directory that holds go.mod.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gatewise/gatewise/internal/cause"
)

func main() {
	root := flag.String("root", "", "the repository's root (default: the nearest directory with go.mod)")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	if root == "" {
		var err error
		if root, err = findRoot(); err != nil {
			return err
		}
	}
	t := cause.NewTable()
	if err := os.MkdirAll(filepath.Join(root, "docs", "causes"), 0o755); err != nil {
		return err
	}
	known := map[string]bool{"README.md": true}
	for _, c := range t.All() {
		path := filepath.Join(root, filepath.FromSlash(c.DocPath()))
		known[filepath.Base(path)] = true
		old, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		page, err := cause.RenderDocPage(string(old), c)
		if err != nil {
			return err
		}
		if err := writeIfChanged(path, old, page); err != nil {
			return err
		}
		if old == nil {
			fmt.Fprintf(os.Stderr, "gendocs: created %s: write its hand-written sections\n", c.DocPath())
		}
	}
	index := filepath.Join(root, "docs", "causes", "README.md")
	old, err := os.ReadFile(index)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := writeIfChanged(index, old, cause.RenderIndex(t)); err != nil {
		return err
	}
	readme := filepath.Join(root, "README.md")
	oldReadme, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	newReadme, err := cause.SpliceReadme(string(oldReadme), t)
	if err != nil {
		return err
	}
	if err := writeIfChanged(readme, oldReadme, newReadme); err != nil {
		return err
	}
	// A page whose cause left the table is not deleted (it holds
	// hand-written text), but it is reported.
	pages, err := filepath.Glob(filepath.Join(root, "docs", "causes", "*.md"))
	if err != nil {
		return err
	}
	var orphans []string
	for _, p := range pages {
		if !known[filepath.Base(p)] {
			orphans = append(orphans, filepath.Base(p))
		}
	}
	if len(orphans) > 0 {
		sort.Strings(orphans)
		return fmt.Errorf("docs/causes has pages for no cause in the table: %s (delete them, or restore the causes)", strings.Join(orphans, ", "))
	}
	return nil
}

// writeIfChanged writes content to path unless it already holds it, so an
// up-to-date tree is left untouched.
func writeIfChanged(path string, old []byte, content string) error {
	if old != nil && string(old) == content {
		return nil
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// findRoot returns the nearest directory at or above the working directory
// that holds go.mod.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: pass -root")
		}
		dir = parent
	}
}
