package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Prefix starts the name of every namespace, link and state file the
// harness creates, so that a leftover is recognisable (ip netns list, ip
// link) and nothing else is ever touched.
const Prefix = "rmqc-"

// Host is the endpoint of the root namespace in a Rule: the NameServer
// and every client, reached by the brokers through the bridge.
const Host = -1

// Action is what a Rule does to the packets it matches.
type Action int

const (
	// Drop discards the packets silently: the sender sees a black hole
	// (retransmits, then a timeout).
	Drop Action = iota
	// Reset answers TCP packets with a RST: connections fail at once.
	Reset
)

func (a Action) String() string {
	if a == Reset {
		return "reset"
	}
	return "drop"
}

// Rule disturbs the packets that endpoint From sends to endpoint To (a
// broker index or Host). One Rule is one direction; Cut makes both.
type Rule struct {
	From, To int
	Action   Action
}

func endpointName(i int) string {
	if i == Host {
		return "host"
	}
	return "n" + strconv.Itoa(i)
}

func (r Rule) String() string {
	return fmt.Sprintf("%s>%s:%s", endpointName(r.From), endpointName(r.To), r.Action)
}

// Cut drops every packet between a and b, both ways.
func Cut(a, b int) []Rule { return []Rule{{From: a, To: b}, {From: b, To: a}} }

// OneWay drops packets from `from` to `to` only; the reverse direction
// still flows. Over TCP a one-way drop stalls the connection (the ACKs or
// the SYN-ACK are lost) but the two sides notice at different times.
func OneWay(from, to int) []Rule { return []Rule{{From: from, To: to}} }

// ResetLink answers every TCP packet between a and b with a reset.
func ResetLink(a, b int) []Rule {
	return []Rule{{From: a, To: b, Action: Reset}, {From: b, To: a, Action: Reset}}
}

// Partition cuts every pair of endpoints in different sides. An endpoint
// in no side keeps all its links.
func Partition(sides ...[]int) []Rule {
	var rules []Rule
	for i, a := range sides {
		for _, b := range sides[i+1:] {
			for _, x := range a {
				for _, y := range b {
					rules = append(rules, Cut(x, y)...)
				}
			}
		}
	}
	return rules
}

// Net is a bridge in the root namespace and one network namespace per
// broker, each joined to the bridge by a veth pair:
//
//	root namespace: NameServer, clients       namespace rmqc-ID-n0
//	  rmqc-ID-br 10.77.X.1/24 ---- rmqc-ID-v0 ==== eth0 10.77.X.11
//	                          ---- rmqc-ID-v1 ==== eth0 10.77.X.12 (rmqc-ID-n1)
//	                          ---- rmqc-ID-v2 ==== eth0 10.77.X.13 (rmqc-ID-n2)
//
// Faults are iptables rules inside the brokers' namespaces only; the root
// namespace's tables are never changed. Net's methods are safe for
// concurrent use.
type Net struct {
	id     string
	subnet int // X of 10.77.X.0/24
	nodes  int
	log    hclog.Logger
	state  string // manifest path

	mu     sync.Mutex // serialises Apply, Heal and Close
	rules  []Rule
	closed bool
}

// manifest lists what one Net created, written before it creates
// anything, so that Sweep can remove it after a crash of its owner.
type manifest struct {
	PID        int       `json:"pid"`
	Created    time.Time `json:"created"`
	Namespaces []string  `json:"namespaces"`
	Links      []string  `json:"links"`
	Locks      []string  `json:"locks"` // subnet lock files
}

func stateDir() string { return filepath.Join(os.TempDir(), "rmqc") }

// run runs an ip or iptables command, stdin optional.
func run(ctx context.Context, stdin []byte, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// Available reports whether this machine can run the harness: root, ip
// and iptables present, and a namespace with its own iptables can be
// created (it creates and removes one). The error wraps ErrUnavailable.
func Available(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root (network namespaces and iptables need it)", ErrUnavailable)
	}
	for _, b := range []string{"ip", "iptables", "iptables-restore"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%w: %s not found: %w", ErrUnavailable, b, err)
		}
	}
	n, err := NewNet(ctx, 1, hclog.NewNullLogger())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	err = n.Apply(ctx, Cut(0, Host))
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// NewNet creates the bridge and nodes namespaces with their addresses.
// On error it removes whatever it created.
func NewNet(ctx context.Context, nodes int, log hclog.Logger) (*Net, error) {
	if nodes < 1 || nodes > 200 {
		return nil, fmt.Errorf("chaos: %d nodes, want 1..200", nodes)
	}
	if err := os.MkdirAll(stateDir(), 0o755); err != nil {
		return nil, err
	}
	n := &Net{nodes: nodes, log: log}
	// A unique id: the manifest is created exclusively, so two runs on
	// this machine never share one.
	var m manifest
	for try := 0; ; try++ {
		if try == 50 {
			return nil, errors.New("chaos: no free run id")
		}
		var b [2]byte
		_, _ = rand.Read(b[:])
		n.id = hex.EncodeToString(b[:])
		n.state = filepath.Join(stateDir(), n.id+".json")
		f, err := os.OpenFile(n.state, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		f.Close()
		if exists(n.bridge()) || nsExists(n.Namespace(0)) {
			os.Remove(n.state) // not ours: another tool's object with our prefix
			continue
		}
		break
	}
	m = manifest{PID: os.Getpid(), Created: time.Now(), Links: []string{n.bridge()}}
	for i := 0; i < nodes; i++ {
		m.Namespaces = append(m.Namespaces, n.Namespace(i))
		m.Links = append(m.Links, n.veth(i))
	}
	if err := n.writeManifest(m); err != nil {
		os.Remove(n.state)
		return nil, err
	}
	if err := n.pickSubnet(ctx, &m); err != nil {
		n.teardown(context.Background(), m)
		return nil, err
	}
	if err := n.create(ctx); err != nil {
		n.teardown(context.Background(), m)
		return nil, err
	}
	n.log.Info("network created", "id", n.id, "subnet", n.Subnet(), "nodes", nodes)
	return n, nil
}

func (n *Net) writeManifest(m manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(n.state, b, 0o644)
}

// pickSubnet takes a 10.77.X.0/24 that no interface or route of this
// machine uses and that no other run holds (a lock file per subnet).
func (n *Net) pickSubnet(ctx context.Context, m *manifest) error {
	for try := 0; try < 100; try++ {
		var b [1]byte
		_, _ = rand.Read(b[:])
		x := 1 + int(b[0])%254
		used, err := subnetUsed(ctx, x)
		if err != nil {
			return err
		}
		if used {
			continue
		}
		lock := filepath.Join(stateDir(), fmt.Sprintf("net-10.77.%d", x))
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(f, n.id)
		f.Close()
		m.Locks = append(m.Locks, lock)
		if err := n.writeManifest(*m); err != nil {
			return err
		}
		n.subnet = x
		return nil
	}
	return errors.New("chaos: no free subnet in 10.77.0.0/16")
}

func subnetUsed(ctx context.Context, x int) (bool, error) {
	pfx := fmt.Sprintf("10.77.%d.", x)
	for _, args := range [][]string{{"-4", "-o", "addr", "show"}, {"-4", "route", "show", "table", "all"}} {
		out, err := output(ctx, "ip", args...)
		if err != nil {
			return false, err
		}
		if strings.Contains(out, pfx) {
			return true, nil
		}
	}
	return false, nil
}

func (n *Net) create(ctx context.Context) error {
	br := n.bridge()
	steps := [][]string{
		{"link", "add", br, "type", "bridge"},
		{"addr", "add", n.HostIP() + "/24", "dev", br},
		{"link", "set", br, "up"},
	}
	for i := 0; i < n.nodes; i++ {
		ns := n.Namespace(i)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"link", "add", n.veth(i), "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"link", "set", n.veth(i), "master", br, "up"},
			[]string{"-n", ns, "addr", "add", n.IP(i) + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", ns, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, nil, "ip", s...); err != nil {
			return err
		}
	}
	return nil
}

// ID is this network's run id, part of every name it created.
func (n *Net) ID() string { return n.id }

// Subnet is the network's 10.77.X.0/24.
func (n *Net) Subnet() string { return fmt.Sprintf("10.77.%d.0/24", n.subnet) }

// HostIP is the root namespace's address on the bridge.
func (n *Net) HostIP() string { return fmt.Sprintf("10.77.%d.1", n.subnet) }

// IP is broker i's address.
func (n *Net) IP(i int) string { return fmt.Sprintf("10.77.%d.%d", n.subnet, 11+i) }

// Namespace is broker i's network namespace.
func (n *Net) Namespace(i int) string { return fmt.Sprintf("%s%s-n%d", Prefix, n.id, i) }

// Names lists every namespace and link the network created.
func (n *Net) Names() (namespaces, links []string) {
	links = append(links, n.bridge())
	for i := 0; i < n.nodes; i++ {
		namespaces = append(namespaces, n.Namespace(i))
		links = append(links, n.veth(i))
	}
	return namespaces, links
}

func (n *Net) bridge() string    { return Prefix + n.id + "-br" }
func (n *Net) veth(i int) string { return fmt.Sprintf("%s%s-v%d", Prefix, n.id, i) }

func (n *Net) ipOf(e int) string {
	if e == Host {
		return n.HostIP()
	}
	return n.IP(e)
}

// Apply replaces every rule in force by rules, in all namespaces at about
// the same moment (one iptables-restore per namespace, concurrently).
func (n *Net) Apply(ctx context.Context, rules []Rule) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	tables := make([][]string, n.nodes) // per namespace: -A lines
	for _, r := range rules {
		if r.From == r.To || r.From < Host || r.To < Host || r.From >= n.nodes || r.To >= n.nodes || (r.From == Host && r.To == Host) {
			return fmt.Errorf("chaos: bad rule %s for %d nodes", r, n.nodes)
		}
		target := "-j DROP"
		if r.Action == Reset {
			// RSTs themselves pass: the other side's rule must not
			// swallow the reset this one sends.
			target = "-p tcp ! --tcp-flags RST RST -j REJECT --reject-with tcp-reset"
		}
		if r.To != Host {
			// At the receiver: it never sees what From sends.
			tables[r.To] = append(tables[r.To], fmt.Sprintf("-A INPUT -s %s %s", n.ipOf(r.From), target))
		} else {
			// Host's tables are not ours: stop the packets at the sender.
			tables[r.From] = append(tables[r.From], fmt.Sprintf("-A OUTPUT -d %s %s", n.HostIP(), target))
		}
	}
	errs := make([]error, n.nodes)
	var wg sync.WaitGroup
	for i := range tables {
		wg.Add(1)
		go func() { // waited for below
			defer wg.Done()
			var b strings.Builder
			b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n")
			for _, l := range tables[i] {
				b.WriteString(l + "\n")
			}
			b.WriteString("COMMIT\n")
			errs[i] = run(ctx, []byte(b.String()), "ip", "netns", "exec", n.Namespace(i), "iptables-restore")
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chaos: apply rules: %w", err)
	}
	n.rules = slices.Clone(rules)
	n.log.Info("network rules", "rules", fmt.Sprint(rules))
	return nil
}

// Heal removes every rule.
func (n *Net) Heal(ctx context.Context) error { return n.Apply(ctx, nil) }

// Rules returns the rules in force.
func (n *Net) Rules() []Rule {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.rules)
}

// Close removes the namespaces, links and state files. Processes inside
// the namespaces must be gone first (Cluster.Close sees to it); any left
// are killed. Idempotent.
func (n *Net) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	m, err := readManifest(n.state)
	if err != nil {
		return err
	}
	err = n.teardown(context.Background(), m)
	n.log.Info("network removed", "id", n.id, "error", err)
	return err
}

// teardown removes what m lists and that still exists, then m itself.
func (n *Net) teardown(ctx context.Context, m manifest) error {
	var errs []error
	for _, ns := range m.Namespaces {
		if !nsExists(ns) {
			continue
		}
		killNamespacePids(ctx, ns)
		if err := run(ctx, nil, "ip", "netns", "delete", ns); err != nil {
			errs = append(errs, err)
		}
	}
	// A veth goes with its peer's namespace, the bridge stays: delete
	// whatever is left, bridge last.
	links := slices.Clone(m.Links)
	slices.Reverse(links)
	for _, l := range links {
		if exists(l) {
			if err := run(ctx, nil, "ip", "link", "delete", l); err != nil && exists(l) {
				errs = append(errs, err)
			}
		}
	}
	for _, l := range m.Locks {
		if err := os.Remove(l); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(n.state); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killNamespacePids SIGKILLs processes still inside one of the harness's
// own namespaces: brokers it started whose parent died before reaping.
func killNamespacePids(ctx context.Context, ns string) {
	out, err := output(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(out) {
		// Never this process: a thread of it may have entered the
		// namespace (tests create sockets there).
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// Wait (bounded) for them to go, or the namespace delete leaves the
	// namespace alive until they do.
	for i := 0; i < 100; i++ {
		out, err := output(ctx, "ip", "netns", "pids", ns)
		if err != nil || strings.TrimSpace(strings.ReplaceAll(out, strconv.Itoa(os.Getpid()), "")) == "" {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond): // polling the kernel
		}
	}
}

func readManifest(path string) (manifest, error) {
	var m manifest
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("chaos: manifest %s: %w", path, err)
	}
	return m, nil
}

func exists(link string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", link))
	return err == nil
}

func nsExists(ns string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", ns))
	return err == nil
}

// Sweep removes what earlier runs of the harness left behind when their
// process died before cleaning up (a test binary killed by its timeout):
// only objects listed in a manifest whose owner process is gone. It
// returns the run ids it removed.
func Sweep(ctx context.Context, log hclog.Logger) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(stateDir(), "*.json"))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, p := range paths {
		m, err := readManifest(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if alive(m.PID) {
			continue
		}
		id := strings.TrimSuffix(filepath.Base(p), ".json")
		n := &Net{id: id, state: p, log: log}
		if err := n.teardown(ctx, m); err != nil {
			errs = append(errs, err)
			continue
		}
		log.Warn("removed a dead run's network", "id", id, "pid", m.PID, "created", m.Created)
		removed = append(removed, id)
	}
	return removed, errors.Join(errs...)
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Leftovers lists namespaces and links with the harness's prefix that
// exist now, whoever made them (for checks after a run).
func Leftovers(ctx context.Context) ([]string, error) {
	var out []string
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), Prefix) {
			out = append(out, "netns "+e.Name())
		}
	}
	links, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if strings.HasPrefix(l.Name(), Prefix) {
			out = append(out, "link "+l.Name())
		}
	}
	return out, nil
}
