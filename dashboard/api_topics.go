package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rmq-dev/rmq/client"
)

// topicPlacement is a topic on one broker group.
type topicPlacement struct {
	BrokerGroup string    `json:"broker_group"`
	Queues      uint32    `json:"queues"`
	Perm        uint8     `json:"perm"` // 4 read, 2 write, 6 both
	CreatedAt   time.Time `json:"created_at,omitzero"`
}

// topicJSON is a topic in GET /api/v1/topics and /api/v1/topics/{topic}.
type topicJSON struct {
	Name string `json:"name"`
	// System: a retry (%RETRY%), dead-letter (%DLQ%) or RMQ_SYS_ topic.
	System       bool             `json:"system"`
	Queues       uint32           `json:"queues"` // over every broker group
	Perm         uint8            `json:"perm"`   // of the first broker group
	BrokerGroups []topicPlacement `json:"broker_groups"`
	// Messages is the stored count (max - min offset, summed over queues);
	// MaxOffsetSum the sum of the queues' max offsets, which grows by one
	// per message: two polls give the topic's rate. LastStoreTime is the
	// newest message's. Absent when the status call failed (StatusError).
	Messages      uint64    `json:"messages"`
	MaxOffsetSum  uint64    `json:"max_offset_sum"`
	Delayed       int       `json:"delayed"`
	LastStoreTime time.Time `json:"last_store_time,omitzero"`
	StatusError   string    `json:"status_error,omitempty"`
	// SampledAt is when the offsets were read (server clock), for rates.
	SampledAt time.Time `json:"sampled_at"`
}

// queueJSON is one queue in GET /api/v1/topics/{topic}.
type queueJSON struct {
	BrokerGroup   string    `json:"broker_group"`
	QueueID       uint32    `json:"queue_id"`
	MinOffset     uint64    `json:"min_offset"`
	MaxOffset     uint64    `json:"max_offset"` // next offset to be assigned
	Messages      uint64    `json:"messages"`
	Delayed       int       `json:"delayed"`
	LastStoreTime time.Time `json:"last_store_time,omitzero"`
}

type topicDetail struct {
	topicJSON
	QueueList []queueJSON `json:"queue_list"`
}

func isSystemTopic(name string) bool {
	return strings.HasPrefix(name, "%RETRY%") || strings.HasPrefix(name, "%DLQ%") || strings.HasPrefix(name, "RMQ_SYS_")
}

// topicsByName folds ListTopics' per-broker-group rows into topics.
func topicsByName(infos []client.TopicInfo) []*topicJSON {
	var out []*topicJSON
	byName := map[string]*topicJSON{}
	for _, ti := range infos {
		t := byName[ti.Name]
		if t == nil {
			t = &topicJSON{Name: ti.Name, System: isSystemTopic(ti.Name), Perm: ti.Perm, BrokerGroups: []topicPlacement{}}
			byName[ti.Name] = t
			out = append(out, t)
		}
		t.Queues += ti.Queues
		t.BrokerGroups = append(t.BrokerGroups, topicPlacement{BrokerGroup: ti.Group, Queues: ti.Queues, Perm: ti.Perm, CreatedAt: ti.CreatedAt})
	}
	return out
}

// fillStatus adds t's offsets and returns its queues.
func (s *Server) fillStatus(ctx context.Context, a *client.Admin, t *topicJSON) ([]queueJSON, error) {
	qs, err := a.TopicStatus(ctx, t.Name)
	t.SampledAt = s.cfg.Now().UTC().Truncate(time.Millisecond)
	if err != nil {
		t.StatusError = err.Error()
		return nil, err
	}
	out := []queueJSON{}
	for _, q := range qs {
		n := q.MaxOffset - q.MinOffset
		t.Messages += n
		t.MaxOffsetSum += q.MaxOffset
		t.Delayed += q.Delayed
		if q.LastStoreTime.After(t.LastStoreTime) {
			t.LastStoreTime = q.LastStoreTime
		}
		out = append(out, queueJSON{BrokerGroup: q.Queue.Group, QueueID: q.Queue.QueueID, MinOffset: q.MinOffset,
			MaxOffset: q.MaxOffset, Messages: n, Delayed: q.Delayed, LastStoreTime: q.LastStoreTime})
	}
	return out, nil
}

// getTopics lists topics with their offsets. ?system=false leaves the
// retry, dead-letter and RMQ_SYS_ topics out.
func (s *Server) getTopics(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	withSystem, err := boolParam(r, "system", true)
	if err != nil {
		return 0, nil, err
	}
	infos, err := cl.admin.ListTopics(ctx)
	if err != nil {
		return 0, nil, err
	}
	out := []*topicJSON{}
	for _, t := range topicsByName(infos) {
		if t.System && !withSystem {
			continue
		}
		_, _ = s.fillStatus(ctx, cl.admin, t) // a failure is in t.StatusError
		out = append(out, t)
	}
	return http.StatusOK, out, nil
}

func (s *Server) findTopic(ctx context.Context, a *client.Admin, name string) (*topicJSON, error) {
	if err := client.ValidateTopic(name); err != nil {
		return nil, &fieldError{"topic", clientMessage(err)}
	}
	infos, err := a.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range topicsByName(infos) {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, &notFoundError{"topic", name}
}

func (s *Server) getTopic(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	t, err := s.findTopic(ctx, cl.admin, r.PathValue("topic"))
	if err != nil {
		return 0, nil, err
	}
	qs, err := s.fillStatus(ctx, cl.admin, t)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, topicDetail{topicJSON: *t, QueueList: qs}, nil
}

type createTopicRequest struct {
	Name        string `json:"name"`
	Queues      uint32 `json:"queues"`       // default 8
	Perm        uint8  `json:"perm"`         // default 6
	BrokerGroup string `json:"broker_group"` // default every group
}

func (s *Server) postTopic(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	var req createTopicRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if err := client.ValidateTopic(req.Name); err != nil {
		return 0, nil, &fieldError{"name", clientMessage(err)}
	}
	if req.Queues > 1024 {
		return 0, nil, &fieldError{"queues", fmt.Sprintf("%d: want 1 to 1024", req.Queues)}
	}
	if err := checkPerm(req.Perm, true); err != nil {
		return 0, nil, err
	}
	infos, err := cl.admin.CreateTopic(ctx, client.TopicSpec{Name: req.Name, Queues: req.Queues, Perm: req.Perm, Group: req.BrokerGroup})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, topicsByName(infos)[0], nil
}

type updateTopicRequest struct {
	Queues      *uint32 `json:"queues"`
	Perm        *uint8  `json:"perm"`
	BrokerGroup string  `json:"broker_group"`
}

func (s *Server) patchTopic(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	name := r.PathValue("topic")
	if err := client.ValidateTopic(name); err != nil {
		return 0, nil, &fieldError{"topic", clientMessage(err)}
	}
	var req updateTopicRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	switch {
	case req.Queues == nil && req.Perm == nil:
		return 0, nil, &fieldError{"queues", "set queues or perm (or both)"}
	case req.Queues != nil && (*req.Queues < 1 || *req.Queues > 1024):
		return 0, nil, &fieldError{"queues", fmt.Sprintf("%d: want 1 to 1024", *req.Queues)}
	case req.Perm != nil:
		if err := checkPerm(*req.Perm, false); err != nil {
			return 0, nil, err
		}
	}
	infos, err := cl.admin.UpdateTopic(ctx, client.TopicUpdate{Name: name, Queues: req.Queues, Perm: req.Perm, Group: req.BrokerGroup})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, topicsByName(infos)[0], nil
}

func (s *Server) deleteTopic(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	name := r.PathValue("topic")
	if err := client.ValidateTopic(name); err != nil {
		return 0, nil, &fieldError{"topic", clientMessage(err)}
	}
	if err := cl.admin.DeleteTopic(ctx, name); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func checkPerm(p uint8, zeroOK bool) error {
	switch {
	case p == 0 && zeroOK, p == 2, p == 4, p == 6:
		return nil
	}
	return &fieldError{"perm", fmt.Sprintf("%d: want 2 (write), 4 (read) or 6 (read and write)", p)}
}
