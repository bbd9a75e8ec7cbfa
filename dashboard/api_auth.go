package dashboard

import (
	"context"
	"net/http"
	"time"
)

type loginRequest struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

type whoami struct {
	AccessKey string `json:"access_key"` // "" when anonymous
	Anonymous bool   `json:"anonymous"`
	// LoginRequired: requests without credentials are refused.
	LoginRequired bool      `json:"login_required"`
	Expires       time.Time `json:"expires,omitzero"` // the session's end, after a login
}

// postLogin checks the keys by listing the topics with them (a cheap
// call that reaches the brokers, which with access control refuse keys
// they do not know or a wrong secret), then sets the session cookie.
func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	var req loginRequest
	err := checkMutation(r)
	if err == nil {
		err = decodeBody(r, &req)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c := creds(req)
	token, expires, cl, err := s.auth.login(c)
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CallTimeout)
		_, err = cl.admin.ListTopics(ctx) // a broker call: the NameServer, which ClusterStatus asks, checks no keys
		cancel()
	}
	if err != nil {
		s.auth.forget(token, c)
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, whoami{AccessKey: c.AccessKey, LoginRequired: !s.cfg.Anonymous, Expires: expires})
}

func (s *Server) postLogout(w http.ResponseWriter, r *http.Request) {
	s.auth.logout(r)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// getWhoami tells the page whether to show its login form.
func (s *Server) getWhoami(w http.ResponseWriter, r *http.Request) {
	c, ok := s.auth.credentials(r)
	if !ok && !s.cfg.Anonymous {
		s.writeError(w, r, errNoCredentials)
		return
	}
	writeJSON(w, http.StatusOK, whoami{AccessKey: c.AccessKey, Anonymous: !ok, LoginRequired: !s.cfg.Anonymous})
}
