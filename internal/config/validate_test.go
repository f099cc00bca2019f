package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// codeConfig returns a valid config built in code, as from flags.
func codeConfig() *Config {
	c := &Config{
		Listeners: []Listener{{Address: "127.0.0.1:0"}},
		Admin:     Admin{Address: "127.0.0.1:0"},
		Pools:     map[string]*Pool{"default": {Targets: []Target{{URL: "http://127.0.0.1:9001"}}}},
	}
	c.ApplyDefaults()
	return c
}

func TestValidateCodeConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		change func(c *Config)
		want   string // the whole error; "" for valid
	}{
		{"as built", func(c *Config) {}, ""},
		{"listener and admin both on port 0 do not clash", func(c *Config) { c.Admin.Address = "[::1]:0" }, ""},
		{"admin off", func(c *Config) { c.Admin.Address = "off" }, ""},
		{"access log buffer negative", func(c *Config) { c.AccessLogBuffer = -1 },
			"access_log_buffer: must not be negative, got -1"},
		{"access log buffer too large", func(c *Config) { c.AccessLogBuffer = 32 << 20 },
			"access_log_buffer: 32MiB is more than 16MiB: a crash would lose that much of the log"},
		{"access log buffer at its largest", func(c *Config) { c.AccessLogBuffer = 16 << 20 }, ""},
		{"access log flush zero in code", func(c *Config) { c.AccessLogFlush.Duration = 0 },
			"access_log_flush: must be more than 0 (leave the key out for the default, 1s)"},
		{"access log flush too long", func(c *Config) { c.AccessLogFlush.Duration = 2 * time.Minute },
			"access_log_flush: 2m is more than 1m: lines would wait that long to be written"},
		{"admin on localhost", func(c *Config) { c.Admin.Address = "localhost:9090" }, ""},
		{"admin on ::1", func(c *Config) { c.Admin.Address = "[::1]:9090" }, ""},
		{"admin remote allowed", func(c *Config) { c.Admin.Address = ":9090"; c.Admin.AllowRemote = true }, ""},
		{"admin remote refused", func(c *Config) { c.Admin.Address = ":9090" },
			"admin.address: :9090 is not a loopback address: the admin listener shows internal detail and controls the gateway; " +
				"bind it to 127.0.0.1, or set admin.allow_remote: true behind a firewall"},
		{"admin empty", func(c *Config) { c.Admin.Address = "" },
			`admin.address: empty: write "off" to disable the admin listener, or leave the key out for 127.0.0.1:9090`},
		{"no file, no line", func(c *Config) { c.Pools["default"].Targets[0].URL = "ftp://x" },
			`pools.default.targets[0].url: scheme "ftp" is not supported: use http://, https://, fastcgi:// or fastcgi+unix://`},
		{"weight 0 set in code after defaults", func(c *Config) { c.Pools["default"].Targets[0].Weight = 0 },
			"pools.default.targets[0].weight: must be at least 1, got 0 (remove the target to send it nothing)"},
		{"nil pool", func(c *Config) { c.Pools["other"] = nil; c.Routes = []Route{{Pool: "default", Path: "/"}} },
			"pools.other: empty: add targets"},
		{"listener clashes with admin", func(c *Config) { c.Admin.Address = "127.0.0.1:9090"; c.Listeners[0].Address = "0.0.0.0:9090" },
			"listeners[0].address: port 9090 is also used by admin.address (127.0.0.1:9090), and 0.0.0.0:9090 listens on every address"},
		{"IPv4-mapped address is the same address", func(c *Config) {
			c.Listeners = []Listener{{Address: "127.0.0.1:80"}, {Address: "[::ffff:127.0.0.1]:80"}}
		}, "listeners[1].address: [::ffff:127.0.0.1]:80 is already used by listeners[0].address"},
		{"two specific addresses on one port", func(c *Config) {
			c.Listeners = []Listener{{Address: "127.0.0.1:80"}, {Address: "127.0.0.2:80"}}
		}, ""},
		{"route names dedupe after case", func(c *Config) {
			c.Routes = []Route{{Pool: "default", Host: "A.example.com", Path: "/"}, {Pool: "default", Host: "a.example.com", Path: "/"}}
		}, "routes[1]: same host and path as routes[0]: one of them never matches"},
		{"wildcard host", func(c *Config) { c.Routes = []Route{{Pool: "default", Host: "*.example.com", Path: "/"}} }, ""},
		{"duplicate CIDR is fine, bad one is not", func(c *Config) {
			c.Forwarding.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/8", "nope"}
		}, `forwarding.trusted_proxies[2]: want a network in CIDR form, such as 10.0.0.0/8, got "nope"`},
		{"target host with underscore", func(c *Config) { c.Pools["default"].Targets[0].URL = "http://php_fpm:9000" }, ""},
		{"target IPv6", func(c *Config) { c.Pools["default"].Targets[0].URL = "https://[::1]:8443/" }, ""},
		{"target empty port", func(c *Config) { c.Pools["default"].Targets[0].URL = "http://127.0.0.1:" },
			"pools.default.targets[0].url: empty port after the colon"},
		{"target password not echoed", func(c *Config) { c.Pools["default"].Targets[0].URL = "http://u:s3cret@h:bad" },
			`pools.default.targets[0].url: not a valid URL: invalid port ":bad" after host`},
		{"shutdown at the limit", func(c *Config) { c.ShutdownTimeout.Duration = MaxShutdownTimeout }, ""},
		{"headers at the limits", func(c *Config) {
			c.Limits.RequestHeaderBytes, c.Limits.ResponseHeaderBytes = MinHeaderBytes, MaxHeaderBytes
		}, ""},
		{"weights at the limits", func(c *Config) {
			c.Pools["default"].Targets = []Target{{URL: "http://a", Weight: MinWeight}, {URL: "http://b", Weight: MaxWeight}}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := codeConfig()
			tc.change(c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
				var errs *Errors
				if !errors.As(err, &errs) || len(errs.List) == 0 {
					t.Errorf("Validate: got %T %v, want a non-empty *Errors", err, err)
				}
			}
			if got != tc.want {
				t.Errorf("Validate:\ngot:  %s\nwant: %s", got, tc.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("Validate repeated a password from a URL: %s", got)
			}
		})
	}
}

// TestValidatePermissions needs a user that permissions apply to: root
// reads and writes everything.
func TestValidatePermissions(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("running as root: file permissions do not apply")
	}
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o500); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(unreadable, []byte("x"), 0o200); err != nil {
		t.Fatal(err)
	}
	readonlyLog := filepath.Join(dir, "ro.log")
	if err := os.WriteFile(readonlyLog, nil, 0o400); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc   string
		change func(c *Config)
		want   string
	}{
		{"log in a directory we cannot write", func(c *Config) { c.AccessLog = filepath.Join(locked, "a.log") },
			`access_log: cannot create the file: directory "` + locked + `" is not writable: permission denied`},
		{"read-only log file", func(c *Config) { c.AccessLog = readonlyLog },
			`access_log: "` + readonlyLog + `" is not writable: permission denied`},
		{"unreadable key", func(c *Config) {
			c.Listeners[0].TLS = &ListenerTLS{Cert: "testdata/tls/cert.pem", Key: unreadable}
		}, `listeners[0].tls.key: cannot read "` + unreadable + `": permission denied`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := codeConfig()
			tc.change(c)
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate:\ngot:  %s\nwant: %s", got, tc.want)
			}
		})
	}
}

func TestValidateFileChecks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := codeConfig()
	c.AccessLog = filepath.Join(dir, "new.log")
	c.ErrorPages.Templates = "testdata/templates"
	c.Listeners[0].TLS = &ListenerTLS{Cert: "testdata/tls/cert.pem", Key: "testdata/tls/key.pem"}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := os.Stat(c.AccessLog); err == nil {
		t.Errorf("Validate created the access log %s: it must not write", c.AccessLog)
	}
	// Without file checks (the fuzzer's mode), missing files pass.
	c.Listeners[0].TLS = &ListenerTLS{Cert: "missing.pem", Key: "missing.pem"}
	c.ErrorPages.Templates = "missing"
	c.AccessLog = "/missing/dir/a.log"
	if errs := c.validate(false); len(errs) != 0 {
		t.Errorf("validate(files=false): got %v, want nothing", errs)
	}
	if errs := c.validate(true); len(errs) != 4 {
		t.Errorf("validate(files=true): got %d problems (%v), want 4", len(errs), errs)
	}
}

func TestParseValidMergesErrors(t *testing.T) {
	t.Parallel()
	_, err := ParseValid("t.yaml", []byte(`listeners: ":80"
pools:
  app:
    targets:
      - url: ftp://x
        weight: heavy
routes:
  - pool: ap
`))
	want := `t.yaml:1: listeners: want a list, got ":80"
t.yaml:5: pools.app.targets[0].url: scheme "ftp" is not supported: use http://, https://, fastcgi:// or fastcgi+unix://
t.yaml:6: pools.app.targets[0].weight: want a whole number, got "heavy"
t.yaml:8: routes[0].pool: unknown pool "ap"; did you mean "app"?`
	if err == nil || err.Error() != want {
		t.Errorf("ParseValid:\ngot:\n%v\nwant:\n%s", err, want)
	}
}
