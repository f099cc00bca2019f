package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogsCommand(t *testing.T) {
	t.Parallel()
	td := filepath.Join("..", "logs", "testdata")
	nginx := filepath.Join(td, "nginx_error.log")
	kern := filepath.Join(td, "kern.log")
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		desc     string
		args     []string
		stdin    string
		wantErr  bool
		wantOut  []string
		wantErrs []string
	}{
		{desc: "text report", args: []string{nginx, kern}, wantOut: []string{"Causes, most frequent first:", "connection_terminated", "Likely chains:", "oom_kill (php-fpm8.2)"}},
		{desc: "stdin", args: []string{"-"}, stdin: "2026/11/23 23:10:05 [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: _, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:9/\"\n", wantOut: []string{"connection_refused", "-: nginx-error, 1 lines, 1 events"}},
		{desc: "since excludes everything", args: []string{"--since", "30m", nginx}, wantOut: []string{"No failures found"}},
		{desc: "since includes everything", args: []string{"--since", "2h", nginx}, wantOut: []string{"connection_refused"}},
		{desc: "until before the log", args: []string{"--until", "2026-11-23 23:00", nginx}, wantOut: []string{"No failures found"}},
		{desc: "missing file fails before reading", args: []string{nginx, "/nonexistent/a.log", "/nonexistent/b.log"}, wantErr: true, wantErrs: []string{"gatewise logs: cannot read log /nonexistent/a.log: no such file or directory", "/nonexistent/b.log"}},
		{desc: "no file", args: nil, wantErr: true, wantErrs: []string{"missing FILE"}},
		{desc: "bad since", args: []string{"--since", "yesterday", nginx}, wantErr: true, wantErrs: []string{"--since: \"yesterday\" is neither a duration"}},
		{desc: "since after until", args: []string{"--since", "1h", "--until", "2h", nginx}, wantErr: true, wantErrs: []string{"is not before --until"}},
		{desc: "bad format", args: []string{"--format", "iis", nginx}, wantErr: true, wantErrs: []string{"unknown format \"iis\""}},
		{desc: "follow and json", args: []string{"--follow", "--json", nginx}, wantErr: true, wantErrs: []string{"excludes --json"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := logsCommand(context.Background(), tc.args, strings.NewReader(tc.stdin), now, &out, &errOut)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v; stderr %s", err, tc.wantErr, errOut.String())
			}
			all := errOut.String()
			if err != nil {
				all += err.Error()
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.wantErrs {
				if !strings.Contains(all, w) {
					t.Errorf("errors lack %q: %s", w, all)
				}
			}
			if tc.wantErr && out.Len() > 0 {
				t.Errorf("stdout not empty on error: %s", out.String())
			}
		})
	}
}

func TestLogsJSON(t *testing.T) {
	t.Parallel()
	td := filepath.Join("..", "logs", "testdata")
	var out, errOut bytes.Buffer
	err := logsCommand(context.Background(), []string{"--json", filepath.Join(td, "nginx_error.log"), filepath.Join(td, "kern.log")}, strings.NewReader(""), time.Now(), &out, &errOut)
	if err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	var doc struct {
		Causes []struct {
			Cause     string    `json:"cause"`
			Count     int       `json:"count"`
			FirstSeen time.Time `json:"first_seen"`
			LastSeen  time.Time `json:"last_seen"`
			Fix       string    `json:"fix"`
		} `json:"causes"`
		Events          []map[string]any `json:"events"`
		Chains          []map[string]any `json:"chains"`
		UnreadableLines map[string]int   `json:"unreadable_lines"`
	}
	dec := json.NewDecoder(&out)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Errorf("more than one JSON document")
	}
	if len(doc.Causes) == 0 || doc.Causes[0].Fix == "" || doc.Causes[0].FirstSeen.IsZero() {
		t.Errorf("causes = %+v", doc.Causes)
	}
	if len(doc.Events) != 20 || len(doc.Chains) != 1 {
		t.Errorf("%d events and %d chains, want 20 and 1", len(doc.Events), len(doc.Chains))
	}
	if doc.UnreadableLines[filepath.Join(td, "nginx_error.log")] != 1 {
		t.Errorf("unreadable_lines = %v", doc.UnreadableLines)
	}
}

// TestLogsFollow appends lines to a file, then rotates it, and sees the
// events of both as they come.
func TestLogsFollow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := filepath.Join(dir, "error.log")
	first := "2026/11/23 23:10:00 [notice] 1#1: start worker processes\n"
	if err := os.WriteFile(name, []byte(first), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- logsCommand(ctx, []string{"--follow", name}, strings.NewReader(""), time.Now(), out, out)
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q after 10s; output:\n%s", want, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(400 * time.Millisecond) // let it open the file and seek to its end
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("2026/11/23 23:10:05 [error] 1#1: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: _, request: \"GET /a HTTP/1.1\", upstream: \"http://127.0.0.1:9/a\"\n")
	f.Close()
	waitFor("connection_refused")
	// Rotate: rename and create a new file under the name.
	if err := os.Rename(name, name+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte("2026/11/23 23:11:00 [error] 1#1: *2 no live upstreams while connecting to upstream, client: 127.0.0.1, server: _, request: \"GET /b HTTP/1.1\", upstream: \"http://backend/b\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("no_healthy_upstream")
	if strings.Contains(out.String(), "start worker processes") {
		t.Errorf("follow printed a line that was there before it started")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("follow returned %v after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not stop after cancel")
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
