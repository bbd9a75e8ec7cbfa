package client

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// FoundMessage is a message found by an Admin query. Pending is
// "delayed" (not due yet) or "transaction" (an open half message) for a
// message without a queue offset yet.
type FoundMessage struct {
	*MessageExt
	Pending string
}

// MessageByID finds the stored messages with a message ID (32 hex
// characters) in every broker group: one normally, more if a resend
// stored it twice.
func (a *Admin) MessageByID(ctx context.Context, id string) ([]FoundMessage, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) == 0 {
		return nil, invalidf("message id %q is not hex", id)
	}
	groups, err := a.queryGroups(ctx, "")
	if err != nil {
		return nil, err
	}
	return a.query(ctx, groups, wire.QueryMessagesRequest{ID: raw, Max: 16})
}

// MessagesByKey finds topic's messages with key among their keys, newest
// first, up to max per broker group.
func (a *Admin) MessagesByKey(ctx context.Context, topic, key string, max int) ([]FoundMessage, error) {
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	if key == "" || strings.Contains(key, " ") {
		return nil, invalidf("key %q: want one non-empty key without spaces", key)
	}
	groups, err := a.queryGroups(ctx, topic)
	if err != nil {
		return nil, err
	}
	out, err := a.query(ctx, groups, wire.QueryMessagesRequest{Topic: topic, Key: key, Max: max})
	sort.SliceStable(out, func(i, j int) bool { return out[i].StoreTime.After(out[j].StoreTime) })
	return out, err
}

// MessagesByTime lists topic's messages stored in [since, until), up to
// max per broker group, ordered by store time.
func (a *Admin) MessagesByTime(ctx context.Context, topic string, since, until time.Time, max int) ([]FoundMessage, error) {
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	if !until.After(since) {
		return nil, invalidf("empty time range: %s is not before %s", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	groups, err := a.queryGroups(ctx, topic)
	if err != nil {
		return nil, err
	}
	out, err := a.query(ctx, groups, wire.QueryMessagesRequest{Topic: topic, SinceMillis: since.UnixMilli(), UntilMillis: until.UnixMilli(), Max: max})
	sort.SliceStable(out, func(i, j int) bool { return out[i].StoreTime.Before(out[j].StoreTime) })
	return out, err
}

// queryGroups is the broker groups of topic (every group for "").
func (a *Admin) queryGroups(ctx context.Context, topic string) ([]string, error) {
	if topic == "" {
		return a.targetGroups(ctx, "")
	}
	tr, err := a.router.route(ctx, topic, false, 0)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range tr.groups {
		out = append(out, g.Group)
	}
	return out, nil
}

func (a *Admin) query(ctx context.Context, groups []string, req wire.QueryMessagesRequest) ([]FoundMessage, error) {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	var out []FoundMessage
	for _, g := range groups {
		var resp wire.QueryMessagesResponse
		if err := a.router.callLeader(ctx, g, 1, wire.CodeQueryMessages, req, &resp); err != nil {
			return out, fmt.Errorf("broker group %s: %w", g, err)
		}
		for i := range resp.Messages {
			q := &resp.Messages[i]
			out = append(out, FoundMessage{MessageExt: fromStored(&q.Stored, g), Pending: q.Pending})
		}
	}
	return out, nil
}
