package broker

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rmq-dev/rmq/compat"
)

// TestRemotingQueryMessage: QUERY_MESSAGE by key and by unique key, as
// RocketMQ's queryMsgByKey / queryMsgByUniqueKey send it.
func TestRemotingQueryMessage(t *testing.T) {
	_, c := remotingNode(t)
	for i := range 3 {
		props := map[string]string{compat.PropKeys: fmt.Sprint("order-", i%2), compat.PropUniqKey: fmt.Sprintf("7F000001000000000000000000000%03d", i)}
		wantCode(t, sendV1(t, c, "q", 0, props, []byte(fmt.Sprint("b", i)), 0), compat.RespSuccess)
	}
	resp := call(t, c, compat.ReqQueryMessage, map[string]string{"topic": "q", "key": "order-0", "maxNum": "10", "beginTimestamp": "0", "endTimestamp": "9223372036854775807"}, nil)
	wantCode(t, resp, compat.RespSuccess)
	var bodies []string
	for b := resp.Body; len(b) > 0; {
		m, n, err := compat.DecodeMessageExt(b)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(m.Body))
		b = b[n:]
	}
	if strings.Join(bodies, ",") != "b2,b0" {
		t.Fatalf("by key order-0: %v, want newest first b2,b0", bodies)
	}
	m, _, err := compat.DecodeMessageExt(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	uniq := m.Properties[compat.PropUniqKey]
	if uniq != "7F000001000000000000000000000002" {
		t.Fatalf("UNIQ_KEY %q", uniq)
	}
	resp = call(t, c, compat.ReqQueryMessage, map[string]string{"topic": "q", "key": uniq, "maxNum": "1", "_UNIQUE_KEY_QUERY": "true"}, nil)
	wantCode(t, resp, compat.RespSuccess)
	if m2, _, err := compat.DecodeMessageExt(resp.Body); err != nil || string(m2.Body) != "b2" {
		t.Fatalf("by unique key %s: %+v %v", uniq, m2, err)
	}
	resp = call(t, c, compat.ReqQueryMessage, map[string]string{"topic": "q", "key": "nope"}, nil)
	wantCode(t, resp, compat.RespQueryNotFound)
	resp = call(t, c, compat.ReqQueryMessage, map[string]string{"topic": "q", "key": "zz", "_UNIQUE_KEY_QUERY": "true"}, nil)
	if resp.Code == compat.RespSuccess || !strings.Contains(resp.Remark, "hex") {
		t.Fatalf("a malformed unique key: %d %q", resp.Code, resp.Remark)
	}
}
