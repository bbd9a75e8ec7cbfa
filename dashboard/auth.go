package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/client"
)

// sessionCookie names the login cookie set by POST /api/v1/login.
const sessionCookie = "rmq_session"

// creds are one caller's keys.
type creds struct {
	AccessKey, SecretKey string
}

// key is the cache key of a set of credentials: the secret is hashed so
// the map never holds it in the clear next to the access key.
func (c creds) key() string {
	h := sha256.Sum256([]byte(c.AccessKey + "\x00" + c.SecretKey))
	return hex.EncodeToString(h[:])
}

// clients are the Admin and Producer of one set of credentials.
type clients struct {
	admin *client.Admin

	mu       sync.Mutex // guards producer
	producer *client.Producer
}

type session struct {
	creds   creds
	expires time.Time
}

// auth resolves a request's credentials to its clients: HTTP Basic auth
// first, then the session cookie, then anonymous if allowed. Safe for
// concurrent use.
type auth struct {
	cfg Config

	mu       sync.Mutex // guards the maps and closed
	byKey    map[string]*clients
	order    []string // byKey's keys, oldest first
	sessions map[string]session
	closed   bool
}

// maxCachedClients bounds the cached clients (one Admin, maybe a Producer,
// per set of keys): keys sent by Basic auth are cached before the cluster
// has judged them, so a stream of wrong guesses must not grow the cache.
// The oldest set is closed to make room.
const maxCachedClients = 64

var (
	errNoCredentials = errors.New("dashboard: log in with an access key and secret key")
	errClosed        = errors.New("dashboard: server closed")
)

func newAuth(cfg Config) *auth {
	return &auth{cfg: cfg, byKey: map[string]*clients{}, sessions: map[string]session{}}
}

// credentials returns r's credentials and whether it carried any.
func (a *auth) credentials(r *http.Request) (creds, bool) {
	if ak, sk, ok := r.BasicAuth(); ok {
		return creds{ak, sk}, true
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		a.mu.Lock()
		s, ok := a.sessions[c.Value]
		if ok && !a.cfg.Now().Before(s.expires) {
			delete(a.sessions, c.Value)
			ok = false
		}
		a.mu.Unlock()
		if ok {
			return s.creds, true
		}
	}
	return creds{}, false
}

// clientsFor returns (making and caching) the clients of r's caller.
func (a *auth) clientsFor(r *http.Request) (*clients, error) {
	c, ok := a.credentials(r)
	if !ok && !a.cfg.Anonymous {
		return nil, errNoCredentials
	}
	return a.clients(c)
}

func (a *auth) clients(c creds) (*clients, error) {
	k := c.key()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	if cl := a.byKey[k]; cl != nil {
		return cl, nil
	}
	// The factory does no I/O (client.NewAdmin only validates), so it
	// runs under the lock: two first requests make one Admin.
	adm, err := a.cfg.Admin(c.AccessKey, c.SecretKey)
	if err != nil {
		return nil, &authError{err}
	}
	cl := &clients{admin: adm}
	if len(a.order) >= maxCachedClients {
		old := a.order[0]
		a.order = a.order[1:]
		if ev := a.byKey[old]; ev != nil {
			delete(a.byKey, old)
			go ev.close() // a request still using it fails like a closed server's
		}
	}
	a.byKey[k] = cl
	a.order = append(a.order, k)
	return cl, nil
}

// producer returns cl's Producer, made on first use.
func (a *auth) producer(r *http.Request, cl *clients) (*client.Producer, error) {
	if a.cfg.Producer == nil {
		return nil, errNoProducer
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.producer != nil {
		return cl.producer, nil
	}
	c, _ := a.credentials(r)
	p, err := a.cfg.Producer(c.AccessKey, c.SecretKey)
	if err != nil {
		return nil, &authError{err}
	}
	cl.producer = p
	return p, nil
}

// login checks c by making its clients and starts a session.
func (a *auth) login(c creds) (token string, expires time.Time, cl *clients, err error) {
	if c.AccessKey == "" {
		return "", time.Time{}, nil, &fieldError{"access_key", "required"}
	}
	if cl, err = a.clients(c); err != nil {
		return "", time.Time{}, nil, err
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	token = hex.EncodeToString(b)
	expires = a.cfg.Now().Add(a.cfg.SessionTTL)
	a.mu.Lock()
	for t, s := range a.sessions { // drop expired ones: the map stays as small as the live sessions
		if !a.cfg.Now().Before(s.expires) {
			delete(a.sessions, t)
		}
	}
	a.sessions[token] = session{creds: c, expires: expires}
	a.mu.Unlock()
	return token, expires, cl, nil
}

func (a *auth) logout(r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return
	}
	a.mu.Lock()
	delete(a.sessions, c.Value)
	a.mu.Unlock()
}

// close closes every cached client. Idempotent.
func (a *auth) close() error {
	a.mu.Lock()
	all := a.byKey
	a.byKey, a.order, a.closed = map[string]*clients{}, nil, true
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // bounds the producers' flush
	defer cancel()
	var errs []error
	for _, cl := range all {
		errs = append(errs, cl.closeCtx(ctx))
	}
	return errors.Join(errs...)
}

// close closes cl's clients (an evicted cache entry).
func (cl *clients) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // bounds the producer's flush
	defer cancel()
	_ = cl.closeCtx(ctx)
}

func (cl *clients) closeCtx(ctx context.Context) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var errs []error
	if cl.producer != nil {
		errs = append(errs, cl.producer.Close(ctx))
	}
	return errors.Join(append(errs, cl.admin.Close())...)
}

// forget ends the session token of a login whose check failed and drops
// the clients made for its credentials, so failed logins do not pile up.
func (a *auth) forget(token string, c creds) {
	a.mu.Lock()
	delete(a.sessions, token)
	cl := a.byKey[c.key()]
	delete(a.byKey, c.key())
	a.order = slices.DeleteFunc(a.order, func(k string) bool { return k == c.key() })
	a.mu.Unlock()
	if cl != nil {
		_ = cl.admin.Close() // nothing was written through it
	}
}
