package client

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

const (
	// DefaultAttemptTimeout is how long one request to a leader may go
	// unanswered before the client looks the leader up again. A frozen
	// leader (GC pause, VM freeze, black-holed link) keeps its
	// connections open; its followers elect a new leader after their
	// election timeout (400ms by default) and the NameServer names it
	// about 0.7s after the freeze began.
	DefaultAttemptTimeout = time.Second
	// maxPending bounds the attempts of one call in flight at once: the
	// unanswered ones that were resent to a newer leader, plus the current.
	maxPending = 3
	// minRecheck is the floor of the interval at which an unanswered
	// attempt re-reads the NameServer while it still names the same node
	// (a tenth of the attempt timeout): one small request per client,
	// shared by all its waiting calls (see refreshLeaders).
	minRecheck = 50 * time.Millisecond
)

type attemptResult[T any] struct {
	v   T
	err error
	seq int
}

// leaderCall runs attempt against group's leader until an attempt
// succeeds, ctx ends, a non-retriable error comes back, or more than
// maxMaybe attempts failed in a way that may have taken effect (timeouts,
// indeterminate writes, connections lost mid-request). Failures where
// nothing happened (connection refused, not leader, leader not ready) are
// retried for free with a short backoff and leader rediscovery: a failover
// is invisible to the caller as long as ctx lasts.
//
// Each attempt runs on its own goroutine. When one stays unanswered for
// the router's attemptTimeout, its leader is suspect: leaderCall asks the
// NameServer again and, if it names another leader (a newer term), sends
// the same request there while the first stays pending; if it still names
// the same node it keeps waiting and asks again every tenth of it. The
// first success wins and is returned exactly once; the others are
// cancelled and their late answers dropped. A resend may store a copy the
// frozen leader had already replicated; r.resends counts them. attempt
// must not write state shared with other attempts: it returns its value
// instead. leaderCall does not wait for the cancelled attempts (one may
// sit in a write to a frozen node's full socket, which no context cuts);
// they belong to the router, whose owner waits for them after closing
// the pool (router.wait).
func leaderCall[T any](ctx context.Context, r *router, group string, maxMaybe int, attempt func(ctx context.Context, addr string) (T, error)) (T, error) {
	return leaderCallOpts(ctx, r, group, maxMaybe, nil, attempt)
}

// leaderCallOpts is leaderCall that, when elsewhere is set, asks it about
// every failure that leaderCall would wait out in the group (no leader
// known, leader unreachable or unanswered for attemptTimeout, not leader
// without a usable hint, and the rest) and, when it says so, returns
// at once an *errElsewhere wrapping the failure so that the caller can go
// to another group (fault.go). A pending attempt is then abandoned: its
// outcome is unknown (errElsewhere.maybe).
func leaderCallOpts[T any](ctx context.Context, r *router, group string, maxMaybe int, elsewhere func(error) bool, attempt func(ctx context.Context, addr string) (T, error)) (T, error) {
	var zero T
	giveUp := func(err error, maybe bool) error {
		if elsewhere == nil || ctx.Err() != nil || !elsewhere(err) {
			return nil
		}
		return &errElsewhere{group: group, err: err, maybe: maybe}
	}
	actx, cancel := context.WithCancel(ctx)
	// cancel ends the attempts still pending when the call returns; each
	// has a slot in results, so their sends never block.
	defer cancel()
	results := make(chan attemptResult[T], maxPending)
	pending := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	var lastErr error
	maybe, redirects, seq := 0, 0, 0
	cur, curAddr := 0, "" // the latest attempt in flight (cur 0: none)
	bo := newBackoff()
	for {
		var retry <-chan time.Time // set while no leader is known: when to look again
		if cur == 0 && pending < maxPending {
			if err := ctx.Err(); err != nil {
				return zero, budgetErr(err, lastErr)
			}
			addr, err := r.findLeader(ctx, group)
			if addr == "" {
				if lastErr == nil {
					lastErr = err
				}
				if e := giveUp(lastErr, pending > 0); e != nil {
					return zero, e
				}
				retry = time.After(bo.next())
			} else {
				seq++
				cur, curAddr = seq, addr
				pending++
				if !r.track() {
					return zero, ErrClosed
				}
				go func(seq int, addr string) { // ends with its attempt (bounded by actx); see router.wait
					defer r.attempts.Done()
					v, err := attempt(actx, addr)
					results <- attemptResult[T]{v: v, err: err, seq: seq}
				}(seq, addr)
				timer.Reset(r.attemptTimeout)
			}
		}
		var tick <-chan time.Time
		if cur != 0 {
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return zero, budgetErr(ctx.Err(), lastErr)
		case <-retry:
		case <-tick:
			if pending < maxPending && r.leaderMoved(ctx, group, curAddr) {
				r.log.Debug("leader unanswered, resending to the newer leader", "group", group,
					"addr", curAddr, "leader", r.knownLeader(group), "after", r.attemptTimeout)
				r.resends.Add(1)
				cur = 0 // the unanswered attempt stays pending
				continue
			}
			if e := giveUp(&Error{Code: wire.CodeTimeout, Message: "leader " + curAddr + " unanswered"}, true); e != nil {
				return zero, e
			}
			timer.Reset(max(r.attemptTimeout/10, minRecheck))
		case res := <-results:
			pending--
			if res.err == nil {
				return res.v, nil
			}
			if res.seq != cur {
				continue // an attempt already resent elsewhere failed late
			}
			timer.Stop()
			addr := curAddr
			cur = 0
			err := res.err
			lastErr = err
			class := classify(err)
			switch class {
			case failFatal:
				if ctx.Err() != nil {
					return zero, budgetErr(ctx.Err(), nil)
				}
				if e := giveUp(err, pending > 0); e != nil {
					return zero, e
				}
				return zero, err
			case failRedirect:
				var e *Error
				errors.As(err, &e)
				if e.LeaderHint != "" && e.LeaderHint != addr && redirects < 3 {
					redirects++
					r.setLeader(group, e.LeaderHint)
					continue
				}
				redirects = 0
				r.noteFailed(group, addr, false)
			case failNotSent:
				r.noteFailed(group, addr, isTransport(err))
			case failMaybe:
				if isTransport(err) {
					r.noteFailed(group, addr, true)
				}
				if e := giveUp(err, true); e != nil {
					return zero, e
				}
				maybe++
				if maybe > maxMaybe {
					return zero, err
				}
				r.resends.Add(1)
			}
			if class != failMaybe {
				if e := giveUp(err, pending > 0); e != nil {
					return zero, e
				}
			}
			if !bo.wait(ctx) {
				return zero, budgetErr(ctx.Err(), lastErr)
			}
			if r.leaderAddr(group) == "" || classify(err) == failRedirect {
				_ = r.refreshLeaders(ctx)
			}
		}
	}
}

// findLeader returns where the next attempt goes, asking the NameServer
// when nothing is known ("" and why when still nothing is known).
func (r *router) findLeader(ctx context.Context, group string) (string, error) {
	if addr := r.leaderAddr(group); addr != "" {
		return addr, nil
	}
	err := r.refreshLeaders(ctx)
	if addr := r.leaderAddr(group); addr != "" {
		return addr, nil
	}
	if err == nil {
		err = fmt.Errorf("%w: group %s", ErrNoLeader, group)
	}
	return "", err
}

// leaderMoved asks the NameServer for group's leader (bounded by one
// attempt timeout) after a request to addr went unanswered, and reports
// whether a different node now leads. If so addr is suspect: probes skip
// it and a NameServer still naming it at an older term is not believed,
// until it answers again (a NotLeader hint naming it, or a newer term).
func (r *router) leaderMoved(ctx context.Context, group, addr string) bool {
	cctx, cancel := context.WithTimeout(ctx, r.attemptTimeout)
	defer cancel()
	_ = r.refreshLeaders(cctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.groups[group]
	if st == nil || st.leader == "" || st.leader == addr {
		return false
	}
	st.failed, st.failedTerm = addr, st.term
	return true
}

// callResp allocates a fresh response of resp's type for one attempt, so
// concurrent attempts never decode into the same value (nil stays nil).
func callResp(resp any) any {
	if resp == nil {
		return nil
	}
	return reflect.New(reflect.TypeOf(resp).Elem()).Interface()
}

// setResp copies the winning attempt's response into resp.
func setResp(resp, won any) {
	if resp != nil && won != nil {
		reflect.ValueOf(resp).Elem().Set(reflect.ValueOf(won).Elem())
	}
}
