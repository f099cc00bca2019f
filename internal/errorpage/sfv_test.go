package errorpage

import (
	"fmt"
	"strings"
)

// sfItem is one member of an RFC 8941 list: a bare item and its parameters,
// each value as Go: string (sf-string), sfToken, int64, float64 (decimal),
// bool, []byte (binary).
type sfItem struct {
	value  any
	params []sfParam
}

type sfParam struct {
	key   string
	value any
}

type sfToken string

// param returns the value of the parameter key and whether it is there.
func (it sfItem) param(key string) (any, bool) {
	for _, p := range it.params {
		if p.key == key {
			return p.value, true
		}
	}
	return nil, false
}

// parseSFList parses s as an RFC 8941 §4.2.1 List of Items (inner lists are
// not used by Proxy-Status and are reported as an error). It is strict: any
// deviation from the grammar is an error.
func parseSFList(s string) ([]sfItem, error) {
	p := &sfParser{s: strings.Trim(s, " ")}
	var out []sfItem
	for p.i < len(p.s) {
		if p.peek() == '(' {
			return nil, p.errorf("inner lists are not expected")
		}
		it, err := p.item()
		if err != nil {
			return nil, err
		}
		out = append(out, it)
		p.ows()
		if p.i == len(p.s) {
			return out, nil
		}
		if p.peek() != ',' {
			return nil, p.errorf("want ',' after a list member")
		}
		p.i++
		p.ows()
		if p.i == len(p.s) {
			return nil, p.errorf("trailing comma")
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *sfParser) errorf(format string, a ...any) error {
	return fmt.Errorf("at %d of %q: %s", p.i, p.s, fmt.Sprintf(format, a...))
}

func (p *sfParser) ows() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) item() (sfItem, error) {
	v, err := p.bareItem()
	if err != nil {
		return sfItem{}, err
	}
	params, err := p.params()
	return sfItem{value: v, params: params}, err
}

func (p *sfParser) params() ([]sfParam, error) {
	var out []sfParam
	for p.peek() == ';' {
		p.i++
		for p.peek() == ' ' {
			p.i++
		}
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		var v any = true
		if p.peek() == '=' {
			p.i++
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		for _, q := range out {
			if q.key == key {
				return nil, p.errorf("duplicate parameter %q", key)
			}
		}
		out = append(out, sfParam{key, v})
	}
	return out, nil
}

func (p *sfParser) key() (string, error) {
	start := p.i
	c := p.peek()
	if !(c >= 'a' && c <= 'z' || c == '*') {
		return "", p.errorf("a key starts with lcalpha or '*'")
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_-.*", c) >= 0) {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) bareItem() (any, error) {
	c := p.peek()
	switch {
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return p.token(), nil
	case c == ':':
		return p.binary()
	case c == '?':
		p.i++
		switch p.peek() {
		case '0':
			p.i++
			return false, nil
		case '1':
			p.i++
			return true, nil
		}
		return nil, p.errorf("bad boolean")
	}
	return nil, p.errorf("no bare item starts with %q", c)
}

func (p *sfParser) number() (any, error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	digits, frac, dot := 0, 0, false
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '.' && !dot && digits > 0 && digits <= 12 {
			dot = true
			p.i++
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		if dot {
			frac++
		} else {
			digits++
		}
		p.i++
	}
	switch {
	case digits == 0:
		return nil, p.errorf("number without digits")
	case !dot && digits > 15:
		return nil, p.errorf("integer too long")
	case dot && (frac == 0 || frac > 3):
		return nil, p.errorf("bad decimal")
	}
	var v any
	var err error
	if dot {
		var f float64
		_, err = fmt.Sscan(p.s[start:p.i], &f)
		v = f
	} else {
		var n int64
		_, err = fmt.Sscan(p.s[start:p.i], &n)
		v = n
	}
	return v, err
}

func (p *sfParser) str() (any, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.i == len(p.s) {
				return nil, p.errorf("backslash at the end")
			}
			n := p.s[p.i]
			if n != '"' && n != '\\' {
				return nil, p.errorf("bad escape \\%c", n)
			}
			b.WriteByte(n)
			p.i++
		case c == '"':
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return nil, p.errorf("byte %#x in a string", c)
		default:
			b.WriteByte(c)
		}
	}
	return nil, p.errorf("unterminated string")
}

func (p *sfParser) token() sfToken {
	start := p.i
	p.i++
	for p.i < len(p.s) && (p.s[p.i] == ':' || p.s[p.i] == '/' || isToken(p.s[p.i:p.i+1])) {
		p.i++
	}
	return sfToken(p.s[start:p.i])
}

func (p *sfParser) binary() (any, error) {
	p.i++
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return nil, p.errorf("unterminated binary")
	}
	v := p.s[p.i : p.i+end]
	p.i += end + 1
	return []byte(v), nil
}
