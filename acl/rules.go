package acl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/rmq-dev/rmq/wire"
)

// File is the rules file as written: the shape of RocketMQ 4.x's
// plain_acl.yml, in YAML (.yml, .yaml) or TOML (.toml).
//
//	globalWhiteRemoteAddresses: ["10.0.0.0/8", "192.168.0.*"]
//	accounts:
//	  - accessKey: producer1
//	    secretKey: s3cret-producer1
//	    whiteRemoteAddress: 192.168.1.*
//	    admin: false
//	    defaultTopicPerm: DENY
//	    defaultGroupPerm: SUB
//	    topicPerms: ["orders=PUB", "audit=PUB|SUB", "secret=DENY"]
//	    groupPerms: ["billing=SUB", "other=DENY"]
type File struct {
	GlobalWhiteRemoteAddresses []string `yaml:"globalWhiteRemoteAddresses" toml:"globalWhiteRemoteAddresses"`
	Accounts                   []Entry  `yaml:"accounts" toml:"accounts"`
}

// Entry is one account of File.
type Entry struct {
	AccessKey          string   `yaml:"accessKey" toml:"accessKey"`
	SecretKey          string   `yaml:"secretKey" toml:"secretKey"`
	WhiteRemoteAddress string   `yaml:"whiteRemoteAddress" toml:"whiteRemoteAddress"`
	Admin              bool     `yaml:"admin" toml:"admin"`
	DefaultTopicPerm   string   `yaml:"defaultTopicPerm" toml:"defaultTopicPerm"`
	DefaultGroupPerm   string   `yaml:"defaultGroupPerm" toml:"defaultGroupPerm"`
	TopicPerms         []string `yaml:"topicPerms" toml:"topicPerms"`
	GroupPerms         []string `yaml:"groupPerms" toml:"groupPerms"`
}

// Rules is a compiled rule set. It is immutable and safe for concurrent
// use; a reload builds a new one (Watcher).
type Rules struct {
	global   *AddrSet
	accounts map[string]*Account
}

// Account is one compiled account.
type Account struct {
	AccessKey        string
	Admin            bool
	DefaultTopicPerm Perm
	DefaultGroupPerm Perm
	secret           []byte
	signer           *wire.Signer // wire.Sign with secret, reusing HMAC state
	white            *AddrSet
	topics           map[string]Perm
	groups           map[string]Perm
}

// Load reads and compiles the rules file at path: TOML if its name ends
// in .toml, YAML otherwise.
func Load(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	r, err := Parse(data, formatOf(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func formatOf(path string) string {
	if strings.EqualFold(filepath.Ext(path), ".toml") {
		return "toml"
	}
	return "yaml"
}

// Parse compiles rules from data in format "yaml" or "toml". Unknown keys
// are errors (a misspelt key would otherwise silently grant or refuse).
func Parse(data []byte, format string) (*Rules, error) {
	var f File
	switch format {
	case "toml":
		md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&f)
		if err != nil {
			return nil, fmt.Errorf("acl: parse toml: %w", err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return nil, fmt.Errorf("acl: unknown key %q", und[0].String())
		}
	case "yaml":
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
			return nil, fmt.Errorf("acl: parse yaml: %w", err)
		}
	default:
		return nil, fmt.Errorf("acl: unknown format %q (yaml or toml)", format)
	}
	return Compile(f)
}

// Compile checks f and builds its Rules. It reports every problem, not
// only the first.
func Compile(f File) (*Rules, error) {
	var errs []error
	r := &Rules{accounts: make(map[string]*Account, len(f.Accounts))}
	var err error
	if r.global, err = ParseAddrSet(f.GlobalWhiteRemoteAddresses...); err != nil {
		errs = append(errs, fmt.Errorf("globalWhiteRemoteAddresses: %w", err))
	}
	for i, e := range f.Accounts {
		a, aerrs := compileAccount(e)
		for _, err := range aerrs {
			errs = append(errs, fmt.Errorf("account %d (%q): %w", i+1, e.AccessKey, err))
		}
		if a == nil {
			continue
		}
		if r.accounts[a.AccessKey] != nil {
			errs = append(errs, fmt.Errorf("account %d: access key %q appears twice", i+1, a.AccessKey))
		}
		r.accounts[a.AccessKey] = a
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func compileAccount(e Entry) (*Account, []error) {
	var errs []error
	if e.AccessKey == "" {
		errs = append(errs, errors.New("accessKey is empty"))
	}
	if strings.ContainsAny(e.AccessKey, " \t\r\n") || len(e.AccessKey) > 255 {
		errs = append(errs, errors.New("accessKey must be at most 255 bytes without spaces"))
	}
	if len(e.SecretKey) < 6 {
		errs = append(errs, errors.New("secretKey must be at least 6 characters"))
	}
	a := &Account{
		AccessKey: e.AccessKey, Admin: e.Admin, secret: []byte(e.SecretKey), signer: wire.NewSigner([]byte(e.SecretKey)),
		DefaultTopicPerm: Deny, DefaultGroupPerm: Deny,
		topics: map[string]Perm{}, groups: map[string]Perm{},
	}
	var err error
	if a.white, err = ParseAddrSet(e.WhiteRemoteAddress); err != nil {
		errs = append(errs, fmt.Errorf("whiteRemoteAddress: %w", err))
	}
	if e.DefaultTopicPerm != "" {
		if a.DefaultTopicPerm, err = ParsePerm(e.DefaultTopicPerm); err != nil {
			errs = append(errs, fmt.Errorf("defaultTopicPerm: %w", err))
		}
	}
	if e.DefaultGroupPerm != "" {
		if a.DefaultGroupPerm, err = ParsePerm(e.DefaultGroupPerm); err != nil {
			errs = append(errs, fmt.Errorf("defaultGroupPerm: %w", err))
		}
	}
	for _, tp := range e.TopicPerms {
		name, p, err := parseResourcePerm(tp)
		if err != nil {
			errs = append(errs, fmt.Errorf("topicPerms: %w", err))
			continue
		}
		a.topics[name] = p
	}
	for _, gp := range e.GroupPerms {
		name, p, err := parseResourcePerm(gp)
		if err != nil {
			errs = append(errs, fmt.Errorf("groupPerms: %w", err))
			continue
		}
		a.groups[name] = p
	}
	if e.AccessKey == "" {
		return nil, errs
	}
	return a, errs
}

// Accounts counts the accounts.
func (r *Rules) Accounts() int { return len(r.accounts) }

// CheckAddr refuses a source address outside the global white list (an
// empty list admits every address).
func (r *Rules) CheckAddr(a netip.Addr) error {
	if r.global.Empty() || r.global.Contains(a) {
		return nil
	}
	return deny(ErrAddress, "%s not in white list", a)
}

// Account returns the account of accessKey; an empty key is ErrNoAccessKey,
// an unknown one ErrUnknownKey.
func (r *Rules) Account(accessKey string) (*Account, error) {
	if accessKey == "" {
		return nil, deny(ErrNoAccessKey, "request carries no access key (this broker requires signed requests)")
	}
	a := r.accounts[accessKey]
	if a == nil {
		return nil, deny(ErrUnknownKey, "no account has access key %q", accessKey)
	}
	return a, nil
}

// CheckAddr refuses a source address outside the account's white list
// (none admits every address).
func (a *Account) CheckAddr(addr netip.Addr) error {
	if a.white.Empty() || a.white.Contains(addr) {
		return nil
	}
	return deny(ErrAddress, "%s not in white list of access key %q", addr, a.AccessKey)
}

// Topic checks need (Pub or Sub) on topic. A retry or dead-letter topic
// (%RETRY%g, %DLQ%g) is its group's: it needs SUB on group g, as in
// RocketMQ. A topic listed in topicPerms has that permission; any other
// has DefaultTopicPerm, or everything for an admin.
func (a *Account) Topic(topic string, need Perm) error {
	if g, ok := groupOfTopic(topic); ok {
		return a.Group(g, Sub)
	}
	p, listed := a.topics[topic]
	if !listed {
		if a.Admin {
			return nil
		}
		p = a.DefaultTopicPerm
	}
	if p.Allows(need) {
		return nil
	}
	return deny(ErrPermission, "access key %q has no %s permission on topic %q", a.AccessKey, need, topic)
}

// TopicAny checks PUB or SUB on topic (reading its status).
func (a *Account) TopicAny(topic string) error {
	if a.Topic(topic, Pub) == nil {
		return nil
	}
	if err := a.Topic(topic, Sub); err != nil {
		return deny(ErrPermission, "access key %q has neither PUB nor SUB permission on topic %q", a.AccessKey, topic)
	}
	return nil
}

// Group checks need (SUB) on consumer group g: groupPerms, else
// DefaultGroupPerm, or everything for an admin.
func (a *Account) Group(g string, need Perm) error {
	p, listed := a.groups[g]
	if !listed {
		if a.Admin {
			return nil
		}
		p = a.DefaultGroupPerm
	}
	if p.Allows(need) {
		return nil
	}
	return deny(ErrPermission, "access key %q has no %s permission on group %q", a.AccessKey, need, g)
}

// CheckAdmin refuses op (an admin operation, e.g. "create topic") to an
// account without the admin flag.
func (a *Account) CheckAdmin(op string) error {
	if a.Admin {
		return nil
	}
	return deny(ErrPermission, "access key %q is not admin, which %s needs", a.AccessKey, op)
}

// groupOfTopic returns g for RocketMQ's per-group topics %RETRY%g and %DLQ%g.
func groupOfTopic(topic string) (string, bool) {
	for _, p := range [...]string{"%RETRY%", "%DLQ%"} {
		if g, ok := strings.CutPrefix(topic, p); ok && g != "" {
			return g, true
		}
	}
	return "", false
}
