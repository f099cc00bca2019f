package config

import (
	"slices"
	"strings"
)

// synonyms returns words people write for a gatewise key, from other
// proxies' vocabularies, keyed by the word. Built on each call: it is a
// constant table.
func synonyms() map[string]string {
	return map[string]string{
		"upstreams":    "pools",
		"backends":     "pools",
		"upstream":     "pools",
		"servers":      "targets",
		"server":       "targets",
		"endpoints":    "targets",
		"backend":      "targets",
		"listen":       "listeners",
		"bind":         "address",
		"addr":         "address",
		"prefix":       "path",
		"timeout":      "timeouts",
		"connect":      "dial",
		"dial_timeout": "dial",
	}
}

// maxSuggestLen bounds the names suggest compares, so that the quadratic
// edit distance stays cheap on hostile input.
const maxSuggestLen = 64

// suggest returns the candidate closest to name when it is close enough to
// be a likely typo (by edit distance, letter case aside) or a known
// synonym, else "".
func suggest(name string, candidates []string) string {
	lname := strings.ToLower(name)
	if s, ok := synonyms()[lname]; ok && slices.Contains(candidates, s) {
		return s
	}
	if len(lname) > maxSuggestLen {
		return ""
	}
	best, bestDist := "", -1
	for _, c := range candidates {
		if len(c) > maxSuggestLen {
			continue
		}
		limit := max(1, min(len(lname), len(c))/3)
		if len(c) > len(lname)+limit || len(lname) > len(c)+limit {
			continue // the distance is at least the difference in length
		}
		d := editDistance(lname, strings.ToLower(c), limit)
		if d > limit {
			continue
		}
		if bestDist < 0 || d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance returns the optimal string alignment distance between a and
// b: the number of insertions, deletions, substitutions and transpositions
// of adjacent bytes that turn one into the other; or, once it is sure to be
// more than bound, some number more than bound.
func editDistance(a, b string, bound int) int {
	// Three rows: two back (for transpositions), one back, current.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	prevMin := 0
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		curMin := i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			curMin = min(curMin, cur[j])
		}
		// A row depends on the two before it only: when both are past
		// the bound, so is every row after.
		if curMin > bound && prevMin > bound {
			return bound + 1
		}
		prevMin = curMin
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
