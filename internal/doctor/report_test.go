package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
// The local time zone's name and offset are replaced by ZONE, so the
// files do not depend on the machine's zone.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	got = bytes.ReplaceAll(got, []byte(fixtureNow.Format(" MST")), []byte(" ZONE"))
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update to accept it); got:\n%s", path, got)
	}
}

// incident runs every check on the host-incident fixture: a host short of
// memory and disk, php-fpm OOM-killed two minutes after it was upgraded,
// then nginx's connections refused.
func incident(t *testing.T) *Result {
	root := fixture(t, "host-incident")
	return Run(context.Background(), Options{Root: root, Now: fixtureNow, Statfs: fakeDisk(20<<30, 300<<20), Parallel: 2})
}

func TestGoldenSupportReport(t *testing.T) {
	res := incident(t)
	var b bytes.Buffer
	if err := res.WriteReport(&b, ReportInput{Problem: "Since about 23:10 the shop answers 502 Bad Gateway on every page.", Tried: []string{"restarted nginx", "set DB password=hunter2 again in wp-config.php"}, Version: "v0.0.0-test"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "incident.report.md.golden", b.Bytes())
	report := b.String()
	for _, secret := range []string{"S3cretPass", "hunter2", "abcd1234efgh"} {
		if strings.Contains(report, secret) {
			t.Errorf("the report holds the secret %q", secret)
		}
	}
}

func TestIncidentRanking(t *testing.T) {
	res := incident(t)
	if res.Worst() != StatusFail {
		t.Fatalf("worst: got %s, want fail", res.Worst())
	}
	// The chain in the logs (OOM kill, then refused connections) is the
	// most likely cause; then the OOM kill itself.
	first := res.Findings[0]
	if first.Check != "logs" || !strings.HasPrefix(first.Cause, "oom_kill") || !strings.Contains(first.Summary, "oom_kill (php-fpm8.2)") {
		t.Errorf("first finding: got %s %q %q, want the logs' chain from the OOM kill", first.Check, first.Cause, first.Summary)
	}
	if res.Findings[1].Check != "oom" {
		t.Errorf("second finding: got %s, want oom", res.Findings[1].Check)
	}
	seen := map[Status]bool{}
	for i, f := range res.Findings {
		if f.Rank != i+1 {
			t.Errorf("finding %d has rank %d", i, f.Rank)
		}
		for s := range seen {
			if s.severity() < f.Status.severity() {
				t.Errorf("finding %d (%s) after a %s one", f.Rank, f.Status, s)
			}
		}
		seen[f.Status] = true
	}
	var change *Finding
	for i := range res.Findings {
		if res.Findings[i].Check == "changes" {
			change = &res.Findings[i]
		}
	}
	if change == nil || change.Status != StatusWarn || !strings.Contains(change.Summary, "errors began 2 minutes after php8.2-fpm was upgraded") {
		t.Errorf("changes: got %+v", change)
	}
	var b bytes.Buffer
	if err := res.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"check", "status", "cause", "evidence", "fix"} {
		if _, ok := doc.Findings[0][key]; !ok {
			t.Errorf("JSON finding lacks %q: %v", key, doc.Findings[0])
		}
	}
	if strings.Contains(b.String(), "S3cretPass") {
		t.Error("the JSON holds the DSN's password")
	}
}
