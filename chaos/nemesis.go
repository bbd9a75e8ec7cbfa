package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Schedule is a named nemesis. Each round it injects one fault into the
// cluster, holds it, heals it, and the runner waits until the group is
// whole again before the next round.
type Schedule struct {
	Name string
	Doc  string
	// Nodes is the group size the schedule is meant for (ring and bridge
	// need five to mean what their names say).
	Nodes int
	// Hold is how long a fault lasts by default before it is healed.
	Hold time.Duration
	// Idle: no faults at all; the runner lets the workload run for the
	// whole Duration (a soak).
	Idle bool
	// Storage is the broker storage configuration the schedule needs
	// (Config.Storage); a storage schedule also needs an rmqfault build.
	Storage Storage
	inject  func(ctx context.Context, e *env) (fault, error)
}

// env is what a schedule's inject sees.
type env struct {
	c      *Cluster
	rng    *rand.Rand
	round  int
	leader int // the agreed leader when the round began
}

// fault is one injected fault: heal undoes it. With awaitNewLeader the
// hold ends once another node leads instead of after Hold; with hold,
// once hold returns (an error fails the run).
type fault struct {
	name           string
	heal           func(ctx context.Context) error
	hold           func(ctx context.Context) error
	awaitNewLeader bool
	noHold         bool
}

// leaderLinks applies link (Cut, OneWay, ResetLink) from the leader to
// each follower.
func (e *env) leaderLinks(link func(a, b int) []Rule) []Rule {
	var rules []Rule
	for _, f := range e.others(e.leader) {
		rules = append(rules, link(e.leader, f)...)
	}
	return rules
}

func (e *env) others(x int) []int {
	var out []int
	for i := 0; i < e.c.Nodes(); i++ {
		if i != x {
			out = append(out, i)
		}
	}
	return out
}

func (e *env) shuffled(xs []int) []int {
	xs = slices.Clone(xs)
	e.rng.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	return xs
}

func (e *env) role(i int) string {
	if i == e.leader {
		return "leader"
	}
	return "follower"
}

func (e *env) partition(ctx context.Context, name string, rules []Rule) (fault, error) {
	if err := e.c.Net().Apply(ctx, rules); err != nil {
		return fault{}, err
	}
	return fault{name: name, heal: e.c.Net().Heal}, nil
}

// Schedules lists every schedule, by name.
func Schedules() []Schedule {
	partitionHold := 3 * time.Second
	s := []Schedule{
		{Name: "minority-leader", Nodes: 3, Hold: partitionHold,
			Doc: "the leader is cut from every follower but still reaches the NameServer and the clients",
			inject: func(ctx context.Context, e *env) (fault, error) {
				return e.partition(ctx, fmt.Sprintf("cut leader %s from its followers", NodeID(e.leader)),
					Partition([]int{e.leader}, e.others(e.leader)))
			}},
		{Name: "majority", Nodes: 3, Hold: partitionHold,
			Doc: "a random node (leader or follower) is cut from everything: peers, NameServer and clients; the rest keep a majority",
			inject: func(ctx context.Context, e *env) (fault, error) {
				x := e.rng.IntN(e.c.Nodes())
				return e.partition(ctx, fmt.Sprintf("cut %s (%s) from all", NodeID(x), e.role(x)),
					Partition([]int{x}, append(e.others(x), Host)))
			}},
		{Name: "bridge", Nodes: 5, Hold: partitionHold,
			Doc: "two halves that cannot see each other and one node that sees both; the leader is in a half",
			inject: func(ctx context.Context, e *env) (fault, error) {
				rest := e.shuffled(e.others(e.leader))
				bridge, rest := rest[0], rest[1:]
				a := append([]int{e.leader}, rest[:(len(rest)-1)/2]...)
				b := rest[(len(rest)-1)/2:]
				return e.partition(ctx, fmt.Sprintf("bridge %s between %v and %v", NodeID(bridge), names(a), names(b)), Partition(a, b))
			}},
		{Name: "ring", Nodes: 5, Hold: partitionHold,
			Doc: "every node sees only its two ring neighbours: each sees a majority, no two the same one",
			inject: func(ctx context.Context, e *env) (fault, error) {
				n := e.c.Nodes()
				if n < 4 {
					return fault{}, fmt.Errorf("chaos: ring needs at least 4 nodes, have %d", n)
				}
				order := append([]int{e.leader}, e.shuffled(e.others(e.leader))...)
				var rules []Rule
				for i := 0; i < n; i++ {
					for j := i + 2; j < n; j++ {
						if i == 0 && j == n-1 {
							continue // neighbours across the wrap
						}
						rules = append(rules, Cut(order[i], order[j])...)
					}
				}
				return e.partition(ctx, fmt.Sprintf("ring %v", names(order)), rules)
			}},
		{Name: "reset", Nodes: 3, Hold: partitionHold,
			Doc: "every TCP packet between the leader and its followers is answered with a reset",
			inject: func(ctx context.Context, e *env) (fault, error) {
				return e.partition(ctx, fmt.Sprintf("reset leader %s's links to its followers", NodeID(e.leader)), e.leaderLinks(ResetLink))
			}},
		{Name: "one-way", Nodes: 3, Hold: partitionHold,
			Doc: "the leader's packets to its followers are dropped; theirs to it still arrive",
			inject: func(ctx context.Context, e *env) (fault, error) {
				return e.partition(ctx, fmt.Sprintf("drop leader %s's packets to its followers", NodeID(e.leader)), e.leaderLinks(OneWay))
			}},
		{Name: "pause", Nodes: 3, Hold: partitionHold,
			Doc: "the leader is SIGSTOPped for longer than an election timeout, then SIGCONTed",
			inject: func(ctx context.Context, e *env) (fault, error) {
				l := e.leader
				if err := e.c.Pause(l); err != nil {
					return fault{}, err
				}
				return fault{name: "SIGSTOP leader " + NodeID(l), heal: func(context.Context) error { return e.c.Resume(l) }}, nil
			}},
		{Name: "kill", Nodes: 3,
			Doc: "the leader is SIGKILLed and restarted once another node leads",
			inject: func(ctx context.Context, e *env) (fault, error) {
				l := e.leader
				if err := e.c.Kill(l); err != nil {
					return fault{}, err
				}
				return fault{name: "SIGKILL leader " + NodeID(l), awaitNewLeader: true,
					heal: func(context.Context) error { return e.c.Restart(l) }}, nil
			}},
		{Name: "rolling", Nodes: 3,
			Doc: "each node in turn is stopped with SIGTERM and restarted; the next waits until it caught up",
			inject: func(ctx context.Context, e *env) (fault, error) {
				i := e.round % e.c.Nodes()
				name := fmt.Sprintf("SIGTERM %s (%s)", NodeID(i), e.role(i))
				if err := e.c.Stop(i); err != nil {
					return fault{}, err
				}
				return fault{name: name, noHold: true, heal: func(context.Context) error { return e.c.Restart(i) }}, nil
			}},
		{Name: "none", Nodes: 3, Idle: true,
			Doc: "no faults: the workload alone for the whole duration (a soak)"},
	}
	return append(s, storageSchedules()...)
}

// ScheduleByName finds a schedule; the error wraps ErrUnknownSchedule.
func ScheduleByName(name string) (Schedule, error) {
	var known []string
	for _, s := range Schedules() {
		if s.Name == name {
			return s, nil
		}
		known = append(known, s.Name)
	}
	return Schedule{}, fmt.Errorf("%w %q (known: %v)", ErrUnknownSchedule, name, known)
}

func names(xs []int) []string {
	var out []string
	for _, x := range xs {
		out = append(out, NodeID(x))
	}
	return out
}
