package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an access-log destination safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(l.b.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("access-log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

type baseKey struct{}

// TestAccessLogRequestContext checks what the access log gives the next
// handler, through a real server: the record in the request's context with
// the request ID of the header (kept when sane, else a new one), the
// request's header as the visitor sent it, the server's own context values, and the server's cancellation
// when the visitor leaves, which a context derived from it sees too.
func TestAccessLogRequestContext(t *testing.T) {
	t.Parallel()
	type seen struct {
		recID, headerID string
		base            any
		cause           error
	}
	got := make(chan seen, 4)
	out := &lockedBuffer{}
	al := &AccessLog{Out: out}
	srv := httptest.NewUnstartedServer(al.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := RecordFrom(r.Context())
		if rec == nil {
			t.Error("no record in the request's context")
			return
		}
		s := seen{recID: rec.ID, headerID: r.Header.Get(RequestIDHeader), base: r.Context().Value(baseKey{})}
		if r.URL.Path == "/wait" {
			child, cancel := context.WithCancel(r.Context())
			defer cancel()
			w.WriteHeader(http.StatusOK)
			_ = http.NewResponseController(w).Flush()
			select {
			case <-child.Done():
				s.cause = context.Cause(child)
			case <-time.After(10 * time.Second):
			}
		}
		got <- s
	})))
	srv.Config.BaseContext = func(net.Listener) context.Context {
		return context.WithValue(context.Background(), baseKey{}, "base")
	}
	srv.Start()
	t.Cleanup(srv.Close)

	hexID := regexp.MustCompile(`^[0-9a-f]{20}$`)
	tests := []struct {
		desc, sent string
		keep       bool
	}{
		{"no ID: a new one", "", false},
		{"a sane ID: kept", "abc-123", true},
		{"a hostile ID: replaced", "a\"b", false},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		if tt.sent != "" {
			req.Header.Set(RequestIDHeader, tt.sent)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.desc, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		s := <-got
		if s.headerID != tt.sent {
			t.Errorf("%s: header %q, want %q as sent", tt.desc, s.headerID, tt.sent)
		}
		if tt.keep && s.recID != tt.sent {
			t.Errorf("%s: ID %q, want %q", tt.desc, s.recID, tt.sent)
		}
		if !tt.keep && !hexID.MatchString(s.recID) {
			t.Errorf("%s: ID %q, want 20 hexadecimal digits", tt.desc, s.recID)
		}
		if s.base != "base" {
			t.Errorf("%s: the server's context value: got %v, want base", tt.desc, s.base)
		}
	}

	// The visitor leaves mid-answer: the handler's derived context ends.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/wait", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	_ = res.Body.Close()
	if s := <-got; !errors.Is(s.cause, context.Canceled) {
		t.Errorf("visitor gone: the derived context's cause %v, want context.Canceled", s.cause)
	}

	// The last line is written when the handler returns, after it
	// reported what it saw: wait for it (bounded).
	lines := out.lines(t)
	for deadline := time.Now().Add(10 * time.Second); len(lines) < len(tests)+1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		lines = out.lines(t)
	}
	if len(lines) != len(tests)+1 {
		t.Fatalf("%d access-log lines, want %d", len(lines), len(tests)+1)
	}
	if lines[1]["request_id"] != "abc-123" || lines[1]["status"] != float64(200) {
		t.Errorf("access-log line %v, want request_id abc-123 and status 200", lines[1])
	}
}

// TestNewRequestID checks the form of new request IDs.
func TestNewRequestID(t *testing.T) {
	t.Parallel()
	a, b := NewRequestID(), NewRequestID()
	re := regexp.MustCompile(`^[0-9a-f]{20}$`)
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Errorf("IDs %q and %q: want two different 20-digit hexadecimal IDs", a, b)
	}
}
