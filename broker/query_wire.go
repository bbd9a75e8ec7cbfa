package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// rmq-protocol handler of message queries (query.go).

func (n *Node) handleQueryMessages(ctx context.Context, req *wire.QueryMessagesRequest) (any, error) {
	var msgs []QueriedMessage
	resp := &wire.QueryMessagesResponse{}
	switch {
	case len(req.ID) > 0:
		msgs = n.MessagesByID(req.ID, req.Max)
	case req.Key != "":
		var err error
		if msgs, err = n.MessagesByKey(req.Topic, req.Key, req.Max); err != nil {
			return nil, err
		}
	case req.Topic != "" && req.UntilMillis > 0:
		var err error
		if msgs, resp.More, err = n.MessagesByTime(req.Topic, time.UnixMilli(req.SinceMillis), time.UnixMilli(req.UntilMillis), req.Max); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: query by message id, by topic and key, or by topic and time range", ErrInvalidArgument)
	}
	for i := range msgs { // by ID: the topics only now known (acl.go; nil when access control is off)
		if err := readable(ctx, msgs[i].Topic); err != nil {
			return nil, err
		}
	}
	resp.Messages = make([]wire.QueriedMessage, len(msgs))
	for i := range msgs {
		resp.Messages[i] = wire.QueriedMessage{Stored: wireStored(&msgs[i].StoredMessage), Pos: msgs[i].Pos, Pending: msgs[i].Pending}
	}
	return resp, nil
}
