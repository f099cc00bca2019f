package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestShutdownClosesTunnels checks that an open WebSocket, which
// http.Server.Shutdown does not track, is waited for until the deadline and
// then closed, instead of being left open or cut before the deadline.
func TestShutdownClosesTunnels(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, b); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)

	cfg := oneTargetConfig(up.URL)
	srv := startOwnShutdown(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+srv.Addrs()[0].String()+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "ping" {
		t.Fatalf("echo: got %q, %v", b, err)
	}

	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	err = srv.Shutdown(sctx)
	if err == nil || !strings.Contains(err.Error(), "closed 1 upgraded connection") {
		t.Errorf("Shutdown: got %v, want it to report closing 1 upgraded connection", err)
	}
	if sctx.Err() == nil {
		t.Errorf("Shutdown returned before its deadline with a tunnel open")
	}
	if _, _, err := c.Read(ctx); err == nil {
		t.Errorf("the tunnel is still open after shutdown")
	}
}

// TestAdminUpstreams checks the admin API's view of the pools.
func TestAdminUpstreams(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(up.Close)
	g := startGateway(t, oneTargetConfig(up.URL))
	res, err := http.Get(g.admin + "/api/upstreams")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got map[string][]map[string]any
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	app := got["app"]
	if len(app) != 1 || app[0]["addr"] != strings.TrimPrefix(up.URL, "http://") || app[0]["healthy"] != true {
		t.Errorf("/api/upstreams: got %v, want the one healthy target of pool app", got)
	}
}
