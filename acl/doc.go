// Package acl is rmq's access control, in the manner of RocketMQ 4.x's
// plain ACL: accounts with an access key and a secret key, per-topic
// PUB/SUB and per-group SUB permissions with defaults, an admin flag,
// and source-address white lists, read from a file that is reloaded when
// it changes. The broker (broker/acl.go) asks it about every request on
// its client port, in both protocols; this package knows rules and
// signatures, not topics, queues or connections.
//
// # The rules file
//
// RocketMQ's plain_acl.yml shape, in YAML, or TOML for a name ending in
// .toml (see File for an example). Unknown keys, unknown permission words
// and malformed white-list entries make the file invalid; Compile reports
// every problem. Permissions: "PUB", "SUB", "PUB|SUB" and "DENY".
//
//   - topicPerms "name=PERM" and groupPerms "name=PERM" list resources;
//     others take defaultTopicPerm / defaultGroupPerm (DENY when unset, as
//     in RocketMQ).
//   - %RETRY%g and %DLQ%g are group g's: they need SUB on group g.
//   - admin: true allows admin operations (topic create/update/delete,
//     offset reset, dead-letter read and resend, leadership transfer,
//     transaction listing) and every topic and group not listed; a listed
//     one keeps its listed permission (so "t=DENY" holds for admins too).
//   - White lists restrict: globalWhiteRemoteAddresses (if set) admits
//     only those source addresses for every account, whiteRemoteAddress
//     (if set) only those for that account. Entries: "*", an address, a
//     CIDR prefix, or RocketMQ's IPv4 patterns ("192.168.0.*",
//     "10.1.1-10.*", "192.168.1.{5,7}"); commas separate several. This
//     differs from RocketMQ 4.x, where a white-listed address skips the
//     signature (and, for the global list, every check): rmq never trusts
//     an address alone, so a file written for RocketMQ can only become
//     stricter here, never looser.
//
// # Signatures
//
// The signing primitives live in the protocol leaf packages, so clients
// sign without importing this package: rmq's wire protocol carries an
// auth block (wire.Auth: access key, unix-ms timestamp, HMAC-SHA256 over
// code | timestamp | body, wire.Sign) in frames flagged wire.FlagAuth;
// RocketMQ remoting carries ext fields AccessKey and Signature =
// Base64(HmacSHA1(secret, sorted ext values + body)) (compat.Sign,
// compat.VerifySignature; the Go client leaves SecurityToken out, the Java
// client puts it in, both verify). AuthenticateWire and
// AuthenticateRemoting check, in order: the global white list, the access
// key, the account's white list, the signature, and (rmq protocol) the
// time window: a timestamp further than the window (2m by default) from
// the broker's clock is refused as a replay.
//
// Replay limits: an rmq request can be replayed within its window (rmq
// keeps no nonce cache: at producer rates it would cost more than the
// signature). RocketMQ 4.x signs no time at all: the broker checks the
// window only where the request header has a timestamp (send's
// bornTimestamp, pop's bornTime); a captured pull, heartbeat, offset
// update or ack can be replayed at any time, and because the signature
// covers ext fields and body but not the request code, under another
// code with the same fields. Use TLS where that matters.
//
// # Refusals
//
// Every refusal is a *DeniedError: it wraps ErrDenied and one kind
// (ErrNoAccessKey, ErrUnknownKey, ErrSignature, ErrReplay, ErrAddress,
// ErrPermission), and its message names what is missing, e.g.
// `acl: access key "ak1" has no PUB permission on topic "orders"`. The
// broker answers wire.CodeAccessDenied (client.ErrAccessDenied) or
// remoting NO_PERMISSION (16) with that message.
//
// # Concurrency and reload
//
// Rules is immutable and safe for concurrent use. A Watcher holds the
// current Rules behind an atomic pointer; its Run goroutine (started and
// stopped by its owner through ctx, in the broker the acl-reload loop)
// reads the file every interval and swaps in new rules when the content
// changed and parses. A bad or missing file keeps the old rules and logs
// one error per distinct problem.
//
// The NameServer does not check access (as in RocketMQ): routes and
// cluster state stay readable to anyone who can reach it; brokers check
// every request that reads or writes messages, offsets or topics.
package acl
