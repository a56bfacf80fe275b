package destination

import (
	"net/url"
	"strings"
)

// RedactedPassword replaces a URL's password wherever the URL is shown.
const RedactedPassword = "xxxxx"

// Redact returns raw with its password, if it has one, replaced by
// RedactedPassword (nats://user:xxxxx@host:4222/subject): the form every
// API answer, page, log line, metric, span and attempt shows. A URL that
// does not parse is returned without anything between "://" and the last
// "@" before the path, so no credential survives a parse failure.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redactUnparsed(raw)
	}
	if u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); !has {
		return raw
	}
	u.User = url.UserPassword(u.User.Username(), RedactedPassword)
	return strings.Replace(u.String(), url.QueryEscape(RedactedPassword), RedactedPassword, 1)
}

func redactUnparsed(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return raw
	}
	return raw[:i+3] + RedactedPassword + rest[at:]
}

// Unredact returns next with the password of stored put back when next
// is stored's redacted form, perhaps with its path or query changed —
// same scheme, user and host, and the redacted password —, so a client
// that sends back the URL it read keeps the credentials. A changed host
// never receives the stored password: next is returned as is.
func Unredact(next, stored string) string {
	n, err := url.Parse(next)
	if err != nil || n.User == nil {
		return next
	}
	if pw, has := n.User.Password(); !has || pw != RedactedPassword {
		return next
	}
	s, err := url.Parse(stored)
	if err != nil || s.User == nil || s.Scheme != n.Scheme || s.User.Username() != n.User.Username() || s.Host != n.Host {
		return next
	}
	pw, has := s.User.Password()
	if !has {
		return next
	}
	n.User = url.UserPassword(n.User.Username(), pw)
	return n.String()
}

// HasPassword reports whether raw carries a password.
func HasPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return false
	}
	_, has := u.User.Password()
	return has
}
