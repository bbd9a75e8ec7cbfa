package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/wire"
)

// TestClassify maps the errors the API can meet to statuses and codes,
// including those the cluster tests do not reach (ACL refusals, a
// group's mode, too large a message).
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{&fieldError{"queues", "bad"}, 400, "invalid_argument"},
		{&client.Error{Code: wire.CodeInvalidArgument, Message: "x"}, 400, "invalid_argument"},
		{errNoCredentials, 401, "unauthenticated"},
		{&authError{io.EOF}, 401, "unauthenticated"},
		{fmt.Errorf("broker group a: %w", &client.Error{Code: wire.CodeNoPermission}), 403, "no_permission"},
		{&client.Error{Code: wire.CodeAccessDenied, Message: "acl: request carries no access key (this broker requires signed requests)"}, 401, "unauthenticated"},
		{&client.Error{Code: wire.CodeAccessDenied, Message: `acl: signature mismatch for access key "a" (wrong secret key, or the request was altered)`}, 401, "unauthenticated"},
		{&client.Error{Code: wire.CodeAccessDenied, Message: `acl: access key "a" has no PUB permission on topic "t"`}, 403, "access_denied"},
		{&client.Error{Code: wire.CodeDiskFull, Message: "disk full"}, 507, "disk_full"},
		{&notFoundError{"topic", "t"}, 404, "topic_not_found"},
		{fmt.Errorf("%w: %q", client.ErrGroupNotFound, "g"), 404, "group_not_found"},
		{fmt.Errorf("broker group a: %w", client.ErrTopicNotFound), 404, "topic_not_found"},
		{client.ErrTopicExists, 409, "topic_exists"},
		{client.ErrGroupModeMismatch, 409, "group_mode_mismatch"},
		{client.ErrMessageTooLarge, 413, "message_too_large"},
		{errNoProducer, 501, "not_implemented"},
		{client.ErrInternal, 502, "cluster_error"},
		{io.ErrUnexpectedEOF, 502, "unavailable"},
		{client.ErrNoNameServer, 503, "no_nameserver"},
		{fmt.Errorf("broker group a: %w", client.ErrNoLeader), 503, "no_leader"},
		{client.ErrNotLeader, 503, "unavailable"},
		{context.DeadlineExceeded, 503, "timeout"},
		{errClosed, 503, "unavailable"},
	} {
		status, body := classify(tc.err)
		if status != tc.status || body.Code != tc.code || body.Error == "" {
			t.Errorf("classify(%v): got %d %+v, want %d %q", tc.err, status, body, tc.status, tc.code)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in       string
		earliest bool
		want     time.Time
		bad      bool
	}{
		{"now", false, now, false},
		{"earliest", true, time.UnixMilli(0), false},
		{"earliest", false, time.Time{}, true},
		{"10m", false, now.Add(-10 * time.Minute), false},
		{"2026-12-01T11:00:00Z", false, now.Add(-time.Hour), false},
		{"1764590400000", false, time.UnixMilli(1764590400000), false},
		{"-5m", false, time.Time{}, true},
		{"soon", true, time.Time{}, true},
	} {
		got, err := parseTime("to", tc.in, now, tc.earliest)
		var fe *fieldError
		switch {
		case tc.bad && !errors.As(err, &fe):
			t.Errorf("parseTime(%q): got %v, %v, want a field error", tc.in, got, err)
		case !tc.bad && (err != nil || !got.Equal(tc.want)):
			t.Errorf("parseTime(%q): got %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
}
