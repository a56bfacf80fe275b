package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
)

// consoleSessionTTL is how long a console login lasts.
const consoleSessionTTL = 12 * time.Hour

// maxFormBytes bounds a form post (an event type's schemas are the
// largest field).
const maxFormBytes = 2 << 20

// Login attempts: a burst of loginBurst, then one per loginEvery, per
// client address; at most maxLimiters addresses are remembered.
const (
	loginEvery  = 6 * time.Second
	loginBurst  = 5
	maxLimiters = 10_000
)

var loginRate = rate.Every(loginEvery)

// handler is a page handler: it runs with the session's request context.
type handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx)

// reqCtx is what a page handler knows about its request: the site, the
// session's principal and its CSRF token.
type reqCtx struct {
	site *site
	p    access.Principal
	csrf string
	// theme is the portal's look (zero in the console).
	theme theme
}

// canWrite reports whether the principal may change anything: pages offer
// no form to those who may not (and the API refuses them anyway).
func (rc *reqCtx) canWrite() bool { return !rc.p.ReadOnly }

// app returns the application the request is about: in the portal always
// the session's own, never one named by the URL.
func (rc *reqCtx) app(r *http.Request) string {
	if rc.site.portal {
		return rc.p.AppID
	}
	return r.PathValue("app")
}

// appBase is the path of an application's pages.
func (rc *reqCtx) appBase(appID string) string {
	if rc.site.portal {
		return rc.site.base
	}
	return rc.site.base + "/apps/" + pathEscape(appID)
}

// session wraps a page handler: it requires a valid session of the site,
// and on every request that is not a GET a CSRF token and a same-origin
// request.
func (s *Server) session(st *site, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := &reqCtx{site: st}
		if st.portal {
			rc.theme = readTheme(r)
		}
		unsafe := r.Method != http.MethodGet && r.Method != http.MethodHead
		if unsafe && !s.sameOrigin(r) {
			s.renderError(w, r, rc, http.StatusForbidden, "Cross-site request refused.")
			return
		}
		c, err := r.Cookie(st.cookie)
		var p access.Principal
		if err == nil {
			p, err = s.auth.Session(r.Context(), c.Value)
		}
		if err == nil && !st.allows(p) {
			err = herald.Errorf(herald.EUNAUTHORIZED, "Invalid token.")
		}
		if err != nil {
			if code := herald.ErrorCode(err); code != herald.EUNAUTHORIZED && code != "" && c != nil {
				s.logger.LogAttrs(r.Context(), slog.LevelError, "check session", slog.String("error", err.Error()))
				s.renderError(w, r, rc, http.StatusServiceUnavailable, "Sessions cannot be checked right now; try again shortly.")
				return
			}
			if unsafe || isFetch(r) {
				s.renderError(w, r, rc, http.StatusUnauthorized, "Your session has ended; sign in again.")
				return
			}
			http.Redirect(w, r, st.base+"/login", http.StatusSeeOther)
			return
		}
		rc.p = p
		rc.csrf = csrfToken(c.Value)
		if unsafe {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			sent := r.Header.Get("X-CSRF-Token")
			if sent == "" {
				sent = r.PostFormValue("_csrf")
			}
			if subtle.ConstantTimeCompare([]byte(sent), []byte(rc.csrf)) != 1 {
				s.renderError(w, r, rc, http.StatusForbidden, "The form has expired or did not come from this page; reload it and try again.")
				return
			}
		}
		h(w, r, rc)
	})
}

// allows reports whether a session principal belongs to the site: the
// console takes admin-scope console sessions, the portal app-scoped portal
// sessions. A cookie moved from one site to the other is refused.
func (st *site) allows(p access.Principal) bool {
	if p.Name != st.name {
		return false
	}
	if st.portal {
		return p.AppID != ""
	}
	return p.Admin()
}

// csrfToken derives a session's CSRF token from its secret: a page can
// hold it, a request from another site cannot know it, and it needs no
// storage.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("herald-csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// isFetch reports whether the request comes from the pages' own script
// (which wants a status, not a redirect).
func isFetch(r *http.Request) bool {
	return r.Header.Get("X-Herald-Fetch") != "" || strings.Contains(r.Header.Get("Accept"), "application/json")
}

// isSecure reports whether the browser reached us over HTTPS.
func (s *Server) isSecure(r *http.Request) bool {
	return s.cfg.Proxies.Secure(r)
}

// sameOrigin refuses requests a browser marks as coming from another site:
// Sec-Fetch-Site: cross-site, or an Origin that is not ours. Our origin's
// scheme is only known over TLS or from a trusted proxy; otherwise both
// schemes of our host are accepted (a proxy may have ended TLS).
//
// "Origin: null" is what Chromium sends with a form post from a page whose
// Referrer-Policy is no-referrer, as ours is: it is accepted only when the
// browser's own Sec-Fetch-Site (which no page can set) says same-origin.
func (s *Server) sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site == "cross-site" {
		return false
	}
	origin := r.Header.Get("Origin")
	switch {
	case origin == "":
		return true
	case origin == "null":
		return site == "same-origin"
	case origin == "https://"+r.Host:
		return true
	}
	return origin == "http://"+r.Host && !s.isSecure(r)
}

// setCookie sets a cookie of the site (its path, HttpOnly, SameSite, and
// Secure when the browser uses HTTPS or the site needs SameSite=None).
func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, st *site, name, value string, expires time.Time) {
	c := &http.Cookie{
		Name:        name,
		Value:       value,
		Path:        st.base,
		HttpOnly:    true,
		SameSite:    st.sameSite,
		Secure:      s.isSecure(r) || st.sameSite == http.SameSiteNoneMode,
		Partitioned: st.partitioned,
	}
	if expires.IsZero() {
		c.MaxAge = -1
	} else {
		c.Expires = expires.UTC()
		c.MaxAge = max(1, int(expires.Sub(s.now()).Seconds()))
	}
	http.SetCookie(w, c)
}

// logout ends the session and clears its cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := s.auth.Revoke(r.Context(), rc.p.TokenID); err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
		s.logger.LogAttrs(r.Context(), slog.LevelError, "revoke session", slog.String("error", err.Error()))
		s.renderError(w, r, rc, http.StatusServiceUnavailable, "Signing out failed; try again.")
		return
	}
	s.setCookie(w, r, rc.site, rc.site.cookie, "", time.Time{})
	http.Redirect(w, r, rc.site.base+"/login?out=1", http.StatusSeeOther)
}

// newRandom returns 32 random bytes, base64url.
func newRandom() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// loginCSRF returns the login form's double-submit value, setting its
// cookie when the browser has none yet.
func (s *Server) loginCSRF(w http.ResponseWriter, r *http.Request, st *site) string {
	if c, err := r.Cookie(st.loginCSRFCookie()); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	v := newRandom()
	s.setCookie(w, r, st, st.loginCSRFCookie(), v, s.now().Add(consoleSessionTTL))
	return v
}

// checkLoginCSRF checks a login post: same origin, and the form's _csrf
// equal to the double-submit cookie.
func (s *Server) checkLoginCSRF(r *http.Request, st *site) bool {
	if !s.sameOrigin(r) {
		return false
	}
	c, err := r.Cookie(st.loginCSRFCookie())
	if err != nil || len(c.Value) < 32 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("_csrf")), []byte(c.Value)) == 1
}

// clientAddr is the key of the login rate limit: the connection's address
// or, behind a trusted proxy, the client's address it forwarded.
func (s *Server) clientAddr(r *http.Request) string {
	return s.cfg.Proxies.ClientAddr(r)
}

// limiter is a bounded set of token buckets by key.
type limiter struct {
	every rate.Limit
	burst int
	max   int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newLimiter(every rate.Limit, burst, maxKeys int) *limiter {
	return &limiter{every: every, burst: burst, max: maxKeys, m: make(map[string]*rate.Limiter)}
}

// allow takes a token from key's bucket at now. When the map is full,
// buckets that have refilled (they hold no memory worth keeping) are
// dropped; if none has, all are: a flood of addresses must not grow the
// map without bound.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.max {
			for k, v := range l.m {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.m, k)
				}
			}
			if len(l.m) >= l.max {
				clear(l.m)
			}
		}
		lim = rate.NewLimiter(l.every, l.burst)
		l.m[key] = lim
	}
	return lim.AllowN(now, 1)
}

// retryAfter is the Retry-After of a refused login, in seconds.
func retryAfter() string { return "6" }

// pathEscape escapes one path segment.
func pathEscape(s string) string { return url.PathEscape(s) }
