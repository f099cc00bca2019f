package doctor

import (
	"regexp"
	"strings"
)

// redacted replaces a secret.
const redacted = "[REDACTED]"

// redactRules are applied in order. Each keeps the name of what it hides
// (the first group) and replaces the value.
var redactRules = []struct {
	re   *regexp.Regexp
	repl string
}{
	// The password of a URL or DSN: scheme://user:PASS@host,
	// user:PASS@tcp(host)/db, redis://:PASS@host.
	{regexp.MustCompile(`((?:^|[\s"'(=,;]|://)[^\s:@/"'(]*:)[^\s@/"']*(@)`), "${1}" + redacted + "${2}"},
	// HTTP headers that carry credentials, as "Name: value" lines or
	// JSON fields.
	{regexp.MustCompile(`(?i)((?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-auth-token)"?\s*[:=]\s*"?)[^"\r\n]*`), "${1}" + redacted},
	// name=value and name: value pairs whose name says secret.
	{regexp.MustCompile(`(?i)((?:passw(?:or)?d|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key|client[_-]?secret|session[_-]?id|requirepass|masterauth)[A-Za-z0-9_.\-]*"?\s*[:=]\s*)(?:'[^'\n]*'|"[^"\n]*"|[^\s"&,;]+)`), "${1}" + redacted},
	// Bearer and Basic credentials anywhere.
	{regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}`), "${1} " + redacted},
	// PEM private keys.
	{regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)`), redacted},
	// Well-known key shapes: AWS access keys, GitHub, Slack, Stripe and
	// Google API keys, JSON web tokens.
	{regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bxox[abprs]-[A-Za-z0-9-]{10,}|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|\bAIza[0-9A-Za-z_\-]{35}\b|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`), redacted},
	// Anything else that looks like a key: a run of 32 or more letters and
	// digits mixing both (a hex digest of a package would be kept if it
	// had no digit-letter mix, but such a digest is no secret either way).
	{regexp.MustCompile(`\b[A-Za-z0-9+/_\-]{32,}={0,2}`), ""},
}

// Redact returns s with secrets replaced by [REDACTED]: passwords in URLs
// and DSNs, Authorization, Cookie and API key headers, name=value pairs
// whose name says password, secret, token or key, Bearer tokens, private
// keys, and long strings of mixed letters and digits that look like keys.
// Text without secrets is returned unchanged.
func Redact(s string) string {
	if s == "" {
		return s
	}
	for _, r := range redactRules {
		if r.repl == "" {
			s = r.re.ReplaceAllStringFunc(s, redactKeyLike)
			continue
		}
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// redactKeyLike replaces a long token that mixes letters and digits, and
// keeps paths, words and numbers.
func redactKeyLike(tok string) string {
	if strings.Contains(tok, "/") && !strings.ContainsAny(tok, "+=") {
		return tok // a path
	}
	var letters, digits, upper, lower int
	for _, c := range tok {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z':
			letters++
			lower++
		case c >= 'A' && c <= 'Z':
			letters++
			upper++
		}
	}
	if letters == 0 || digits == 0 {
		return tok
	}
	// Words joined by - or _ (a package name, a unit) have long runs of
	// letters; keys change between letters and digits often.
	if digits*8 < len(tok) && strings.ContainsAny(tok, "-_.") {
		return tok
	}
	return redacted
}

// redactFinding redacts every text of a finding.
func redactFinding(f *Finding) {
	f.Target = Redact(f.Target)
	f.Summary = Redact(f.Summary)
	f.Fix = Redact(f.Fix)
	for i := range f.Evidence {
		f.Evidence[i] = Redact(f.Evidence[i])
	}
}
