package acl

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

func TestParsePerm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Perm
		err  bool
	}{
		{"PUB", Pub, false},
		{"SUB", Sub, false},
		{"PUB|SUB", Pub | Sub, false},
		{"SUB|PUB", Pub | Sub, false},
		{" pub | sub ", Pub | Sub, false},
		{"ANY", Pub | Sub, false},
		{"DENY", Deny, false},
		{"deny", Deny, false},
		{"", 0, true},
		{"PUBLISH", 0, true},
		{"PUB|", 0, true},
		{"DENY|PUB", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePerm(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("ParsePerm(%q) error %v, want error %v", tc.in, err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("ParsePerm(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestPermAllows(t *testing.T) {
	for _, tc := range []struct {
		p, need Perm
		want    bool
	}{
		{Pub, Pub, true}, {Pub, Sub, false}, {Sub, Sub, true}, {Pub | Sub, Pub, true},
		{Pub | Sub, Sub, true}, {Deny, Pub, false}, {Deny, Sub, false}, {0, Pub, false},
		{Pub, Pub | Sub, false},
	} {
		if got := tc.p.Allows(tc.need); got != tc.want {
			t.Errorf("%v.Allows(%v) = %v, want %v", tc.p, tc.need, got, tc.want)
		}
	}
}

func TestAddrSet(t *testing.T) {
	for _, tc := range []struct {
		entry string
		in    []string
		out   []string
	}{
		{"*", []string{"1.2.3.4", "::1"}, nil},
		{"192.168.0.*", []string{"192.168.0.1", "192.168.0.255"}, []string{"192.168.1.1", "10.0.0.1", "::1"}},
		{"192.168.*", []string{"192.168.7.9"}, []string{"192.169.0.1"}},
		{"10.1.1-10.*", []string{"10.1.1.5", "10.1.10.0"}, []string{"10.1.11.0", "10.1.0.1"}},
		{"192.168.1.{5,7,9}", []string{"192.168.1.5", "192.168.1.9"}, []string{"192.168.1.6"}},
		{"10.0.0.0/8", []string{"10.255.0.1"}, []string{"11.0.0.1"}},
		{"127.0.0.1", []string{"127.0.0.1", "::ffff:127.0.0.1"}, []string{"127.0.0.2"}},
		{"fd00::/8", []string{"fd12::1"}, []string{"fe80::1", "10.0.0.1"}},
		{"10.0.0.1, 192.168.1.{1,2}", []string{"10.0.0.1", "192.168.1.2"}, []string{"192.168.1.3"}},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			s, err := ParseAddrSet(tc.entry)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tc.in {
				if !s.Contains(netip.MustParseAddr(a)) {
					t.Errorf("%s not in %q, want in", a, tc.entry)
				}
			}
			for _, a := range tc.out {
				if s.Contains(netip.MustParseAddr(a)) {
					t.Errorf("%s in %q, want out", a, tc.entry)
				}
			}
		})
	}
	for _, bad := range []string{"192.168.0", "300.1.1.1", "1.2.3.4.5", "10.0.0.0/33", "a.b.c.d", "1.2.3.9-2", "1.2.3.{1,x}"} {
		if _, err := ParseAddrSet(bad); err == nil {
			t.Errorf("ParseAddrSet(%q) = nil error, want one", bad)
		}
	}
	if s, _ := ParseAddrSet(); !s.Empty() {
		t.Error("an empty list is not Empty")
	}
}

const testRules = `
globalWhiteRemoteAddresses:
  - 127.0.0.1
  - 10.0.0.0/8
accounts:
  - accessKey: producer
    secretKey: producer-secret
    topicPerms: ["orders=PUB", "audit=PUB|SUB", "secret=DENY"]
  - accessKey: consumer
    secretKey: consumer-secret
    defaultTopicPerm: SUB
    defaultGroupPerm: DENY
    topicPerms: ["secret=DENY"]
    groupPerms: ["billing=SUB"]
  - accessKey: admin
    secretKey: admin-secret
    admin: true
    topicPerms: ["frozen=SUB"]
  - accessKey: office
    secretKey: office-secret
    whiteRemoteAddress: 10.1.*
    defaultTopicPerm: PUB|SUB
`

func mustParse(t testing.TB, text, format string) *Rules {
	t.Helper()
	r, err := Parse([]byte(text), format)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPermissions(t *testing.T) {
	r := mustParse(t, testRules, "yaml")
	acct := func(ak string) *Account {
		a, err := r.Account(ak)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name string
		err  error
		want string // substring of the refusal
	}{
		{"producer pub orders", acct("producer").Topic("orders", Pub), ""},
		{"producer sub orders", acct("producer").Topic("orders", Sub), `access key "producer" has no SUB permission on topic "orders"`},
		{"producer pub unlisted", acct("producer").Topic("other", Pub), `no PUB permission on topic "other"`},
		{"producer pub secret", acct("producer").Topic("secret", Pub), `no PUB permission on topic "secret"`},
		{"producer sub audit", acct("producer").Topic("audit", Sub), ""},
		{"producer status audit", acct("producer").TopicAny("orders"), ""},
		{"producer status other", acct("producer").TopicAny("other"), `neither PUB nor SUB permission on topic "other"`},
		{"consumer sub default", acct("consumer").Topic("anything", Sub), ""},
		{"consumer pub default", acct("consumer").Topic("anything", Pub), `no PUB permission on topic "anything"`},
		{"consumer sub denied", acct("consumer").Topic("secret", Sub), `no SUB permission on topic "secret"`},
		{"consumer group", acct("consumer").Group("billing", Sub), ""},
		{"consumer other group", acct("consumer").Group("other", Sub), `access key "consumer" has no SUB permission on group "other"`},
		{"consumer retry topic", acct("consumer").Topic("%RETRY%billing", Pub), ""},
		{"consumer other retry topic", acct("consumer").Topic("%RETRY%other", Sub), `no SUB permission on group "other"`},
		{"consumer dlq", acct("consumer").Topic("%DLQ%billing", Sub), ""},
		{"consumer not admin", acct("consumer").CheckAdmin("creating a topic"), `access key "consumer" is not admin, which creating a topic needs`},
		{"admin everything", acct("admin").Topic("x", Pub), ""},
		{"admin groups", acct("admin").Group("x", Sub), ""},
		{"admin listed", acct("admin").Topic("frozen", Pub), `access key "admin" has no PUB permission on topic "frozen"`},
		{"admin admin", acct("admin").CheckAdmin("x"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				if tc.err != nil {
					t.Fatalf("got %v, want allowed", tc.err)
				}
				return
			}
			if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("got %v, want a refusal naming %q", tc.err, tc.want)
			}
			if !errors.Is(tc.err, ErrPermission) || !errors.Is(tc.err, ErrDenied) {
				t.Fatalf("%v is not ErrPermission and ErrDenied", tc.err)
			}
		})
	}
}

func TestTOMLSameAsYAML(t *testing.T) {
	r := mustParse(t, `
globalWhiteRemoteAddresses = ["127.0.0.1"]
[[accounts]]
accessKey = "producer"
secretKey = "producer-secret"
topicPerms = ["orders=PUB"]
`, "toml")
	a, err := r.Account("producer")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Topic("orders", Pub); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckAddr(netip.MustParseAddr("10.0.0.1")); !errors.Is(err, ErrAddress) {
		t.Fatalf("got %v, want ErrAddress", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, format, want string
	}{
		{"unknown key", "acounts: []", "yaml", "acounts"},
		{"bad perm", "accounts: [{accessKey: a, secretKey: 123456, topicPerms: [\"t=PUBLISH\"]}]", "yaml", `"PUBLISH" is not PUB, SUB or DENY`},
		{"no equals", "accounts: [{accessKey: a, secretKey: 123456, groupPerms: [\"g\"]}]", "yaml", `"g" is not name=PERM`},
		{"short secret", "accounts: [{accessKey: a, secretKey: abc}]", "yaml", "secretKey must be at least 6"},
		{"no key", "accounts: [{secretKey: abcdef}]", "yaml", "accessKey is empty"},
		{"twice", "accounts: [{accessKey: a, secretKey: abcdef}, {accessKey: a, secretKey: abcdef}]", "yaml", `"a" appears twice`},
		{"bad white", "globalWhiteRemoteAddresses: [\"1.2.3\"]", "yaml", "globalWhiteRemoteAddresses"},
		{"toml unknown", "[[accounts]]\naccessKey = \"a\"\nsecretKey = \"abcdef\"\nadmn = true\n", "toml", "admn"},
		{"not yaml", "accounts: [", "yaml", "parse yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text), tc.format)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
	// Every problem is reported, not only the first.
	_, err := Parse([]byte("accounts: [{accessKey: a, secretKey: x, defaultTopicPerm: NOPE}]"), "yaml")
	if err == nil || !strings.Contains(err.Error(), "secretKey") || !strings.Contains(err.Error(), "defaultTopicPerm") {
		t.Fatalf("got %v, want both problems", err)
	}
	if r, err := Parse(nil, "yaml"); err != nil || r.Accounts() != 0 {
		t.Fatalf("empty file: %v, %v accounts; want no error, 0", err, r)
	}
}

func TestAuthenticateWire(t *testing.T) {
	r := mustParse(t, testRules, "yaml")
	now := time.UnixMilli(1_800_000_000_000)
	body := []byte{0x80} // an empty msgpack map
	signed := func(ak, sk string, code uint16, ts time.Time, body []byte) *wire.Auth {
		return &wire.Auth{AccessKey: ak, Timestamp: ts.UnixMilli(), Signature: wire.Sign([]byte(sk), code, ts.UnixMilli(), body)}
	}
	for _, tc := range []struct {
		name   string
		remote string
		auth   *wire.Auth
		body   []byte
		kind   error
		want   string
	}{
		{"ok", "127.0.0.1:5000", signed("producer", "producer-secret", 10, now, body), body, nil, ""},
		{"ok at window edge", "127.0.0.1:5000", signed("producer", "producer-secret", 10, now.Add(-DefaultWindow), body), body, nil, ""},
		{"unsigned", "127.0.0.1:5000", nil, body, ErrNoAccessKey, "no access key"},
		{"unknown key", "127.0.0.1:5000", signed("nobody", "x", 10, now, body), body, ErrUnknownKey, `no account has access key "nobody"`},
		{"wrong secret", "127.0.0.1:5000", signed("producer", "guess", 10, now, body), body, ErrSignature, `signature mismatch for access key "producer"`},
		{"other code", "127.0.0.1:5000", signed("producer", "producer-secret", 11, now, body), body, ErrSignature, "signature mismatch"},
		{"altered body", "127.0.0.1:5000", signed("producer", "producer-secret", 10, now, body), []byte{0x81}, ErrSignature, "signature mismatch"},
		{"old", "127.0.0.1:5000", signed("producer", "producer-secret", 10, now.Add(-3*time.Minute), body), body, ErrReplay, "outside the 2m0s window"},
		{"future", "127.0.0.1:5000", signed("producer", "producer-secret", 10, now.Add(3*time.Minute), body), body, ErrReplay, "(replay"},
		{"global white list", "192.168.0.5:5000", signed("producer", "producer-secret", 10, now, body), body, ErrAddress, "192.168.0.5 not in white list"},
		{"account white list", "10.2.0.1:5000", signed("office", "office-secret", 10, now, body), body, ErrAddress, `10.2.0.1 not in white list of access key "office"`},
		{"account white list ok", "10.1.0.1:5000", signed("office", "office-secret", 10, now, body), body, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := r.AuthenticateWire(WireRequest{Remote: tc.remote, Code: 10, Auth: tc.auth, Body: tc.body}, now, DefaultWindow)
			if tc.kind == nil {
				if err != nil || a == nil {
					t.Fatalf("got %v, want the account", err)
				}
				return
			}
			if !errors.Is(err, tc.kind) || !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %v naming %q", err, tc.kind, tc.want)
			}
		})
	}
}

// TestRemotingSignature checks the RocketMQ 4.x algorithm against a
// signature computed by hand: values sorted by key, then the body.
func TestRemotingSignature(t *testing.T) {
	ext := map[string]string{"topic": "T", "b": "2", "AccessKey": "ak", "a": "1"}
	content := compat.SignatureContent(ext, []byte("body"), false)
	if string(content) != "ak12Tbody" {
		t.Fatalf("content %q, want %q", content, "ak12Tbody")
	}
	// HmacSHA1("secret1", "ak12Tbody"), base64, from openssl:
	// printf ak12Tbody | openssl dgst -sha1 -hmac secret1 -binary | base64
	const want = "GDQjmYiM5c7dmfWKgEhpSKp7Nts="
	if got := compat.Signature(content, []byte("secret1")); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}

	r := mustParse(t, testRules, "yaml")
	req := compat.NewRequest(compat.ReqPullMessage, map[string]string{"topic": "orders", "consumerGroup": "billing"}, nil)
	compat.Sign(req, "consumer", "consumer-secret")
	if _, err := r.AuthenticateRemoting(RemotingRequest{Remote: "127.0.0.1:1", Ext: req.Ext, Body: req.Body}, time.Now(), DefaultWindow); err != nil {
		t.Fatal(err)
	}
	// rocketmq-client-go leaves a SecurityToken out of the content.
	tok := map[string]string{"topic": "orders", "AccessKey": "consumer", "SecurityToken": "tk"}
	tok["Signature"] = compat.Signature(compat.SignatureContent(tok, nil, true), []byte("consumer-secret"))
	if _, err := r.AuthenticateRemoting(RemotingRequest{Remote: "127.0.0.1:1", Ext: tok}, time.Now(), DefaultWindow); err != nil {
		t.Fatalf("Go client's token form: %v", err)
	}
	req.Ext["topic"] = "secret"
	if _, err := r.AuthenticateRemoting(RemotingRequest{Remote: "127.0.0.1:1", Ext: req.Ext}, time.Now(), DefaultWindow); !errors.Is(err, ErrSignature) {
		t.Fatalf("altered ext field: got %v, want ErrSignature", err)
	}
	delete(req.Ext, compat.ExtSignature)
	if _, err := r.AuthenticateRemoting(RemotingRequest{Remote: "127.0.0.1:1", Ext: req.Ext}, time.Now(), DefaultWindow); !errors.Is(err, ErrSignature) {
		t.Fatalf("no signature: got %v, want ErrSignature", err)
	}
	if _, err := r.AuthenticateRemoting(RemotingRequest{Remote: "127.0.0.1:1", Ext: map[string]string{"topic": "x"}}, time.Now(), DefaultWindow); !errors.Is(err, ErrNoAccessKey) {
		t.Fatalf("unsigned: got %v, want ErrNoAccessKey", err)
	}
}

func TestWatcherReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("accounts: [{accessKey: a, secretKey: abcdef}]")
	w, err := NewWatcher(WatcherConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := w.Reload(); changed || err != nil {
		t.Fatalf("unchanged file: changed %v, %v", changed, err)
	}
	write("accounts: [{accessKey: a, secretKey: abcdef}, {accessKey: b, secretKey: abcdef}]")
	if changed, err := w.Reload(); !changed || err != nil || w.Rules().Accounts() != 2 {
		t.Fatalf("changed file: changed %v, %v, %d accounts; want 2", changed, err, w.Rules().Accounts())
	}
	write("accounts: [{accessKey: a, secretKey: abc")
	if changed, err := w.Reload(); changed || err == nil || !strings.Contains(err.Error(), "keeping the previous rules") {
		t.Fatalf("bad file: changed %v, %v", changed, err)
	}
	if w.Rules().Accounts() != 2 {
		t.Fatalf("bad file replaced the rules: %d accounts", w.Rules().Accounts())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reload(); err == nil || w.Rules().Accounts() != 2 {
		t.Fatalf("removed file: %v, %d accounts", err, w.Rules().Accounts())
	}

	// Run picks a change up by itself.
	write("accounts: []")
	ctx, cancel := context.WithCancel(t.Context())
	reloaded := make(chan struct{}, 1) // told by Run's "reloaded" log line
	log := hclog.New(&hclog.LoggerOptions{Output: lineWriter(func(line string) {
		if strings.Contains(line, "access control rules reloaded") {
			select {
			case reloaded <- struct{}{}:
			default:
			}
		}
	})})
	w2, err := NewWatcher(WatcherConfig{Path: path, Interval: 5 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); w2.Run(ctx) }()
	defer func() { cancel(); <-done }()
	write("accounts: [{accessKey: c, secretKey: abcdef}]")
	select {
	case <-reloaded:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not reload the changed file within 10s")
	}
	if n := w2.Rules().Accounts(); n != 1 {
		t.Fatalf("after Run's reload: %d accounts, want 1", n)
	}

	if _, err := NewWatcher(WatcherConfig{Path: filepath.Join(t.TempDir(), "missing.yml")}); err == nil {
		t.Fatal("NewWatcher of a missing file: nil error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(testRules), false)
	f.Add([]byte("accounts: [{accessKey: a, secretKey: abcdef, whiteRemoteAddress: \"10.{1,2}.*\"}]"), false)
	f.Add([]byte("[[accounts]]\naccessKey = \"a\"\nsecretKey = \"abcdef\"\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, isTOML bool) {
		format := "yaml"
		if isTOML {
			format = "toml"
		}
		r, err := Parse(data, format)
		if err != nil {
			return
		}
		for ak, a := range r.accounts {
			if ak == "" || a.AccessKey != ak {
				t.Fatalf("account key %q holds %q", ak, a.AccessKey)
			}
			_ = a.Topic("t", Pub)
			_ = a.Group("g", Sub)
		}
		_ = r.CheckAddr(netip.MustParseAddr("10.1.2.3"))
	})
}

func FuzzAddrSet(f *testing.F) {
	for _, s := range []string{"*", "192.168.0.*", "10.1-2.{3,4}.*", "fd00::/8", "1.2.3.4,5.6.7.8", "{,}", "1.{2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := ParseAddrSet(s)
		if err != nil {
			return
		}
		_ = set.Contains(netip.MustParseAddr("192.168.0.1"))
		_ = set.Contains(netip.MustParseAddr("::1"))
	})
}

// lineWriter calls f with each write (hclog writes a line at a time).
type lineWriter func(string)

func (f lineWriter) Write(p []byte) (int, error) { f(string(p)); return len(p), nil }
