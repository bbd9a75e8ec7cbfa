package dashboard

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rmq-dev/rmq/client"
)

// clientMessage is a client error's explanation without its prefixes.
func clientMessage(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Message != "" {
		return ce.Message
	}
	return strings.TrimPrefix(err.Error(), "client: ")
}

func boolParam(r *http.Request, name string, def bool) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &fieldError{name, "want true or false, got " + strconv.Quote(v)}
	}
	return b, nil
}

// intParam reads a non-negative integer query parameter up to max.
func intParam(r *http.Request, name string, def, max int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > max {
		return 0, &fieldError{name, "want an integer from 0 to " + strconv.Itoa(max) + ", got " + strconv.Quote(v)}
	}
	return n, nil
}

// parseTime reads a point in time: "now", "earliest" (if allowed), an
// RFC 3339 time, unix milliseconds, or a duration ago ("10m").
func parseTime(field, v string, now time.Time, earliest bool) (time.Time, error) {
	switch {
	case v == "now":
		return now, nil
	case v == "earliest" && earliest:
		return time.UnixMilli(0), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms >= 0 {
		return time.UnixMilli(ms), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	want := "an RFC 3339 time, unix milliseconds, a duration ago (10m) or now"
	if earliest {
		want += " or earliest"
	}
	return time.Time{}, &fieldError{field, "want " + want + ", got " + strconv.Quote(v)}
}
