package upstream

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"github.com/gatewise/gatewise/internal/config"
)

// policy is a way of choosing a target.
type policy uint8

// The policies, by their names in the config.
const (
	policyP2CEWMA       policy = iota // "p2c_ewma"
	policyRoundRobin                  // "round_robin"
	policyLeastRequests               // "least_requests"
	policyHash                        // "hash"
)

// hashKind is what policy hash hashes.
type hashKind uint8

// The hash keys, by their names in the config.
const (
	hashClientIP hashKind = iota // "client_ip"
	hashHeader                   // "header:NAME"
	hashCookie                   // "cookie:NAME"
)

// errBadHashKey is the error for a hash_key that is not client_ip,
// header:NAME or cookie:NAME.
var errBadHashKey = errors.New("want client_ip, header:NAME or cookie:NAME")

// settings are a pool's selection, outlier and slow start settings with
// their defaults applied.
type settings struct {
	policy   policy
	hashKind hashKind
	hashName string // canonical header name, or cookie name

	panicOn   bool
	slowStart time.Duration

	failThreshold  int // connection failures in a row that eject; 0: off
	errorThreshold int // 5xx and broken responses in a row that eject; 0: off
	baseEjection   time.Duration
	maxEjection    time.Duration
	maxEjectedPct  int
}

// newSettings reads a pool's settings, taking the documented default for
// each one left unset.
func newSettings(pc *config.Pool) (settings, error) {
	s := settings{
		panicOn:        config.DefaultPanic,
		slowStart:      pc.SlowStart.Duration,
		failThreshold:  config.DefaultConsecutiveFailures,
		errorThreshold: config.DefaultConsecutive5xx,
		baseEjection:   config.DefaultBaseEjection,
		maxEjection:    config.DefaultMaxEjection,
		maxEjectedPct:  config.DefaultMaxEjectedPercent,
	}
	switch pc.Policy {
	case "", "p2c_ewma":
		s.policy = policyP2CEWMA
	case "round_robin":
		s.policy = policyRoundRobin
	case "least_requests":
		s.policy = policyLeastRequests
	case "hash":
		s.policy = policyHash
	default:
		return s, fmt.Errorf("policy: unknown policy %q: use p2c_ewma, round_robin, least_requests or hash", pc.Policy)
	}
	switch kind, name, _ := strings.Cut(pc.HashKey, ":"); {
	case pc.HashKey == "" || pc.HashKey == "client_ip":
		s.hashKind = hashClientIP
	case kind == "header" && name != "":
		s.hashKind, s.hashName = hashHeader, textproto.CanonicalMIMEHeaderKey(name)
	case kind == "cookie" && name != "":
		s.hashKind, s.hashName = hashCookie, name
	default:
		return s, fmt.Errorf("hash_key %q: %w", pc.HashKey, errBadHashKey)
	}
	if pc.Panic != nil {
		s.panicOn = *pc.Panic
	}
	s.slowStart = max(s.slowStart, 0)
	o := pc.Outlier
	if o.ConsecutiveFailures != nil {
		s.failThreshold = max(*o.ConsecutiveFailures, 0)
	}
	if o.Consecutive5xx != nil {
		s.errorThreshold = max(*o.Consecutive5xx, 0)
	}
	if o.BaseEjection.Duration > 0 {
		s.baseEjection = o.BaseEjection.Duration
	}
	if o.MaxEjection.Duration > 0 {
		s.maxEjection = o.MaxEjection.Duration
	}
	s.maxEjection = max(s.maxEjection, s.baseEjection)
	if o.MaxEjectedPercent != nil {
		s.maxEjectedPct = min(max(*o.MaxEjectedPercent, 0), 100)
	}
	return s, nil
}
