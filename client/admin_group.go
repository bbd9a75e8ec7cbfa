package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ErrGroupNotFound: no broker group knows the consumer group (it has no
// committed offsets and no live members anywhere). Returned by
// Admin.LookupGroup.
var ErrGroupNotFound = errors.New("client: consumer group not found")

// LookupGroup is DescribeGroup for callers that must tell "unknown group"
// apart from other failures (rmq group describe, the HTTP admin API): a
// group that no broker group lists, or whose description is empty, is
// ErrGroupNotFound (wrapped with its name).
func (a *Admin) LookupGroup(ctx context.Context, group string) (GroupDescription, error) {
	d, err := a.DescribeGroup(ctx, group)
	if err == nil && d.Mode == "" && len(d.Members) == 0 && len(d.Queues) == 0 {
		err = errors.New("client: no members and no offsets")
	}
	if err == nil {
		return d, nil
	}
	if errors.Is(err, ErrInvalidArgument) && ValidateGroup(group) != nil {
		return GroupDescription{}, err // a bad name, not an unknown one
	}
	names, lerr := a.ListGroups(ctx)
	if lerr == nil && !slices.Contains(names, group) {
		return GroupDescription{}, fmt.Errorf("%w: %q", ErrGroupNotFound, group)
	}
	return GroupDescription{}, err
}
