package web

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
)

// loginView is the data of the login pages.
type loginView struct {
	CSRF    string
	Error   string
	Out     bool // just signed out
	Portal  bool
	Action  string
	Landing string // where the portal's script goes after signing in
	// Theme is the portal link's theme options (validated), which the form
	// posts along with the token: they are remembered only when the token
	// signs in.
	Theme theme
}

// consoleLoginForm shows the console's login form (or the overview, to a
// browser that is signed in already).
func (s *Server) consoleLoginForm(w http.ResponseWriter, r *http.Request) {
	s.loginForm(w, r, s.console, http.StatusOK, "")
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, st *site, status int, msg string) {
	rc := &reqCtx{site: st}
	var linkTheme theme
	if st.portal {
		// The link's options (in the query, or posted back by a sign-in
		// that failed) dress this page and go to its post; a cookie is
		// set only by a sign-in that works.
		opts := r.URL.Query()
		if r.Method == http.MethodPost {
			opts = r.PostForm
		}
		rc.theme = readTheme(r)
		if t, ok := themeFromQuery(opts); ok {
			rc.theme, linkTheme = t, t
		}
	}
	// A signed-in browser goes on to the console. Not in the portal: a new
	// portal link (another token, perhaps another application) must reach
	// the script that signs in with it.
	if status == http.StatusOK && !st.portal {
		if c, err := r.Cookie(st.cookie); err == nil {
			if p, err := s.auth.Session(r.Context(), c.Value); err == nil && st.allows(p) {
				http.Redirect(w, r, st.base+"/", http.StatusSeeOther)
				return
			}
		}
	}
	v := &loginView{
		CSRF:    s.loginCSRF(w, r, st),
		Error:   msg,
		Out:     r.URL.Query().Get("out") == "1",
		Portal:  st.portal,
		Action:  st.base + "/login",
		Landing: st.base + "/",
		Theme:   linkTheme,
	}
	title := "Sign in to the Herald console"
	if st.portal {
		title = "Sign in to the webhook portal"
	}
	s.render(w, r, rc, status, "login", &page{Title: title, Data: v, Bare: true})
}

// consoleLogin exchanges the admin token (or an admin-scope API key) for a
// console session. The token arrives in the form body only and is never
// logged, shown or put in a URL.
func (s *Server) consoleLogin(w http.ResponseWriter, r *http.Request) {
	st := s.console
	p, ok := s.checkLogin(w, r, st, func(p access.Principal) bool {
		return p.Admin() && (p.Kind == "" || p.Kind == herald.TokenKey)
	})
	if !ok {
		return
	}
	secret, sp, err := s.auth.OpenSession(r.Context(), p, st.name, s.now().Add(consoleSessionTTL))
	if err != nil {
		s.loginFailed(w, r, st, err)
		return
	}
	s.setCookie(w, r, st, st.cookie, secret, sp.ExpiresAt)
	http.Redirect(w, r, st.base+"/", http.StatusSeeOther)
}

// portalLoginForm shows the portal's sign-in page. Its script reads the
// token from the URL fragment (which never reaches a server or a log),
// removes it from the address bar and posts it; without JavaScript the
// page offers a form to paste the token. Theme options in the query dress
// the page and are posted with the token (hidden fields), but remembered
// only when it signs in: a link without a valid token must not change the
// look of the browser's real portal.
func (s *Server) portalLoginForm(w http.ResponseWriter, r *http.Request) {
	s.loginForm(w, r, s.portal, http.StatusOK, "")
}

// portalLogin exchanges an app-portal token for a portal session that ends
// with the token, and remembers the theme options posted with it (checked
// again: a post is the browser's to write), or forgets earlier ones when
// none came: the look is the link's.
func (s *Server) portalLogin(w http.ResponseWriter, r *http.Request) {
	st := s.portal
	p, ok := s.checkLogin(w, r, st, func(p access.Principal) bool {
		return p.Kind == herald.TokenPortal && p.AppID != ""
	})
	if !ok {
		return
	}
	secret, sp, err := s.auth.OpenSession(r.Context(), p, st.name, p.ExpiresAt)
	if err != nil {
		s.loginFailed(w, r, st, err)
		return
	}
	s.setCookie(w, r, st, st.cookie, secret, sp.ExpiresAt)
	if t, ok := themeFromQuery(r.PostForm); ok {
		s.setCookie(w, r, st, themeCookie, t.encode(), s.now().Add(themeTTL))
	} else if _, err := r.Cookie(themeCookie); err == nil {
		s.setCookie(w, r, st, themeCookie, "", time.Time{})
	}
	if isFetch(r) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, st.base+"/", http.StatusSeeOther)
}

// checkLogin runs the checks every login post shares: the rate limit per
// client address, the login CSRF value and the token itself, which must
// authenticate as a principal fit says the site takes.
func (s *Server) checkLogin(w http.ResponseWriter, r *http.Request, st *site, fit func(access.Principal) bool) (access.Principal, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm() // a body too large leaves the form empty: refused below
	if !s.logins.allow(s.clientAddr(r), s.now()) {
		w.Header().Set("Retry-After", retryAfter())
		s.loginForm(w, r, st, http.StatusTooManyRequests, "Too many sign-in attempts; wait a few seconds and try again.")
		return access.Principal{}, false
	}
	if !s.checkLoginCSRF(r, st) {
		s.loginForm(w, r, st, http.StatusForbidden, "The sign-in form expired; try again.")
		return access.Principal{}, false
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		s.loginForm(w, r, st, http.StatusUnauthorized, "Invalid token.")
		return access.Principal{}, false
	}
	p, err := s.auth.Bearer(r.Context(), token)
	if err == nil && !fit(p) {
		err = herald.Errorf(herald.EUNAUTHORIZED, "Invalid token.")
	}
	if err != nil {
		s.loginFailed(w, r, st, err)
		return access.Principal{}, false
	}
	return p, true
}

// loginFailed answers a login that did not work: 401 for a bad token, 503
// when the token store could not be asked.
func (s *Server) loginFailed(w http.ResponseWriter, r *http.Request, st *site, err error) {
	if herald.ErrorCode(err) == herald.EUNAUTHORIZED {
		s.loginForm(w, r, st, http.StatusUnauthorized, "Invalid token.")
		return
	}
	s.logger.LogAttrs(r.Context(), slog.LevelError, "sign in", slog.String("site", st.name), slog.String("error", err.Error()))
	s.loginForm(w, r, st, http.StatusServiceUnavailable, "Signing in is not possible right now; try again shortly.")
}

// themeTTL is how long the portal's theme cookie lasts.
const themeTTL = 30 * 24 * time.Hour

// theme is the portal's look, chosen by the Herald user in the portal
// link: an accent colour, a logo and light or dark.
type theme struct {
	Accent string // "#rgb" or "#rrggbb", or ""
	Logo   string // an https URL, or ""
	Mode   string // "dark", "light" or ""
}

// themeFromQuery reads and validates the theme options of a query; ok is
// false when none is given.
func themeFromQuery(q url.Values) (theme, bool) {
	var t theme
	if a := q.Get("accent"); validAccent(a) {
		t.Accent = strings.ToLower(a)
	}
	if l := q.Get("logo"); validLogo(l) {
		t.Logo = l
	}
	if m := q.Get("theme"); m == "dark" || m == "light" {
		t.Mode = m
	}
	return t, t != theme{}
}

// readTheme reads the theme cookie, validating it again: a cookie is the
// browser's to change.
func readTheme(r *http.Request) theme {
	c, err := r.Cookie(themeCookie)
	if err != nil {
		return theme{}
	}
	q, err := url.ParseQuery(c.Value)
	if err != nil {
		return theme{}
	}
	t, _ := themeFromQuery(q)
	return t
}

func (t theme) encode() string {
	q := url.Values{}
	if t.Accent != "" {
		q.Set("accent", t.Accent)
	}
	if t.Logo != "" {
		q.Set("logo", t.Logo)
	}
	if t.Mode != "" {
		q.Set("theme", t.Mode)
	}
	return q.Encode()
}

// validAccent accepts only #rgb and #rrggbb.
func validAccent(s string) bool {
	if len(s) != 4 && len(s) != 7 || s[0] != '#' {
		return false
	}
	for _, c := range s[1:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// validLogo accepts only absolute https URLs without credentials.
func validLogo(s string) bool {
	if s == "" || len(s) > 2048 {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil && !strings.ContainsAny(s, "\"'<> \\")
}

// themeCSS serves the portal's accent colour as a stylesheet: the CSP
// forbids inline styles, and the value is validated to a colour.
func (s *Server) themeCSS(w http.ResponseWriter, r *http.Request) {
	accent := r.URL.Query().Get("accent")
	if !validAccent(accent) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write([]byte(":root{--accent:" + strings.ToLower(accent) + "}\n"))
}
