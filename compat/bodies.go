package compat

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TopicRouteData is the GET_ROUTEINFO_BY_TOPIC response body.
type TopicRouteData struct {
	OrderTopicConf string       `json:"orderTopicConf,omitempty"`
	QueueDatas     []QueueData  `json:"queueDatas"`
	BrokerDatas    []BrokerData `json:"brokerDatas"`
}

// MarshalJSON writes nil lists as [] (the Go client fails on a null
// queueDatas).
func (t TopicRouteData) MarshalJSON() ([]byte, error) {
	type plain TopicRouteData
	p := plain(t)
	if p.QueueDatas == nil {
		p.QueueDatas = []QueueData{}
	}
	if p.BrokerDatas == nil {
		p.BrokerDatas = []BrokerData{}
	}
	return json.Marshal(p)
}

// QueueData is one broker group's queues of a topic.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSysFlag   int    `json:"topicSysFlag"`
}

// BrokerData is one broker group: brokerId (0 = master) -> "ip:port".
type BrokerData struct {
	Cluster     string           `json:"cluster"`
	BrokerName  string           `json:"brokerName"`
	BrokerAddrs map[int64]string `json:"brokerAddrs"`
}

// MarshalJSON writes a nil BrokerAddrs as {} (the Go client's route
// decoder slices the brokerAddrs text and panics on null or a missing
// field).
func (b BrokerData) MarshalJSON() ([]byte, error) {
	type plain BrokerData
	p := plain(b)
	if p.BrokerAddrs == nil {
		p.BrokerAddrs = map[int64]string{}
	}
	return json.Marshal(p)
}

// HeartbeatData is the HEART_BEAT request body.
type HeartbeatData struct {
	ClientID        string         `json:"clientID"`
	ProducerDataSet []ProducerData `json:"producerDataSet"`
	ConsumerDataSet []ConsumerData `json:"consumerDataSet"`
}

// ProducerData names one producer group of a client.
type ProducerData struct {
	GroupName string `json:"groupName"`
}

// ConsumerData is one consumer group of a client.
type ConsumerData struct {
	GroupName           string             `json:"groupName"`
	ConsumeType         string             `json:"consumeType"`      // CONSUME_ACTIVELY, CONSUME_PASSIVELY, CONSUME_POP
	MessageModel        string             `json:"messageModel"`     // CLUSTERING, BROADCASTING
	ConsumeFromWhere    string             `json:"consumeFromWhere"` // CONSUME_FROM_LAST_OFFSET, ...
	SubscriptionDataSet []SubscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

// SubscriptionData is one topic subscription of a consumer group.
type SubscriptionData struct {
	ClassFilterMode bool     `json:"classFilterMode"`
	Topic           string   `json:"topic"`
	SubString       string   `json:"subString"`
	TagsSet         []string `json:"tagsSet"`
	CodeSet         []int32  `json:"codeSet"` // tag hash codes; read from JSON strings (Go client) or numbers (Java)
	SubVersion      int64    `json:"subVersion"`
	ExpressionType  string   `json:"expressionType"`
}

// UnmarshalJSON accepts codeSet elements as numbers or numeric strings.
func (s *SubscriptionData) UnmarshalJSON(b []byte) error {
	type plain SubscriptionData
	var aux struct {
		plain
		CodeSet []flexInt32 `json:"codeSet"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*s = SubscriptionData(aux.plain)
	s.CodeSet = nil
	if aux.CodeSet != nil {
		s.CodeSet = make([]int32, len(aux.CodeSet))
		for i, c := range aux.CodeSet {
			s.CodeSet[i] = int32(c)
		}
	}
	return nil
}

// flexInt32 is an int32 written as a JSON number or a numeric string.
type flexInt32 int32

func (f *flexInt32) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return fmt.Errorf("code %s is not an int32", b)
	}
	*f = flexInt32(n)
	return nil
}

// MessageQueue names one queue.
type MessageQueue struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
}

// LockBatchRequest is the LOCK_BATCH_MQ / UNLOCK_BATCH_MQ request body.
type LockBatchRequest struct {
	ConsumerGroup  string         `json:"consumerGroup"`
	ClientID       string         `json:"clientId"`
	MQSet          []MessageQueue `json:"mqSet"`
	OnlyThisBroker bool           `json:"onlyThisBroker"`
}

// LockBatchResponse is the LOCK_BATCH_MQ response body.
type LockBatchResponse struct {
	LockOKMQSet []MessageQueue `json:"lockOKMQSet"`
}

// ConsumerList is the GET_CONSUMER_LIST_BY_GROUP response body.
type ConsumerList struct {
	ConsumerIDList []string `json:"consumerIdList"`
}

// ClusterInfo is the GET_BROKER_CLUSTER_INFO response body.
type ClusterInfo struct {
	BrokerAddrTable  map[string]BrokerData `json:"brokerAddrTable"`
	ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
}

// TopicList is the GET_ALL_TOPIC_LIST_FROM_NAMESERVER (and
// GET_TOPICS_BY_CLUSTER) response body.
type TopicList struct {
	TopicList  []string `json:"topicList"`
	BrokerAddr string   `json:"brokerAddr,omitempty"`
}

// DecodeJSON is json.Unmarshal that also accepts fastjson's unquoted
// integer object keys ({0:"a"}), which Java peers send for Map<Long,...>.
// Errors wrap ErrMalformed and name the body type.
func DecodeJSON(b []byte, v any) error {
	err := json.Unmarshal(b, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if q, ok := quoteIntKeys(b); ok {
			if err2 := json.Unmarshal(q, v); err2 == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %T body: %w", ErrMalformed, v, err)
}

// quoteIntKeys rewrites unquoted integer object keys as strings. It
// reports false if it changed nothing. It does not validate the rest.
func quoteIntKeys(b []byte) ([]byte, bool) {
	var (
		out     bytes.Buffer
		stack   []byte // '{' or '['
		wantKey bool
		changed bool
	)
	out.Grow(len(b) + 16)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return nil, false
			}
			out.Write(b[i : j+1])
			i = j
			wantKey = false
			continue
		case c == '{' || c == '[':
			stack = append(stack, c)
			wantKey = c == '{'
		case c == '}' || c == ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			wantKey = false
		case c == ',':
			wantKey = len(stack) > 0 && stack[len(stack)-1] == '{'
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case wantKey && (c == '-' || (c >= '0' && c <= '9')):
			j := i + 1
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			out.WriteByte('"')
			out.Write(b[i:j])
			out.WriteByte('"')
			i = j - 1
			wantKey = false
			changed = true
			continue
		default:
			wantKey = false
		}
		out.WriteByte(c)
	}
	return out.Bytes(), changed
}

// BatchAckBody is the BATCH_ACK_MESSAGE request body (Java's
// BatchAckMessageRequestBody).
type BatchAckBody struct {
	BrokerName string     `json:"brokerName"`
	Acks       []BatchAck `json:"acks"`
}

// BatchAck acks messages of one queue received by one pop (one check
// point): the offsets StartOffset+i for each bit i set in BitSet. Java
// writes fastjson's short names (c, t, r, so, q, rq, pt, it, b); the long
// ones (consumerGroup, topic, ...) are accepted too, as its
// alternateNames are. Retry is "0" for the topic itself, "1" or "2" for
// its pop retry topic.
type BatchAck struct {
	ConsumerGroup string `json:"c"`
	Topic         string `json:"t"`
	Retry         string `json:"r"`
	StartOffset   int64  `json:"so"`
	QueueID       int32  `json:"q"`
	ReviveQueueID int32  `json:"rq"`
	PopTime       int64  `json:"pt"`
	InvisibleTime int64  `json:"it"`
	BitSet        BitSet `json:"b"`
}

// UnmarshalJSON reads the short or the long field names.
func (a *BatchAck) UnmarshalJSON(b []byte) error {
	var v struct { // each key once: short and long names are distinct fields
		C             *string `json:"c"`
		ConsumerGroup *string `json:"consumerGroup"`
		T             *string `json:"t"`
		Topic         *string `json:"topic"`
		R             *string `json:"r"`
		Retry         *string `json:"retry"`
		SO            *int64  `json:"so"`
		StartOffset   *int64  `json:"startOffset"`
		Q             *int32  `json:"q"`
		QueueID       *int32  `json:"queueId"`
		RQ            *int32  `json:"rq"`
		ReviveQueueID *int32  `json:"reviveQueueId"`
		PT            *int64  `json:"pt"`
		PopTime       *int64  `json:"popTime"`
		IT            *int64  `json:"it"`
		InvisibleTime *int64  `json:"invisibleTime"`
		B             *BitSet `json:"b"`
		BitSet        *BitSet `json:"bitSet"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*a = BatchAck{
		ConsumerGroup: either(v.C, v.ConsumerGroup), Topic: either(v.T, v.Topic), Retry: either(v.R, v.Retry),
		StartOffset: either(v.SO, v.StartOffset), QueueID: either(v.Q, v.QueueID), ReviveQueueID: either(v.RQ, v.ReviveQueueID),
		PopTime: either(v.PT, v.PopTime), InvisibleTime: either(v.IT, v.InvisibleTime), BitSet: either(v.B, v.BitSet),
	}
	return nil
}

// either is *a if set, else *b if set, else T's zero value.
func either[T any](a, b *T) T {
	var zero T
	switch {
	case a != nil:
		return *a
	case b != nil:
		return *b
	}
	return zero
}

// BitSet is a java.util.BitSet as BatchAck carries it: the bytes of
// BitSet.toByteArray (bit i is bit i%8 of byte i/8), which fastjson
// writes as a base64 string. An array of byte values is accepted too.
type BitSet []byte

// UnmarshalJSON reads a base64 string (padded or not), an array of
// numbers -128..255, or null.
func (s *BitSet) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*s = nil
		return nil
	case len(b) > 0 && b[0] == '[':
		var vals []int16
		if err := json.Unmarshal(b, &vals); err != nil {
			return fmt.Errorf("bitSet: %w", err)
		}
		out := make([]byte, len(vals))
		for i, v := range vals {
			if v < -128 || v > 255 {
				return fmt.Errorf("bitSet: byte %d is %d", i, v)
			}
			out[i] = byte(v)
		}
		*s = out
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("bitSet: want a base64 string: %w", err)
	}
	out, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(str, "="))
	if err != nil {
		return fmt.Errorf("bitSet: %w", err)
	}
	*s = out
	return nil
}

// Offsets returns start+i for each bit i set, in order; more than limit
// set bits is an error (a bit set can name millions of offsets).
func (s BitSet) Offsets(start int64, limit int) ([]int64, error) {
	var out []int64
	for i, by := range s {
		for j := range 8 {
			if by&(1<<j) == 0 {
				continue
			}
			if len(out) == limit {
				return nil, fmt.Errorf("bit set names more than %d offsets", limit)
			}
			out = append(out, start+int64(i*8+j))
		}
	}
	return out, nil
}
