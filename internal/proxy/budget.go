package proxy

import (
	"sync"
	"time"
)

// retryBudget caps retries at a share of requests plus a floor per second,
// over a sliding window of ten one-second buckets, so that an outage does
// not multiply the load on the targets left (Finagle's and Envoy's retry
// budgets work the same way).
type retryBudget struct {
	mu        sync.Mutex
	percent   int
	minPerSec int
	now       func() time.Time
	buckets   [10]budgetBucket
}

type budgetBucket struct {
	second   int64
	requests int
	retries  int
}

func newRetryBudget(percent, minPerSec int, now func() time.Time) *retryBudget {
	return &retryBudget{percent: percent, minPerSec: minPerSec, now: now}
}

// bucket returns the bucket of the second of now, clearing a stale one.
func (b *retryBudget) bucket(now time.Time) *budgetBucket {
	sec := now.Unix()
	bk := &b.buckets[sec%int64(len(b.buckets))]
	if bk.second != sec {
		*bk = budgetBucket{second: sec}
	}
	return bk
}

// request counts a request made at now, a reading of the budget's clock.
func (b *retryBudget) request(now time.Time) {
	b.mu.Lock()
	b.bucket(now).requests++
	b.mu.Unlock()
}

// allow reports whether one more retry fits the budget, and counts it when
// it does.
func (b *retryBudget) allow() bool {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.bucket(now)
	sec := cur.second
	var requests, retries int
	for i := range b.buckets {
		if bk := &b.buckets[i]; sec-bk.second < int64(len(b.buckets)) {
			requests += bk.requests
			retries += bk.retries
		}
	}
	// The floor is per second; grant it over the whole window.
	limit := requests*b.percent/100 + b.minPerSec*len(b.buckets)
	if retries >= limit {
		return false
	}
	cur.retries++
	return true
}
