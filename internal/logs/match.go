package logs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"regexp/syntax"
	"sort"
	"unicode/utf8"

	"github.com/gatewise/gatewise/internal/cause"
)

// maxVariants bounds how many literal sequences one signature may expand
// to (small character classes and alternations are expanded); a signature
// that would expand to more is matched with its regular expression.
const maxVariants = 64

// piece sequence: a signature a line matches when its literal pieces occur
// in order (the pattern "a.*b" is the sequence "a", "b").
type variant struct {
	pieces [][]byte
	id     cause.ID
	order  int // the signature's position in the table: the first wins a tie
	size   int // the pieces' total length: the most specific wins
	// confirm, when set, is the signature's expression, run when the
	// pieces match: the pieces were only necessary, not sufficient (the
	// pattern had a \d+ or \S+ between them).
	confirm *regexp.Regexp
}

// regexSig is a signature too complex to expand into literals: prefix is a
// literal every match starts with (possibly empty), re the expression.
type regexSig struct {
	prefix []byte
	re     *regexp.Regexp
	id     cause.ID
	order  int
}

// matcher finds the cause of a message by the signatures of one or more
// servers in the cause table. It holds no mutable state, so one matcher may
// be shared by goroutines.
type matcher struct {
	// groups are the literal variants grouped by their first piece, so a
	// line is searched once per distinct first piece.
	groups []variantGroup
	regexs []regexSig
	// A line is scanned once for every first piece of 4 bytes or more:
	// the 4 bytes at each position are hashed into bloom, and only on a
	// hit looked up in byKey. Shorter first pieces are searched one by one
	// (short).
	bloom [1 << 16 / 64]uint64
	byKey map[uint32][]int
	short []int
}

// keyHash maps the 4 bytes of a key to a bit of the bloom filter.
func keyHash(k uint32) uint32 { return (k * 0x9E3779B1) >> 16 }

type variantGroup struct {
	first    []byte
	variants []variant
}

// newMatcher compiles the signatures of the given servers in the table
// into a matcher. A pattern that does not compile is an error naming it.
func newMatcher(t *cause.Table, servers ...string) (*matcher, error) {
	m := &matcher{}
	byFirst := map[string]int{}
	order := 0
	for _, c := range t.All() {
		for _, s := range c.Signatures {
			if !contains(servers, s.Server) {
				continue
			}
			order++
			if _, err := regexp.Compile(s.Pattern); err != nil {
				return nil, fmt.Errorf("cause %s: %s signature %q: %w", c.ID, s.Server, s.Pattern, err)
			}
			re, err := syntax.Parse(s.Pattern, syntax.Perl)
			if err != nil {
				return nil, fmt.Errorf("cause %s: %s signature %q: %w", c.ID, s.Server, s.Pattern, err)
			}
			var exact bool
			seqs, ok := expand(re.Simplify(), &exact)
			if ok {
				seqs = clean(seqs)
			}
			if !ok || len(seqs) == 0 {
				full := regexp.MustCompile(s.Pattern)
				prefix, _ := full.LiteralPrefix()
				m.regexs = append(m.regexs, regexSig{prefix: []byte(prefix), re: full, id: c.ID, order: order})
				continue
			}
			for _, seq := range seqs {
				v := variant{id: c.ID, order: order}
				if !exact {
					v.confirm = regexp.MustCompile(s.Pattern)
				}
				for _, p := range seq {
					v.pieces = append(v.pieces, []byte(p))
					v.size += len(p)
				}
				k := string(v.pieces[0])
				i, seen := byFirst[k]
				if !seen {
					i = len(m.groups)
					byFirst[k] = i
					m.groups = append(m.groups, variantGroup{first: v.pieces[0]})
				}
				m.groups[i].variants = append(m.groups[i].variants, v)
			}
		}
	}
	m.byKey = map[uint32][]int{}
	for gi, g := range m.groups {
		if len(g.first) < 4 {
			m.short = append(m.short, gi)
			continue
		}
		k := binary.LittleEndian.Uint32(g.first)
		h := keyHash(k)
		m.bloom[h>>6] |= 1 << (h & 63)
		m.byKey[k] = append(m.byKey[k], gi)
	}
	return m, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// match returns the cause of line, or "" when no signature matches. When
// several match, the most specific wins: the one whose literal text covers
// most of the line (so Apache's "(104)Connection reset by peer: AH01102"
// is a reset, not the bare "AH01102" another cause lists), then the one
// listed first in the table.
func (m *matcher) match(line []byte) cause.ID {
	best, bestLen, bestOrder := cause.ID(""), -1, 0
	better := func(id cause.ID, n, order int) {
		if n > bestLen || (n == bestLen && order < bestOrder) {
			best, bestLen, bestOrder = id, n, order
		}
	}
	// seen marks the groups already tried at their first occurrence.
	var seenSmall uint64
	var seenBig []bool
	if len(m.groups) > 64 {
		seenBig = make([]bool, len(m.groups))
	}
	try := func(gi, at int) {
		if seenBig != nil {
			if seenBig[gi] {
				return
			}
			seenBig[gi] = true
		} else {
			if seenSmall&(1<<gi) != 0 {
				return
			}
			seenSmall |= 1 << gi
		}
		g := &m.groups[gi]
		for vi := range g.variants {
			v := &g.variants[vi]
			if v.matchFrom(line, at) {
				if v.confirm != nil {
					loc := v.confirm.FindIndex(line)
					if loc == nil {
						continue
					}
					better(v.id, loc[1]-loc[0], v.order)
					continue
				}
				better(v.id, v.size, v.order)
			}
		}
	}
	for i := 0; i+4 <= len(line); i++ {
		k := binary.LittleEndian.Uint32(line[i:])
		h := keyHash(k)
		if m.bloom[h>>6]&(1<<(h&63)) == 0 {
			continue
		}
		for _, gi := range m.byKey[k] {
			if bytes.HasPrefix(line[i:], m.groups[gi].first) {
				try(gi, i)
			}
		}
	}
	for _, gi := range m.short {
		if at := bytes.Index(line, m.groups[gi].first); at >= 0 {
			try(gi, at)
		}
	}
	for i := range m.regexs {
		r := &m.regexs[i]
		from := 0
		if len(r.prefix) > 0 {
			from = bytes.Index(line, r.prefix)
			if from < 0 {
				continue
			}
		}
		if loc := r.re.FindIndex(line[from:]); loc != nil {
			better(r.id, loc[1]-loc[0], r.order)
		}
	}
	return best
}

// matchFrom reports whether v's pieces occur in order in line, the first
// at or after at (where its first occurrence is).
func (v *variant) matchFrom(line []byte, at int) bool {
	rest := line[at+len(v.pieces[0]):]
	for _, p := range v.pieces[1:] {
		i := bytes.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return true
}

// expand turns a simplified regular expression into literal sequences, a
// sequence being pieces separated by ".*", such that a line matches the
// expression only if it has one of the sequences. *exact is set to false
// when some construct was widened to a gap (a repetition, a large class),
// so that the sequences are necessary but not sufficient; it stays true
// when they match exactly the same lines. expand reports false when the
// expression has a construct it cannot widen (anchors, case folding).
func expand(re *syntax.Regexp, exact *bool) ([][]string, bool) {
	*exact = true
	return expandRe(re, exact)
}

// gap is the sequence of ".*": two empty pieces that join with their
// neighbours.
func gap() [][]string { return [][]string{{"", ""}} }

func expandRe(re *syntax.Regexp, exact *bool) ([][]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		return [][]string{{string(re.Rune)}}, true
	case syntax.OpEmptyMatch:
		return [][]string{{""}}, true
	case syntax.OpCharClass:
		var out [][]string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if len(out) >= 8 {
					*exact = false
					return gap(), true
				}
				out = append(out, []string{string(r)})
			}
		}
		return out, true
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		// ".*" (any character but a newline) is exactly a gap between
		// pieces; other repetitions are widened to one.
		if re.Op != syntax.OpStar || len(re.Sub) != 1 || re.Sub[0].Op != syntax.OpAnyCharNotNL {
			*exact = false
		}
		return gap(), true
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		*exact = false
		return gap(), true
	case syntax.OpCapture:
		return expandRe(re.Sub[0], exact)
	case syntax.OpAlternate:
		var out [][]string
		for _, sub := range re.Sub {
			s, ok := expandRe(sub, exact)
			if !ok || len(out)+len(s) > maxVariants {
				return nil, false
			}
			out = append(out, s...)
		}
		return out, true
	case syntax.OpConcat:
		out := [][]string{{""}}
		for _, sub := range re.Sub {
			s, ok := expandRe(sub, exact)
			if !ok || len(out)*len(s) > maxVariants {
				return nil, false
			}
			next := make([][]string, 0, len(out)*len(s))
			for _, a := range out {
				for _, b := range s {
					next = append(next, joinSeq(a, b))
				}
			}
			out = next
		}
		return out, true
	}
	return nil, false
}

// joinSeq concatenates two sequences: a's last piece and b's first are
// adjacent, so they join into one.
func joinSeq(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b)-1)
	out = append(out, a[:len(a)-1]...)
	out = append(out, a[len(a)-1]+b[0])
	return append(out, b[1:]...)
}

// clean drops empty pieces (a leading or trailing ".*" matches anything)
// and sequences left with no piece, which would match every line: such a
// signature is refused by reporting no sequence at all.
func clean(seqs [][]string) [][]string {
	out := make([][]string, 0, len(seqs))
	for _, s := range seqs {
		var ps []string
		for _, p := range s {
			if p != "" && utf8.ValidString(p) {
				ps = append(ps, p)
			}
		}
		if len(ps) == 0 {
			return nil
		}
		out = append(out, ps)
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i][0]) > len(out[j][0]) })
	return out
}
