package acl

import (
	"errors"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

// FuzzParsePerm: a permission that parses is written (String) as one
// that parses to the same set, and the DENY rule holds.
func FuzzParsePerm(f *testing.F) {
	for _, s := range []string{"PUB", "sub", "PUB|SUB", " SUB | PUB ", "DENY", "ANY", "DENY|PUB", "", "|", "PUB||SUB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePerm(s)
		if err != nil {
			return
		}
		if p == 0 || p&Deny != 0 && p != Deny {
			t.Fatalf("%q parsed to %b", s, p)
		}
		again, err := ParsePerm(p.String())
		if err != nil || again != p {
			t.Fatalf("%q parsed to %v, written %q, which parses to %v (%v)", s, p, p.String(), again, err)
		}
		if name, rp, err := parseResourcePerm("t=" + s); err != nil || name != "t" || rp != p {
			t.Fatalf("t=%q: got %q %v %v", s, name, rp, err)
		}
	})
}

// FuzzAuthenticate runs arbitrary requests (remote address, access key,
// timestamp, signature, body) through both protocols' authentication
// with the test rules. Every refusal is a *DeniedError; an admitted wire
// request carries a valid signature and a time inside the window (a
// fuzzer cannot forge one, so acceptance comes only from the signed
// variant the target builds itself).
func FuzzAuthenticate(f *testing.F) {
	f.Add("127.0.0.1:5000", "producer", int64(0), []byte{}, []byte("body"), true)
	f.Add("10.1.2.3:1", "office", int64(1), []byte{1, 2}, []byte{}, false)
	f.Add("[::ffff:127.0.0.1]:9", "consumer", int64(-1<<40), []byte(nil), []byte{0x80}, true)
	f.Add("bad", "", int64(0), []byte(nil), []byte(nil), false)
	r := mustParse(f, testRules, "yaml")
	secrets := map[string]string{"producer": "producer-secret", "consumer": "consumer-secret", "admin": "admin-secret", "office": "office-secret"}
	now := time.UnixMilli(1_700_000_000_000)
	f.Fuzz(func(t *testing.T, remote, ak string, dt int64, sig, body []byte, sign bool) {
		denied := func(what string, err error) {
			var de *DeniedError
			if !errors.As(err, &de) || !errors.Is(err, ErrDenied) || de.Reason == "" {
				t.Fatalf("%s: refusal %v is not a *DeniedError", what, err)
			}
		}
		ts := now.UnixMilli() + dt%(10*60*1000)
		auth := &wire.Auth{AccessKey: ak, Timestamp: ts}
		copy(auth.Signature[:], sig)
		if secret, ok := secrets[ak]; ok && sign {
			auth.Signature = wire.Sign([]byte(secret), wire.CodeSend, ts, body)
		}
		a, err := r.AuthenticateWire(WireRequest{Remote: remote, Code: wire.CodeSend, Auth: auth, Body: body}, now, DefaultWindow)
		if err != nil {
			denied("wire", err)
		} else if !a.Verify(wire.CodeSend, auth, body) || CheckTime(time.UnixMilli(ts), now, DefaultWindow) != nil {
			t.Fatalf("wire request of %q at %d admitted without a valid signature in the window", ak, ts)
		}
		if _, err := r.AuthenticateWire(WireRequest{Remote: remote, Code: wire.CodeSend, Body: body}, now, DefaultWindow); err == nil {
			t.Fatal("an unsigned wire request was admitted")
		} else {
			denied("unsigned wire", err)
		}
		ext := map[string]string{compat.ExtAccessKey: ak, compat.ExtSignature: string(sig), "topic": "orders"}
		if secret, ok := secrets[ak]; ok && sign {
			ext[compat.ExtSignature] = compat.Signature(compat.SignatureContent(ext, body, true), []byte(secret))
		}
		if _, err := r.AuthenticateRemoting(RemotingRequest{Remote: remote, Ext: ext, Body: body}, now, DefaultWindow); err != nil {
			denied("remoting", err)
		} else if secret := secrets[ak]; !sign || !compat.VerifySignature(ext, body, []byte(secret), ext[compat.ExtSignature]) {
			t.Fatalf("remoting request of %q admitted without a valid signature", ak)
		}
		if addr, err := ParseRemote(remote); err == nil && addr.Is4In6() {
			t.Fatalf("%q parsed to a mapped address %v", remote, addr)
		}
	})
}
