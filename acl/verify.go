package acl

import (
	"crypto/hmac"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

// DefaultWindow is how far a signed request's time may be from the
// broker's clock (either way) before it is refused as a replay.
const DefaultWindow = 2 * time.Minute

// WireRequest is what AuthenticateWire needs of an rmq wire request.
type WireRequest struct {
	Remote string     // the connection's remote address, host:port
	Code   uint16     // request code
	Auth   *wire.Auth // nil for an unsigned request
	Body   []byte     // the msgpack body (after the auth block)
}

// AuthenticateWire checks an rmq wire request in this order: the global
// white list, the access key, the account's white list, the signature
// (wire.Sign), then the time window (|now - Timestamp| <= window) and
// returns the account the request acts as.
func (r *Rules) AuthenticateWire(req WireRequest, now time.Time, window time.Duration) (*Account, error) {
	var ak string
	if req.Auth != nil {
		ak = req.Auth.AccessKey
	}
	a, err := r.admit(req.Remote, ak)
	if err != nil {
		return nil, err
	}
	sig := a.signer.Sign(req.Code, req.Auth.Timestamp, req.Body)
	if !hmac.Equal(sig[:], req.Auth.Signature[:]) {
		return nil, deny(ErrSignature, "signature mismatch for access key %q (wrong secret key, or the request was altered)", ak)
	}
	if err := CheckTime(time.UnixMilli(req.Auth.Timestamp), now, window); err != nil {
		return nil, err
	}
	return a, nil
}

// RemotingRequest is what AuthenticateRemoting needs of a RocketMQ
// remoting request.
type RemotingRequest struct {
	Remote string
	Ext    map[string]string // extFields, with AccessKey and Signature
	Body   []byte
}

// AuthenticateRemoting checks a RocketMQ 4.x signed request: the white
// lists, then Signature against compat.Signature of the ext fields and
// body. The scheme has no timestamp of its own; callers check one the
// request carries (send's bornTimestamp) with CheckTime.
func (r *Rules) AuthenticateRemoting(req RemotingRequest, now time.Time, window time.Duration) (*Account, error) {
	ak := req.Ext[compat.ExtAccessKey]
	a, err := r.admit(req.Remote, ak)
	if err != nil {
		return nil, err
	}
	got := req.Ext[compat.ExtSignature]
	if got == "" {
		return nil, deny(ErrSignature, "request of access key %q carries no Signature", ak)
	}
	if !compat.VerifySignature(req.Ext, req.Body, a.secret, got) {
		return nil, deny(ErrSignature, "signature mismatch for access key %q (wrong secret key, or the request was altered)", ak)
	}
	return a, nil
}

// admit runs the checks before the signature: the global white list, the
// access key's account and the account's white list.
func (r *Rules) admit(remote, ak string) (*Account, error) {
	addr, err := ParseRemote(remote)
	if err != nil {
		return nil, deny(ErrAddress, "source address %q cannot be checked against the white list", remote)
	}
	if err := r.CheckAddr(addr); err != nil {
		return nil, err
	}
	a, err := r.Account(ak)
	if err != nil {
		return nil, err
	}
	if err := a.CheckAddr(addr); err != nil {
		return nil, err
	}
	return a, nil
}

// CheckTime refuses a request time further than window from now.
func CheckTime(t, now time.Time, window time.Duration) error {
	if d := now.Sub(t); d > window || d < -window {
		return deny(ErrReplay, "request time %s is outside the %s window around broker time %s (replay, or clock skew?)",
			t.UTC().Format(time.RFC3339Nano), window, now.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// Verify reports whether a's secret signs an rmq wire request so: for
// tools and tests that hold an Account.
func (a *Account) Verify(code uint16, auth *wire.Auth, body []byte) bool {
	sig := a.signer.Sign(code, auth.Timestamp, body)
	return hmac.Equal(sig[:], auth.Signature[:])
}
