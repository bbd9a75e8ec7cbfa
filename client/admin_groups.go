package client

import (
	"context"
	"slices"
	"strings"
)

// namedGroups checks that each of names (empty ones skipped, duplicates
// dropped) is a registered broker group and returns them sorted.
func (a *Admin) namedGroups(ctx context.Context, names []string) ([]string, error) {
	known, err := a.router.clusterGroups(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range names {
		g = strings.TrimSpace(g)
		if g == "" || slices.Contains(out, g) {
			continue
		}
		if !slices.Contains(known, g) {
			return nil, invalidf("broker group %q is not registered (registered: %s)", g, strings.Join(known, ", "))
		}
		out = append(out, g)
	}
	if len(out) == 0 {
		return nil, invalidf("no broker group named")
	}
	slices.Sort(out)
	return out, nil
}

// SplitGroups splits a comma-separated list of broker groups (as rmq
// topic create --broker-group a,b takes it) for TopicSpec.Groups.
func SplitGroups(list string) []string {
	var out []string
	for _, g := range strings.Split(list, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}
