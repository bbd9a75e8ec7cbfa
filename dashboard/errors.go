package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/wire"
)

// apiError is the JSON body of every error answer.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Field names the request field (JSON key or query parameter) that
	// is wrong, on 400 answers that know it.
	Field string `json:"field,omitempty"`
}

// fieldError is bad input in one named field.
type fieldError struct {
	field, problem string
}

func (e *fieldError) Error() string { return e.field + ": " + e.problem }

// notFoundError is an unknown topic, group or message named by the
// request.
type notFoundError struct {
	kind, name string
}

func (e *notFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.kind, e.name) }

// authError wraps a refusal of the caller's credentials.
type authError struct{ err error }

func (e *authError) Error() string { return "dashboard: credentials refused: " + e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

var errNoProducer = errors.New("dashboard: sending is not enabled on this server")

// classify maps err to an HTTP status and a stable code string (the
// table in API.md).
func classify(err error) (status int, body apiError) {
	body.Error = strings.TrimPrefix(err.Error(), "client: ")
	var fe *fieldError
	var nf *notFoundError
	var ae *authError
	var ce *client.Error
	switch {
	case errors.As(err, &fe):
		return http.StatusBadRequest, apiError{Error: fe.Error(), Code: "invalid_argument", Field: fe.field}
	case errors.As(err, &nf):
		body.Code = nf.kind + "_not_found"
		return http.StatusNotFound, body
	case errors.Is(err, errNoCredentials):
		body.Code = "unauthenticated"
		return http.StatusUnauthorized, body
	case errors.As(err, &ae):
		body.Code = "unauthenticated"
		return http.StatusUnauthorized, body
	case errors.Is(err, errNoProducer):
		body.Code = "not_implemented"
		return http.StatusNotImplemented, body
	case errors.Is(err, errClosed):
		body.Code = "unavailable"
		return http.StatusServiceUnavailable, body
	case errors.Is(err, client.ErrGroupNotFound):
		body.Code = "group_not_found"
		return http.StatusNotFound, body
	case errors.Is(err, client.ErrNoNameServer):
		body.Code = "no_nameserver"
		return http.StatusServiceUnavailable, body
	case errors.Is(err, client.ErrNoLeader):
		body.Code = "no_leader"
		return http.StatusServiceUnavailable, body
	case errors.Is(err, context.DeadlineExceeded):
		body.Code = "timeout"
		return http.StatusServiceUnavailable, body
	case errors.As(err, &ce):
		return clientStatus(ce, body)
	}
	body.Code = "unavailable" // a transport error the client did not type
	return http.StatusBadGateway, body
}

func clientStatus(ce *client.Error, body apiError) (int, apiError) {
	switch ce.Code {
	case wire.CodeInvalidArgument:
		body.Code = "invalid_argument"
		return http.StatusBadRequest, body
	case wire.CodeTopicNotFound:
		body.Code = "topic_not_found"
		return http.StatusNotFound, body
	case wire.CodeTopicExists:
		body.Code = "topic_exists"
		return http.StatusConflict, body
	case wire.CodeGroupModeMismatch:
		body.Code = "group_mode_mismatch"
		return http.StatusConflict, body
	case wire.CodeMessageTooLarge:
		body.Code = "message_too_large"
		return http.StatusRequestEntityTooLarge, body
	case wire.CodeNoPermission:
		body.Code = "no_permission"
		return http.StatusForbidden, body
	case wire.CodeAccessDenied:
		// The broker's access control: keys it does not accept mean "log
		// in (again)"; a missing permission, white list or time window is
		// the caller's keys being refused.
		if m := ce.Message; strings.Contains(m, "carries no access key") || strings.Contains(m, "no account has access key") ||
			strings.Contains(m, "signature mismatch") || strings.Contains(m, "carries no Signature") {
			body.Code = "unauthenticated"
			return http.StatusUnauthorized, body
		}
		body.Code = "access_denied"
		return http.StatusForbidden, body
	case wire.CodeDiskFull:
		body.Code = "disk_full"
		return http.StatusInsufficientStorage, body
	case wire.CodeNotLeader, wire.CodeLeaderNotReady, wire.CodeUnavailable, wire.CodeTimeout:
		body.Code = "unavailable"
		return http.StatusServiceUnavailable, body
	}
	body.Code = "cluster_error"
	return http.StatusBadGateway, body
}
