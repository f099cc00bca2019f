package doctor

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		desc, in, want string
	}{
		{"mysql URL", "mysql://wp:S3cret@127.0.0.1:3306/wp", "mysql://wp:[REDACTED]@127.0.0.1:3306/wp"},
		{"driver DSN", "wp:S3cret@tcp(127.0.0.1:3306)/wp", "wp:[REDACTED]@tcp(127.0.0.1:3306)/wp"},
		{"redis password only", "redis://:hunter2@10.0.0.5:6379", "redis://:[REDACTED]@10.0.0.5:6379"},
		{"DSN inside a sentence", "cannot connect to mysql://wp:S3cretPass@127.0.0.1/wp in db.php", "cannot connect to mysql://wp:[REDACTED]@127.0.0.1/wp in db.php"},
		{"authorization header", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: [REDACTED]"},
		{"cookie header", "Cookie: wordpress_logged_in_abc=admin%7C1700000000; other=1", "Cookie: [REDACTED]"},
		{"json authorization", `{"authorization":"Bearer abc.def.ghi"}`, `{"authorization":"[REDACTED]"}`},
		{"query token", "GET /?token=abcd1234efgh HTTP/1.1", "GET /?token=[REDACTED] HTTP/1.1"},
		{"password pair", "password=hunter2 user=bob", "password=[REDACTED] user=bob"},
		{"php ini pair", "DB_PASSWORD: 'x y'", "DB_PASSWORD: [REDACTED]"},
		{"bearer", "sent Bearer eyJhbGciOiJIUzI1NiJ9", "sent Bearer [REDACTED]"},
		{"aws key", "key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED] used"},
		{"long random key", "api 9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc in config", "api [REDACTED] in config"},
		{"private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----", "[REDACTED]"},
		{"times and addresses stay", "2026-11-23 23:10:05 connect() to 127.0.0.1:9000 failed (111: Connection refused)", "2026-11-23 23:10:05 connect() to 127.0.0.1:9000 failed (111: Connection refused)"},
		{"package versions stay", "php8.2-fpm was upgraded (8.2.7-1~deb12u1 → 8.2.26-1~deb12u1)", "php8.2-fpm was upgraded (8.2.7-1~deb12u1 → 8.2.26-1~deb12u1)"},
		{"paths stay", "/usr/lib/x86_64-linux-gnu/php/20220829/opcache.so", "/usr/lib/x86_64-linux-gnu/php/20220829/opcache.so"},
		{"email-like user stays", "user root@localhost denied", "user root@localhost denied"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzRedact checks that Redact never panics, and that a password in a
// DSN never survives.
func FuzzRedact(f *testing.F) {
	f.Add("mysql://u:p@h/db", "S3cretPass")
	f.Add("Authorization: ", "Basic abc")
	f.Fuzz(func(t *testing.T, prefix, secret string) {
		_ = Redact(prefix + secret)
		if len(secret) < 6 || strings.ContainsAny(secret, "@/:\"' \t\r\n\f") {
			return
		}
		got := Redact("mysql://wp:" + secret + "@127.0.0.1/wp")
		if strings.Contains(got, secret) {
			t.Errorf("the password %q survived: %q", secret, got)
		}
	})
}
