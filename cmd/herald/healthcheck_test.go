package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte(`{"status":"ok"}`))
		case "/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"code":"service_unavailable"}`))
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	// An address where nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	for _, tc := range []struct {
		url      string
		wantCode int
		want     string
	}{
		{srv.URL + "/healthz", 0, "200 OK"},
		{srv.URL + "/readyz", 1, "503 Service Unavailable"},
		{srv.URL + "/moved", 1, "302 Found"}, // a redirect is not health
		{closed, 1, "connection refused"},
		{"::not a url", 1, "healthcheck"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"healthcheck", "--url", tc.url, "--timeout", "2s"}, &out, &errOut)
		if code != tc.wantCode || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("healthcheck %s = %d, %q %q; want %d and %q", tc.url, code, out.String(), errOut.String(), tc.wantCode, tc.want)
		}
	}
}
