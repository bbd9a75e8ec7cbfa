package dashboard

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rmq-dev/rmq/client"
)

// originJSON is where a retried or dead-lettered message was first stored.
type originJSON struct {
	Topic   string `json:"topic"`
	QueueID uint32 `json:"queue_id"`
	Offset  uint64 `json:"offset"`
}

// messageJSON is a stored message. Body holds the body as text when it is
// valid UTF-8 (BodyEncoding "text"), else base64 ("base64").
type messageJSON struct {
	MsgID          string            `json:"msg_id"`
	Topic          string            `json:"topic"`
	BrokerGroup    string            `json:"broker_group"`
	QueueID        uint32            `json:"queue_id"`
	Offset         *uint64           `json:"offset"` // null while pending
	Pending        string            `json:"pending,omitempty"`
	StoreTime      time.Time         `json:"store_time,omitzero"`
	BornTime       time.Time         `json:"born_time,omitzero"`
	Tags           string            `json:"tags,omitempty"`
	Keys           []string          `json:"keys"`
	Properties     map[string]string `json:"properties"`
	ReconsumeTimes int               `json:"reconsume_times"`
	RetryOf        *originJSON       `json:"retry_of,omitempty"`
	Body           string            `json:"body"`
	BodyEncoding   string            `json:"body_encoding"`
	BodyBytes      int               `json:"body_bytes"`
}

func messageView(m *client.MessageExt, pending string) messageJSON {
	v := messageJSON{MsgID: m.MsgID, Topic: m.Queue.Topic, BrokerGroup: m.Queue.Group, QueueID: m.Queue.QueueID,
		Pending: pending, StoreTime: m.StoreTime, BornTime: m.BornTime, Tags: m.Tags, Keys: append([]string{}, m.Keys...),
		Properties: map[string]string{}, ReconsumeTimes: m.ReconsumeTimes, BodyBytes: len(m.Body)}
	if v.Topic == "" {
		v.Topic = m.Topic
	}
	if pending == "" {
		off := m.QueueOffset
		v.Offset = &off
	}
	for k, val := range m.Properties {
		v.Properties[k] = val
	}
	if m.RetryOf != nil {
		v.RetryOf = &originJSON{Topic: m.RetryOf.Topic, QueueID: m.RetryOf.QueueID, Offset: m.RetryOf.Offset}
	}
	if utf8.Valid(m.Body) {
		v.Body, v.BodyEncoding = string(m.Body), "text"
	} else {
		v.Body, v.BodyEncoding = base64.StdEncoding.EncodeToString(m.Body), "base64"
	}
	return v
}

func foundView(fs []client.FoundMessage) []messageJSON {
	out := []messageJSON{}
	for _, f := range fs {
		out = append(out, messageView(f.MessageExt, f.Pending))
	}
	return out
}

// checkMsgID accepts a message ID as rmq prints them: 32 hex characters.
func checkMsgID(id string) error {
	if b, err := hex.DecodeString(id); err != nil || len(b) == 0 {
		return errors.New("message id " + id + ": want the hex id rmq prints (32 characters)")
	}
	return nil
}

// getMessages is the message query: ?id=ID, ?topic=T&key=K, or
// ?topic=T&since=S[&until=U] (since defaults to 1h ago), each with
// ?limit=N per broker group (default 100, at most 1024).
func (s *Server) getMessages(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	q := r.URL.Query()
	limit, err := intParam(r, "limit", 100, 1024)
	if err != nil {
		return 0, nil, err
	}
	if id := q.Get("id"); id != "" {
		return s.messagesByID(ctx, cl.admin, id)
	}
	topic := q.Get("topic")
	if topic == "" {
		return 0, nil, &fieldError{"topic", "required (or give id)"}
	}
	if err := client.ValidateTopic(topic); err != nil {
		return 0, nil, &fieldError{"topic", clientMessage(err)}
	}
	if key := q.Get("key"); key != "" {
		if strings.Contains(key, " ") {
			return 0, nil, &fieldError{"key", "one key, without spaces"}
		}
		fs, err := cl.admin.MessagesByKey(ctx, topic, key, limit)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, foundView(fs), nil
	}
	now := s.cfg.Now()
	since, until := now.Add(-time.Hour), now.Add(time.Second) // until is exclusive: include this instant
	if v := q.Get("since"); v != "" {
		if since, err = parseTime("since", v, now, true); err != nil {
			return 0, nil, err
		}
	}
	if v := q.Get("until"); v != "" {
		if until, err = parseTime("until", v, now, false); err != nil {
			return 0, nil, err
		}
	}
	if !until.After(since) {
		return 0, nil, &fieldError{"until", "must be after since"}
	}
	fs, err := cl.admin.MessagesByTime(ctx, topic, since, until, limit)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, foundView(fs), nil
}

func (s *Server) messagesByID(ctx context.Context, a *client.Admin, id string) (int, any, error) {
	if err := checkMsgID(id); err != nil {
		return 0, nil, &fieldError{"id", err.Error()}
	}
	fs, err := a.MessageByID(ctx, strings.ToUpper(id))
	if err != nil {
		return 0, nil, err
	}
	if len(fs) == 0 {
		return 0, nil, &notFoundError{"message", id}
	}
	return http.StatusOK, foundView(fs), nil
}

func (s *Server) getMessage(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	return s.messagesByID(ctx, cl.admin, r.PathValue("id"))
}

// getTrace returns a message's trace records, oldest first
// (?trace_topic=, default RMQ_SYS_TRACE_TOPIC); [] when it was not traced.
func (s *Server) getTrace(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	id := strings.ToUpper(r.PathValue("id"))
	if err := checkMsgID(id); err != nil {
		return 0, nil, &fieldError{"id", err.Error()}
	}
	topic := r.URL.Query().Get("trace_topic")
	if topic != "" {
		if err := client.ValidateTopic(topic); err != nil {
			return 0, nil, &fieldError{"trace_topic", clientMessage(err)}
		}
	}
	recs, err := cl.admin.MessageTrace(ctx, id, topic)
	if err != nil {
		return 0, nil, err
	}
	if recs == nil {
		recs = []client.TraceRecord{}
	}
	return http.StatusOK, recs, nil
}

type sendRequest struct {
	Topic       string            `json:"topic"`
	Body        string            `json:"body"`
	BodyBase64  string            `json:"body_base64"` // instead of body, for binary bodies
	Tags        string            `json:"tags"`
	Keys        []string          `json:"keys"`
	Properties  map[string]string `json:"properties"`
	ShardingKey string            `json:"sharding_key"`
	DelayMS     int64             `json:"delay_ms"`
}

type sendResponse struct {
	MsgID       string    `json:"msg_id"`
	Topic       string    `json:"topic"`
	BrokerGroup string    `json:"broker_group"`
	QueueID     uint32    `json:"queue_id"`
	Offset      uint64    `json:"offset"`
	StoreTime   time.Time `json:"store_time,omitzero"`
	DeliverAt   time.Time `json:"deliver_at,omitzero"`
}

func (s *Server) postMessage(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	var req sendRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if err := client.ValidateTopic(req.Topic); err != nil {
		return 0, nil, &fieldError{"topic", clientMessage(err)}
	}
	body := []byte(req.Body)
	if req.BodyBase64 != "" {
		if req.Body != "" {
			return 0, nil, &fieldError{"body_base64", "give body or body_base64, not both"}
		}
		b, err := base64.StdEncoding.DecodeString(req.BodyBase64)
		if err != nil {
			return 0, nil, &fieldError{"body_base64", "not base64"}
		}
		body = b
	}
	for _, k := range req.Keys {
		if k == "" || strings.ContainsAny(k, " \t\n") {
			return 0, nil, &fieldError{"keys", "a key is non-empty and has no spaces"}
		}
	}
	if req.DelayMS < 0 {
		return 0, nil, &fieldError{"delay_ms", "negative"}
	}
	p, err := s.auth.producer(r, cl)
	if err != nil {
		return 0, nil, err
	}
	res, err := p.Send(ctx, &client.Message{Topic: req.Topic, Tags: req.Tags, Keys: req.Keys, Properties: req.Properties,
		Body: body, ShardingKey: req.ShardingKey, Delay: time.Duration(req.DelayMS) * time.Millisecond})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, sendResponse{MsgID: res.MsgID, Topic: res.Topic, BrokerGroup: res.Group, QueueID: res.QueueID,
		Offset: res.QueueOffset, StoreTime: res.StoreTime, DeliverAt: res.DeliverAt}, nil
}

// txJSON is an open transaction (a half message not yet committed or
// rolled back).
type txJSON struct {
	messageJSON
	ProducerGroup string    `json:"producer_group"`
	AgeMS         int64     `json:"age_ms"`
	Checks        int       `json:"checks"`
	LastCheck     time.Time `json:"last_check,omitzero"`
}

type discardedJSON struct {
	BrokerGroup string    `json:"broker_group"`
	Topic       string    `json:"topic"`
	QueueID     uint32    `json:"queue_id"`
	Stored      time.Time `json:"stored"`
	At          time.Time `json:"at"`
	Checks      int       `json:"checks"`
}

type transactionsJSON struct {
	Open             []txJSON        `json:"open"`
	Committed        uint64          `json:"committed"`
	RolledBack       uint64          `json:"rolled_back"`
	BrokerRolledBack uint64          `json:"broker_rolled_back"`
	Discarded        []discardedJSON `json:"discarded"`
}

func (s *Server) getTransactions(ctx context.Context, r *http.Request, cl *clients) (int, any, error) {
	limit, err := intParam(r, "limit", 100, 10000)
	if err != nil {
		return 0, nil, err
	}
	tx, err := cl.admin.Transactions(ctx, limit)
	if err != nil {
		return 0, nil, err
	}
	out := transactionsJSON{Open: []txJSON{}, Committed: tx.Committed, RolledBack: tx.RolledBack,
		BrokerRolledBack: tx.ByBrokerRoll, Discarded: []discardedJSON{}}
	for _, o := range tx.Open {
		out.Open = append(out.Open, txJSON{messageJSON: messageView(o.MessageExt, "transaction"), ProducerGroup: o.ProducerGroup,
			AgeMS: o.Age.Milliseconds(), Checks: o.Checks, LastCheck: o.LastCheck})
	}
	for _, d := range tx.Discarded {
		out.Discarded = append(out.Discarded, discardedJSON{BrokerGroup: d.Group, Topic: d.Topic, QueueID: d.QueueID,
			Stored: d.Stored, At: d.At, Checks: d.Checks})
	}
	return http.StatusOK, out, nil
}
