package acl

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is. Every refusal is a *DeniedError that wraps
// one of them and ErrDenied.
var (
	// ErrDenied matches every refusal.
	ErrDenied = errors.New("acl: access denied")
	// ErrNoAccessKey: the request is not signed.
	ErrNoAccessKey = errors.New("acl: no access key")
	// ErrUnknownKey: no account has the request's access key.
	ErrUnknownKey = errors.New("acl: unknown access key")
	// ErrSignature: the signature does not match the request.
	ErrSignature = errors.New("acl: signature mismatch")
	// ErrReplay: the request's time is outside the accepted window.
	ErrReplay = errors.New("acl: request time outside the window")
	// ErrAddress: the source address is not in a white list.
	ErrAddress = errors.New("acl: address not in white list")
	// ErrPermission: the account lacks a permission or the admin flag.
	ErrPermission = errors.New("acl: permission missing")
)

// DeniedError is one refused request. Its message names what is missing,
// e.g. `acl: access key "ak1" has no PUB permission on topic "orders"`.
type DeniedError struct {
	Kind   error  // one of the sentinels above (not ErrDenied)
	Reason string // the message after "acl: "
}

func (e *DeniedError) Error() string { return "acl: " + e.Reason }

// Unwrap returns the kind and ErrDenied.
func (e *DeniedError) Unwrap() []error { return []error{e.Kind, ErrDenied} }

func deny(kind error, format string, args ...any) *DeniedError {
	return &DeniedError{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}
