package config

import (
	"reflect"
	"testing"
	"time"
)

// minimal is a config that sets only what has no default.
const minimal = `
listeners:
  - address: ":80"
pools:
  app:
    targets:
      - url: http://127.0.0.1:8080
routes:
  - pool: app
  - pool: app
    host: api.example.com
    path: /v1/
`

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse("minimal.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	app := c.Pools["app"]
	tests := []struct {
		desc      string
		got, want any
	}{
		{"admin address", c.Admin.Address, "127.0.0.1:9090"},
		{"admin allow_remote", c.Admin.AllowRemote, false},
		{"access_log", c.AccessLog, "stdout"},
		{"access_log_buffer for stdout", c.AccessLogBuffer, ByteSize(0)},
		{"access_log_flush", c.AccessLogFlush.Duration, time.Second},
		{"shutdown_timeout", c.ShutdownTimeout.Duration, 30 * time.Second},
		{"forwarding.x_forwarded", *c.Forwarding.XForwarded, true},
		{"forwarding.forwarded", *c.Forwarding.Forwarded, false},
		{"forwarding.via", *c.Forwarding.Via, true},
		{"limits.request_header_bytes", c.Limits.RequestHeaderBytes, ByteSize(64 << 10)},
		{"limits.response_header_bytes", c.Limits.ResponseHeaderBytes, ByteSize(1 << 20)},
		{"limits.read_header_timeout", c.Limits.ReadHeaderTimeout.Duration, 10 * time.Second},
		{"limits.client_idle_timeout", c.Limits.ClientIdleTimeout.Duration, 75 * time.Second},
		{"limits.client_park_after", c.Limits.ClientParkAfter.Duration, 5 * time.Second},
		{"timeouts.dial", app.Timeouts.Dial.Duration, 5 * time.Second},
		{"timeouts.tls_handshake", app.Timeouts.TLSHandshake.Duration, 5 * time.Second},
		{"timeouts.response_header", app.Timeouts.ResponseHeader.Duration, 30 * time.Second},
		{"timeouts.idle", app.Timeouts.Idle.Duration, 60 * time.Second},
		{"timeouts.request", app.Timeouts.Request.Duration, time.Duration(0)},
		{"max_idle_per_target", app.MaxIdlePerTarget, 64},
		{"target weight", app.Targets[0].Weight, 1},
		{"pool name", app.Name, "app"},
		{"route path", c.Routes[0].Path, "/"},
		{"route name, any host", c.Routes[0].Name, "* /"},
		{"route name, host and path", c.Routes[1].Name, "api.example.com /v1/"},
		{"route host stays any", c.Routes[0].Host, ""},
		{"templates stay built-in", c.ErrorPages.Templates, ""},
		{"upstream TLS stays the system's", app.TLS, UpstreamTLS{}},
	}
	for _, tc := range tests {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("default %s: got %#v, want %#v", tc.desc, tc.got, tc.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after defaults: %v", err)
	}
}

// TestAccessLogBufferDefault: a file's access log is buffered by
// default, stdout's and stderr's are not, and a value written, 0
// included, is kept.
func TestAccessLogBufferDefault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		extra string
		want  ByteSize
	}{
		{"access_log: /var/log/gatewise/access.log\n", 64 << 10},
		{"access_log: stderr\n", 0},
		{"access_log: \"off\"\n", 0},
		{"", 0}, // stdout
		{"access_log: /var/log/gatewise/access.log\naccess_log_buffer: 0\n", 0},
		{"access_log: stdout\naccess_log_buffer: 8KiB\n", 8 << 10},
	} {
		c, err := Parse("t.yaml", []byte(minimal+tc.extra))
		if err != nil {
			t.Fatalf("%q: %v", tc.extra, err)
		}
		c.ApplyDefaults()
		c.ApplyDefaults() // idempotent
		if c.AccessLogBuffer != tc.want {
			t.Errorf("%q: access_log_buffer %s, want %s", tc.extra, c.AccessLogBuffer, tc.want)
		}
	}
}

// TestDefaultsKeepWrittenValues checks that a value written in the file,
// zero included, is not replaced by its default.
func TestDefaultsKeepWrittenValues(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.yaml", []byte(`
admin: {address: "[::1]:9999"}
access_log: stderr
shutdown_timeout: 0s
forwarding: {x_forwarded: false, forwarded: true, via: false}
limits: {request_header_bytes: 0, response_header_bytes: 2MiB, read_header_timeout: 0, client_idle_timeout: 1s, client_park_after: 0s}
pools:
  app:
    targets:
      - {url: http://a, weight: 0}
      - {url: http://b, weight: 7}
    timeouts: {dial: 0s, tls_handshake: 1s, response_header: 0s, idle: 0s, request: 1m}
    max_idle_per_target: 0
routes:
  - {pool: app, path: "", name: mine}
`))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	app := c.Pools["app"]
	tests := []struct {
		desc      string
		got, want any
	}{
		{"admin address", c.Admin.Address, "[::1]:9999"},
		{"access_log", c.AccessLog, "stderr"},
		{"shutdown_timeout 0", c.ShutdownTimeout.Duration, time.Duration(0)},
		{"x_forwarded", *c.Forwarding.XForwarded, false},
		{"forwarded", *c.Forwarding.Forwarded, true},
		{"via", *c.Forwarding.Via, false},
		{"request_header_bytes 0", c.Limits.RequestHeaderBytes, ByteSize(0)},
		{"response_header_bytes", c.Limits.ResponseHeaderBytes, ByteSize(2 << 20)},
		{"read_header_timeout 0", c.Limits.ReadHeaderTimeout.Duration, time.Duration(0)},
		{"client_idle_timeout", c.Limits.ClientIdleTimeout.Duration, time.Second},
		{"client_park_after 0", c.Limits.ClientParkAfter.Duration, time.Duration(0)},
		{"weight 0", app.Targets[0].Weight, 0},
		{"weight 7", app.Targets[1].Weight, 7},
		{"dial 0", app.Timeouts.Dial.Duration, time.Duration(0)},
		{"tls_handshake", app.Timeouts.TLSHandshake.Duration, time.Second},
		{"response_header 0", app.Timeouts.ResponseHeader.Duration, time.Duration(0)},
		{"idle 0", app.Timeouts.Idle.Duration, time.Duration(0)},
		{"request", app.Timeouts.Request.Duration, time.Minute},
		{"max_idle_per_target 0", app.MaxIdlePerTarget, 0},
		{"route path written empty", c.Routes[0].Path, ""},
		{"route name", c.Routes[0].Name, "mine"},
	}
	for _, tc := range tests {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("written %s: got %#v, want %#v", tc.desc, tc.got, tc.want)
		}
	}
}

// TestDefaultsFromCode checks a config built in code, as from flags:
// every zero is "not set".
func TestDefaultsFromCode(t *testing.T) {
	t.Parallel()
	c := &Config{
		Listeners: []Listener{{Address: "127.0.0.1:0"}},
		Pools:     map[string]*Pool{"default": {Targets: []Target{{URL: "http://127.0.0.1:9001"}}}, "nil": nil},
		Routes:    []Route{{Pool: "default"}},
	}
	c.ApplyDefaults()
	if got, want := c.Pools["default"].Targets[0].Weight, 1; got != want {
		t.Errorf("weight: got %d, want %d", got, want)
	}
	if got, want := c.Pools["default"].Name, "default"; got != want {
		t.Errorf("pool name: got %q, want %q", got, want)
	}
	if p := c.Pools["nil"]; p == nil || p.Name != "nil" || p.MaxIdlePerTarget != 64 {
		t.Errorf("nil pool: got %#v, want an empty pool with its defaults", p)
	}
	if got, want := c.Routes[0].Path, "/"; got != want {
		t.Errorf("route path: got %q, want %q", got, want)
	}
	if c.Line("pools.default.targets[0].weight") != 0 {
		t.Errorf("a config from code has no lines")
	}
}

func TestApplyDefaultsIsIdempotent(t *testing.T) {
	t.Parallel()
	once, err := Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	twice, _ := Parse("t.yaml", []byte(minimal))
	once.ApplyDefaults()
	twice.ApplyDefaults()
	twice.ApplyDefaults()
	if !reflect.DeepEqual(once, twice) {
		t.Errorf("ApplyDefaults twice: got %+v, want %+v", twice, once)
	}
}

func TestDefaultsAreNotShared(t *testing.T) {
	t.Parallel()
	a, b := &Config{}, &Config{}
	a.ApplyDefaults()
	b.ApplyDefaults()
	*a.Forwarding.Via = false
	if !*b.Forwarding.Via {
		t.Errorf("changing one config's Via changed another's: defaults share a pointer")
	}
}

func TestFastCGIDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse("php.yaml", []byte(`
listeners: [{address: ":80"}]
pools:
  php:
    targets: [{url: "fastcgi+unix:///run/php/php8.2-fpm.sock"}]
    fastcgi: {root: /}
  zero:
    targets: [{url: "fastcgi://127.0.0.1:9000"}]
    fastcgi: {root: /, max_idle_conns: 0, front_controller: false}
routes: [{pool: php}, {pool: zero, path: /z/}]
`))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	f, z := c.Pools["php"].FastCGI, c.Pools["zero"].FastCGI
	tests := []struct {
		desc      string
		got, want any
	}{
		{"index", f.Index, "index.php"},
		{"front_controller", *f.FrontController, true},
		{"max_idle_conns", *f.MaxIdleConns, 4},
		{"idle_timeout", f.IdleTimeout.Duration, 15 * time.Second},
		{"terminate_timeout stays unknown", f.TerminateTimeout.Duration, time.Duration(0)},
		{"status_path stays off", f.StatusPath, ""},
		{"status_interval", f.StatusInterval.Duration, 5 * time.Second},
		{"status_timeout", f.StatusTimeout.Duration, 2 * time.Second},
		{"explicit max_idle_conns 0 kept", *z.MaxIdleConns, 0},
		{"explicit front_controller false kept", *z.FrontController, false},
		{"IsFastCGI", c.Pools["php"].IsFastCGI(), true},
	}
	for _, tc := range tests {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("default fastcgi %s: got %#v, want %#v", tc.desc, tc.got, tc.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after defaults: %v", err)
	}
}
