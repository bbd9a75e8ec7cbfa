package broker

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/rmq-dev/rmq/compat"
)

// QUERY_MESSAGE (12), RocketMQ's queryMsgByKey and, with the ext field
// _UNIQUE_KEY_QUERY=true, queryMsgByUniqueKey: header {topic, key,
// maxNum, beginTimestamp, endTimestamp}; the answer's body is the found
// messages encoded as a pull's, newest first, and its header carries
// indexLastUpdateTimestamp / indexLastUpdatePhyoffset (rmq: the latest
// stored message's time and physical offset it returned; 0 without
// results). Messages outside [beginTimestamp, endTimestamp] (store time)
// are left out when the range is given. No result is QUERY_NOT_FOUND (22).

func (n *Node) remotingQueryMessage(_ context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	topic, key := h.str("topic"), h.str("key")
	maxNum := h.optI64("maxNum", 32)
	begin, end := h.optI64("beginTimestamp", 0), h.optI64("endTimestamp", 0)
	if h.err != nil {
		return nil, h.err
	}
	var found []QueriedMessage
	if unique, _ := strconv.ParseBool(h.optStr("_UNIQUE_KEY_QUERY")); unique {
		id, err := hex.DecodeString(key)
		if err != nil {
			return nil, &headerError{code: req.Code, err: errString("header field \"key\": a unique key is 32 hex characters")}
		}
		for _, m := range n.MessagesByID(id, int(maxNum)) {
			if m.Topic == topic {
				found = append(found, m)
			}
		}
	} else {
		var err error
		if found, err = n.MessagesByKey(topic, strings.TrimSpace(key), int(maxNum)); err != nil {
			return nil, err
		}
	}
	var msgs []StoredMessage
	for _, m := range found {
		if m.Pending != "" || end > 0 && (m.StoreTime < begin || m.StoreTime > end) {
			continue
		}
		msgs = append(msgs, m.StoredMessage)
	}
	if len(msgs) == 0 {
		return compat.NewResponse(req, compat.RespQueryNotFound, "no message of topic "+topic+" has key "+key), nil
	}
	resp := ok(req)
	resp.SetExt("indexLastUpdateTimestamp", strconv.FormatInt(msgs[0].StoreTime, 10))
	resp.SetExt("indexLastUpdatePhyoffset", strconv.FormatInt(physicalOffset(msgs[0].RaftIndex, msgs[0].Pos), 10))
	resp.Body = n.encodeStored(topic, msgs)
	return resp, nil
}

type errString string

func (e errString) Error() string { return string(e) }
