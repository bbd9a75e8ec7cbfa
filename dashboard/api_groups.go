package dashboard

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/rmq-dev/rmq/client"
)

// groupQueueJSON is a consumer group's progress on one queue.
type groupQueueJSON struct {
	Topic          string `json:"topic"`
	BrokerGroup    string `json:"broker_group"`
	QueueID        uint32 `json:"queue_id"`
	BrokerOffset   uint64 `json:"broker_offset"`
	ConsumerOffset uint64 `json:"consumer_offset"`
	Lag            uint64 `json:"lag"`
	Owner          string `json:"owner,omitempty"`
	InFlight       int    `json:"in_flight"`
	Visible        int    `json:"to_redeliver"`
}

// groupJSON is a consumer group in GET /api/v1/groups and
// /api/v1/groups/{group}. Retry and dead-letter depths: PendingRetries
// wait for their backoff, RetryLag are due in the %RETRY% queue,
// DeadLetters sit in %DLQ%.
type groupJSON struct {
	Group          string           `json:"group"`
	Mode           string           `json:"mode"` // push, pop, broadcast...; "" without live members
	Members        []string         `json:"members"`
	Topics         []string         `json:"topics"`
	Lag            uint64           `json:"lag"` // over every queue, the retry queue included
	RetryLag       uint64           `json:"retry_lag"`
	PendingRetries int              `json:"pending_retries"`
	DeadLetters    uint64           `json:"dead_letters"`
	Queues         []groupQueueJSON `json:"queues,omitempty"`
	Error          string           `json:"error,omitempty"` // in the list, when this group could not be described
}

func groupView(d client.GroupDescription, queues bool) groupJSON {
	g := groupJSON{Group: d.Group, Mode: d.Mode, Members: append([]string{}, d.Members...), Topics: []string{},
		PendingRetries: d.PendingRetries, DeadLetters: d.DeadLetters}
	seen := map[string]bool{}
	for _, q := range d.Queues {
		g.Lag += q.Lag
		if q.Queue.Topic == "%RETRY%"+d.Group {
			g.RetryLag += q.Lag
		}
		if !seen[q.Queue.Topic] {
			seen[q.Queue.Topic] = true
			g.Topics = append(g.Topics, q.Queue.Topic)
		}
		if queues {
			g.Queues = append(g.Queues, groupQueueJSON{Topic: q.Queue.Topic, BrokerGroup: q.Queue.Group, QueueID: q.Queue.QueueID,
				BrokerOffset: q.BrokerOffset, ConsumerOffset: q.ConsumerOffset, Lag: q.Lag, Owner: q.Owner,
				InFlight: q.InFlight, Visible: q.Visible})
		}
	}
	if queues && g.Queues == nil {
		g.Queues = []groupQueueJSON{}
	}
	sort.Strings(g.Topics)
	return g
}

func (s *Server) getGroups(ctx context.Context, _ *http.Request, cl *clients) (int, any, error) {
	names, err := cl.admin.ListGroups(ctx)
	if err != nil {
		return 0, nil, err
	}
	out := []groupJSON{}
	for _, name := range names {
		d, err := cl.admin.DescribeGroup(ctx, name)
		if err != nil {
			out = append(out, groupJSON{Group: name, Members: []string{}, Topics: []string{}, Error: err.Error()})
			continue
		}
		out = append(out, groupView(d, false))
	}
	return http.StatusOK, out, nil
}

func groupName(r *http.Request) (string, error) {
	g := r.PathValue("group")
	if err := client.ValidateGroup(g); err != nil {
		return "", &fieldError{"group", clientMessage(err)}
	}
	return g, nil
}

func (s *Server) getGroup(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	name, err := groupName(r)
	if err != nil {
		return 0, nil, err
	}
	d, err := cl.admin.LookupGroup(ctx, name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, groupView(d, true), nil
}

type resetRequest struct {
	Topic string `json:"topic"`
	// To is "earliest", "now", an RFC 3339 time, unix milliseconds or a
	// duration ago ("10m").
	To string `json:"to"`
}

type resetOffsetJSON struct {
	Topic       string `json:"topic"`
	BrokerGroup string `json:"broker_group"`
	QueueID     uint32 `json:"queue_id"`
	Offset      uint64 `json:"offset"`
}

type resetResponse struct {
	Group   string            `json:"group"`
	Topic   string            `json:"topic"`
	Offsets []resetOffsetJSON `json:"offsets"`
}

func (s *Server) postResetOffset(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	name, err := groupName(r)
	if err != nil {
		return 0, nil, err
	}
	var req resetRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if err := client.ValidateTopic(req.Topic); err != nil {
		return 0, nil, &fieldError{"topic", clientMessage(err)}
	}
	if req.To == "" {
		return 0, nil, &fieldError{"to", "required: earliest, now, an RFC 3339 time, unix milliseconds or a duration ago"}
	}
	at, err := parseTime("to", req.To, s.cfg.Now(), true)
	if err != nil {
		return 0, nil, err
	}
	offs, err := cl.admin.ResetOffsets(ctx, name, req.Topic, at)
	if err != nil {
		return 0, nil, err
	}
	out := resetResponse{Group: name, Topic: req.Topic, Offsets: []resetOffsetJSON{}}
	for q, o := range offs {
		out.Offsets = append(out.Offsets, resetOffsetJSON{Topic: q.Topic, BrokerGroup: q.Group, QueueID: q.QueueID, Offset: o})
	}
	sort.Slice(out.Offsets, func(i, j int) bool {
		a, b := out.Offsets[i], out.Offsets[j]
		if a.BrokerGroup != b.BrokerGroup {
			return a.BrokerGroup < b.BrokerGroup
		}
		return a.QueueID < b.QueueID
	})
	return http.StatusOK, out, nil
}

// deadLetterJSON is a dead-lettered message.
type deadLetterJSON struct {
	messageJSON
	Failures int `json:"failures"`
}

func (s *Server) getDLQ(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	name, err := groupName(r)
	if err != nil {
		return 0, nil, err
	}
	limit, err := intParam(r, "limit", 100, 10000)
	if err != nil {
		return 0, nil, err
	}
	dls, err := cl.admin.DeadLetters(ctx, name, limit)
	if errors.Is(err, client.ErrTopicNotFound) {
		// No dead-letter topic: nothing was ever dead-lettered, which is
		// an empty list for a group that exists.
		if _, lerr := cl.admin.LookupGroup(ctx, name); lerr != nil {
			return 0, nil, lerr
		}
		dls, err = nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	out := []deadLetterJSON{}
	for _, d := range dls {
		out = append(out, deadLetterJSON{messageJSON: messageView(d.MessageExt, ""), Failures: d.Failures})
	}
	return http.StatusOK, out, nil
}

type resendRequest struct {
	IDs []string `json:"ids"`
	All bool     `json:"all"`
}

type resendResponse struct {
	Group  string `json:"group"`
	Resent int    `json:"resent"`
}

func (s *Server) postResend(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	name, err := groupName(r)
	if err != nil {
		return 0, nil, err
	}
	var req resendRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if len(req.IDs) == 0 && !req.All {
		return 0, nil, &fieldError{"ids", "name the dead letters to resend, or set all"}
	}
	for _, id := range req.IDs {
		if err := checkMsgID(id); err != nil {
			return 0, nil, &fieldError{"ids", err.Error()}
		}
	}
	n, err := cl.admin.ResendDeadLetters(ctx, name, req.IDs, req.All)
	if errors.Is(err, client.ErrTopicNotFound) {
		return 0, nil, &notFoundError{"dead_letter_queue", name}
	}
	if err != nil {
		return 0, nil, err
	}
	if n == 0 && len(req.IDs) > 0 {
		return 0, nil, &notFoundError{"message", req.IDs[0]}
	}
	return http.StatusOK, resendResponse{Group: name, Resent: n}, nil
}
