package dashboard

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

//go:embed static
var staticFiles embed.FS

// maxBody bounds a request body: a 4 MiB message in base64, and some.
const maxBody = 8 << 20

// Server is the dashboard and HTTP admin API. New -> Run(ctx) -> Close.
type Server struct {
	cfg  Config
	log  hclog.Logger
	auth *auth
	ln   net.Listener
	mux  *http.ServeMux

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and listens; the server answers once Run is called.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, auth: newAuth(cfg), mux: http.NewServeMux()}
	s.routes()
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("dashboard: listen: %w", err)
		}
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	s.ln = ln
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the page's address, http://host:port/ (https with Config.TLS).
func (s *Server) URL() string {
	if s.cfg.TLS != nil {
		return "https://" + s.Addr() + "/"
	}
	return "http://" + s.Addr() + "/"
}

// Handler is the server's whole HTTP handler (tests mount it on
// httptest.Server).
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves until ctx is done, then shuts the HTTP server down (giving
// requests in flight up to 5s) and returns nil; or returns the serve
// error. It does not close the cached clients: Close does.
func (s *Server) Run(ctx context.Context) error {
	hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.ln) }() // ends with Shutdown below
	s.log.Info("dashboard listening", "url", s.URL())
	select {
	case err := <-errc:
		return fmt.Errorf("dashboard: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// Close closes every Admin and Producer the server made. Idempotent; call
// it after Run returned.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.auth.close()
		if s.cfg.Listener == nil {
			_ = s.ln.Close() // Run's Shutdown closed it already if Run ran
		}
	})
	return s.closeErr
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /api/v1/cluster", s.api(s.getCluster))
	m.HandleFunc("POST /api/v1/cluster/groups/{group}/transfer", s.api(s.postTransfer))

	m.HandleFunc("GET /api/v1/topics", s.api(s.getTopics))
	m.HandleFunc("POST /api/v1/topics", s.api(s.postTopic))
	m.HandleFunc("GET /api/v1/topics/{topic}", s.api(s.getTopic))
	m.HandleFunc("PATCH /api/v1/topics/{topic}", s.api(s.patchTopic))
	m.HandleFunc("DELETE /api/v1/topics/{topic}", s.api(s.deleteTopic))

	m.HandleFunc("GET /api/v1/groups", s.api(s.getGroups))
	m.HandleFunc("GET /api/v1/groups/{group}", s.api(s.getGroup))
	m.HandleFunc("POST /api/v1/groups/{group}/reset-offset", s.api(s.postResetOffset))
	m.HandleFunc("GET /api/v1/groups/{group}/dlq", s.api(s.getDLQ))
	m.HandleFunc("POST /api/v1/groups/{group}/dlq/resend", s.api(s.postResend))

	m.HandleFunc("GET /api/v1/messages", s.api(s.getMessages))
	m.HandleFunc("POST /api/v1/messages", s.api(s.postMessage))
	m.HandleFunc("GET /api/v1/messages/{id}", s.api(s.getMessage))
	m.HandleFunc("GET /api/v1/messages/{id}/trace", s.api(s.getTrace))

	m.HandleFunc("GET /api/v1/transactions", s.api(s.getTransactions))

	m.HandleFunc("POST /api/v1/login", s.postLogin)
	m.HandleFunc("POST /api/v1/logout", s.postLogout)
	m.HandleFunc("GET /api/v1/whoami", s.getWhoami)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such endpoint: " + r.Method + " " + r.URL.Path, Code: "no_endpoint"})
	})

	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	files := http.FileServerFS(sub)
	m.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
}

// handler is one API endpoint: it returns the answer's status and body,
// or an error that classify maps to one.
type handler func(ctx context.Context, r *http.Request, cl *clients) (int, any, error)

func (s *Server) api(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		var status int
		var v any
		cl, err := s.auth.clientsFor(r)
		if err == nil {
			if err = checkMutation(r); err == nil {
				ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CallTimeout)
				status, v, err = h(ctx, r, cl)
				cancel()
			}
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, status, v)
	}
}

// checkMutation refuses a state-changing request that a plain HTML form
// of another site could send (no JSON content type): with SameSite=Strict
// cookies, this closes the cross-site request door.
func checkMutation(r *http.Request) error {
	if r.Method == http.MethodGet || r.Method == http.MethodDelete || r.ContentLength == 0 {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return &fieldError{"Content-Type", "want application/json"}
	}
	return nil
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := classify(err)
	if status >= 500 {
		s.log.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	if status == http.StatusUnauthorized && r.Header.Get("X-Rmq-Dashboard") == "" {
		// API clients (curl) learn how to log in; the page shows its own form.
		w.Header().Set("WWW-Authenticate", `Basic realm="rmq", charset="UTF-8"`)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away
}

// decodeBody reads r's JSON body into v, refusing unknown fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return &fieldError{"body", "empty: want a JSON object"}
		case errors.As(err, &te) && te.Field != "":
			return &fieldError{te.Field, fmt.Sprintf("want a JSON %s, got %s", te.Type, te.Value)}
		case errors.As(err, &mbe):
			return &fieldError{"body", fmt.Sprintf("larger than %d bytes", mbe.Limit)}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &fieldError{f, "unknown field"}
		}
		return &fieldError{"body", "not valid JSON: " + err.Error()}
	}
	return nil
}
