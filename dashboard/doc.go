// Package dashboard is rmq's web dashboard and HTTP admin API: one
// net/http server (rmq dashboard, and inside rmq dev) that answers JSON
// under /api/v1/ and serves the page, plain HTML, CSS and JavaScript
// embedded with embed.FS (no build step). The page is a client of the API
// and nothing else: every button is an endpoint listed in API.md.
//
// The API adds no operations of its own: each endpoint decodes its input,
// calls the same client.Admin method the rmq CLI calls (ClusterStatus,
// TransferLeadership, CreateTopic, UpdateTopic, DeleteTopic, ListTopics,
// TopicStatus, ListGroups, LookupGroup, ResetOffsets, DeadLetters,
// ResendDeadLetters, MessageByID, MessagesByKey, MessagesByTime,
// MessageTrace, Transactions) or client.Producer.Send, and encodes the
// answer:
//
//	HTTP request --> auth: credentials --> cached *client.Admin / *client.Producer
//	     |                                    |
//	     '--> decode + check input            '--> wire protocol --> NameServer, brokers
//	          (400 names the field)
//
// Errors are {"error": text, "code": stable code, "field": name on 400};
// classify (errors.go) maps client errors to statuses: 400 bad input, 401
// no or refused credentials, 404 unknown topic, group or message, 409
// conflicts, 503 when no NameServer or leader answers, 502 other cluster
// failures.
//
// Authentication uses the brokers' access control (package acl): each
// request's credentials (HTTP Basic auth, or the session cookie set by
// POST /api/v1/login, which checks them with one broker call) go to
// Config.Admin and Config.Producer, factories called once per distinct
// access key and secret; cmd/rmq's put the keys into the client configs,
// so every call is signed with the caller's keys and the brokers judge
// it. Their clients are cached (at most 64 sets of keys, the oldest
// closed first). A refusal for unknown keys or a bad signature is 401
// (the page asks to log in), a missing permission 403 naming it. Without
// credentials the server uses the factories' ("", "") clients when
// Config.Anonymous is set, else answers 401 and the page shows its login
// form. Sessions live in memory (lost on restart); the cookie is HttpOnly
// and SameSite=Strict, and state-changing requests must be JSON, so
// another site cannot submit them.
//
// Goroutines: Run starts the http.Server and stops it when its ctx ends;
// each request runs on net/http's goroutine with Config.CallTimeout as
// its deadline. Close (after Run) closes the cached clients. Every method
// of Server is safe for concurrent use.
//
// The page (static/) polls the endpoints of the view on screen every 2 s
// and redraws only its tables, so forms keep what is typed; topic rates
// (TPS) come from the change in max_offset_sum between two polls.
package dashboard
