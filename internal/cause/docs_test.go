package cause

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the repository's root, relative to this package's directory
// (where go test runs).
const repoRoot = "../.."

// regenerate is the hint printed for a stale or missing page.
const regenerate = "run go generate ./internal/cause"

func TestDocPagesUpToDate(t *testing.T) {
	t.Parallel()
	for _, c := range NewTable().All() {
		t.Run(string(c.ID), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(repoRoot, filepath.FromSlash(c.DocPath()))
			got, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s is missing: %s, then write its hand-written sections", c.DocPath(), regenerate)
			}
			if err != nil {
				t.Fatal(err)
			}
			want, err := RenderDocPage(string(got), c)
			if err != nil {
				t.Fatalf("%v (then %s)", err, regenerate)
			}
			if string(got) != want {
				t.Errorf("%s is stale: %s", c.DocPath(), regenerate)
			}
			page := string(got)
			if strings.Contains(page, docSkeletonMarker) {
				t.Errorf("%s still holds the skeleton's %q: write its hand-written sections", c.DocPath(), docSkeletonMarker)
			}
			hand := page[strings.Index(page, docEndMarker)+len(docEndMarker):]
			for _, h := range []string{"## How gatewise detects it", "## How to reproduce it", "## Fixes"} {
				if !strings.Contains(hand, "\n"+h+"\n") {
					t.Errorf("%s has no section %q after the generated block", c.DocPath(), h)
				}
			}
		})
	}
}

func TestDocIndexUpToDate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(repoRoot, "docs", "causes", "README.md")
	got, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("docs/causes/README.md is missing: %s", regenerate)
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := RenderIndex(NewTable()); string(got) != want {
		t.Errorf("docs/causes/README.md is stale: %s", regenerate)
	}
}

func TestNoDocPageWithoutCause(t *testing.T) {
	t.Parallel()
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "causes", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	tab := NewTable()
	for _, p := range pages {
		name := filepath.Base(p)
		if name == "README.md" {
			continue
		}
		if _, ok := tab.Lookup(ID(strings.TrimSuffix(name, ".md"))); !ok {
			t.Errorf("docs/causes/%s is the page of no cause in the table: delete it, or restore the cause", name)
		}
	}
}

func TestRenderDocPage(t *testing.T) {
	t.Parallel()
	c := Cause{
		ID: "example_cause", Title: "Example", Status: 502, ProxyStatusError: "connection_refused", Hop: HopUpstream,
		Visitor: "Visitor text.", Owner: "Owner text.",
		Signatures: []Signature{{Server: "nginx", Pattern: `a|b`}},
	}
	block := RenderDocBlock(c)
	hand := "\n\n## How gatewise detects it\n\nWritten by hand.\n"
	tests := []struct {
		desc    string
		page    string
		want    string
		wantErr string
	}{
		{
			desc: "a new page gets the heading, the block and the skeleton",
			page: "",
			want: "# example_cause: Example\n\n" + block + "\n" + docSkeleton,
		},
		{
			desc: "an up-to-date page is unchanged",
			page: "# example_cause: Example\n\n" + block + hand,
			want: "# example_cause: Example\n\n" + block + hand,
		},
		{
			desc: "a stale block and heading are rewritten, the hand-written text kept",
			page: "# example_cause: Old title\n\n" + docBeginMarker + "\nold\n" + docEndMarker + hand,
			want: "# example_cause: Example\n\n" + block + hand,
		},
		{
			desc: "a page without a heading gets one",
			page: docBeginMarker + "\n" + docEndMarker + hand,
			want: "# example_cause: Example\n\n" + block + hand,
		},
		{
			desc:    "a page without markers is an error",
			page:    "# example_cause: Example\n\nno block\n",
			wantErr: "no generated block",
		},
		{
			desc:    "markers out of order are an error",
			page:    "# x\n" + docEndMarker + "\n" + docBeginMarker + "\n",
			wantErr: "comes before",
		},
		{
			desc:    "two blocks are an error",
			page:    "# x\n" + docBeginMarker + docEndMarker + docBeginMarker + docEndMarker,
			wantErr: "more than one generated block",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got, err := RenderDocPage(tt.page, c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RenderDocPage() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("RenderDocPage() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("RenderDocPage() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestRenderDocBlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		c    Cause
		want []string // substrings of the block
	}{
		{
			desc: "a status the gateway answers, with its reason phrase",
			c:    Cause{ID: "a", Status: 504, ProxyStatusError: "connection_timeout", Hop: HopNetwork, Retryable: true},
			want: []string{"| Status the gateway answers | 504 Gateway Timeout |", "| Proxy-Status error type | `connection_timeout` |", "| Hop at fault | network |", "| Retryable | yes"},
		},
		{
			desc: "no status: the upstream's response passes through",
			c:    Cause{ID: "b", Hop: HopUpstream},
			want: []string{"| Status the gateway answers | none: the upstream's own response is passed through |", "| Proxy-Status error type | none |", "| Retryable | no"},
		},
		{
			desc: "a status with no reason phrase is a log code",
			c:    Cause{ID: "c", Status: 499, Hop: HopVisitor},
			want: []string{"| Status the gateway answers | 499 (a log code"},
		},
		{
			desc: "the sentences and the signatures",
			c: Cause{ID: "d", Visitor: "The visitor's sentence.", Owner: "The owner's sentence.",
				Signatures: []Signature{{Server: "nginx", Pattern: "x|y"}, {Server: "caddy", Pattern: "a`b"}}},
			want: []string{"## What the visitor sees\n\nThe visitor's sentence.\n", "## What to do\n\nThe owner's sentence.\n", "- nginx: `x|y`\n", "- caddy: ``a`b``\n"},
		},
		{
			desc: "no signatures",
			c:    Cause{ID: "e"},
			want: []string{"No other server logs this cause"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			got := RenderDocBlock(tt.c)
			if !strings.HasPrefix(got, docBeginMarker+"\n") || !strings.HasSuffix(got, "\n"+docEndMarker) {
				t.Errorf("RenderDocBlock() does not run from %q to %q:\n%s", docBeginMarker, docEndMarker, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("RenderDocBlock() =\n%s\nwant it to contain %q", got, w)
				}
			}
		})
	}
}

func TestCodeSpan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, in, want string
	}{
		{"plain", `a\(b\)`, "`a\\(b\\)`"},
		{"a trailing space is kept as is", "failed ", "`failed `"},
		{"a backtick inside needs a longer fence", "a`b", "``a`b``"},
		{"a backtick at an end needs padding", "`a", "`` `a ``"},
		{"spaces at both ends need one more each", " a ", "`  a  `"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := codeSpan(tt.in); got != tt.want {
				t.Errorf("codeSpan(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRenderIndex(t *testing.T) {
	t.Parallel()
	tab := NewTable()
	got := RenderIndex(tab)
	for _, c := range tab.All() {
		link := "[" + c.Title + "](" + string(c.ID) + ".md)"
		if !strings.Contains(got, "| `"+string(c.ID)+"` |") || !strings.Contains(got, link) {
			t.Errorf("RenderIndex() has no row for %s with the link %s", c.ID, link)
		}
	}
}

// TestReadmeCausesUpToDate fails when README.md's cause table is stale.
func TestReadmeCausesUpToDate(t *testing.T) {
	t.Parallel()
	old, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := SpliceReadme(string(old), NewTable())
	if err != nil {
		t.Fatal(err)
	}
	if string(old) != want {
		t.Errorf("README.md's cause table is stale: run go generate ./internal/cause")
	}
}
