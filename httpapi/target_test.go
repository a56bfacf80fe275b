package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEndpointURLHost: an endpoint URL whose host, as written, is one the
// dispatcher would refuse is refused when the endpoint is created or
// changed (POST, PUT, PATCH), with a 422 naming url and nothing stored;
// host names are not resolved. With AllowPrivateTargets only cloud
// metadata addresses are refused.
func TestEndpointURLHost(t *testing.T) {
	refused := []string{
		"http://127.0.0.1:8080/hook",
		"http://[::1]/hook",
		"http://localhost:3000/hook",
		"https://api.LOCALHOST./hook",
		"http://0.0.0.0/",
		"http://[::]/",
		"http://10.0.0.5/hook",
		"http://172.16.0.1/",
		"http://192.168.1.10/",
		"http://169.254.1.1/",
		"http://[fe80::1]/",
		"http://[fd12::1]/",
		"http://100.64.0.1/",
		"http://[::ffff:127.0.0.1]/",
		"http://2130706433/",
		"http://127.1/",
		"http://0x7f.0.0.1/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[fd00:ec2::254]/",
		"http://168.63.129.16/",
	}
	metadata := map[string]bool{
		"http://169.254.169.254/latest/meta-data/": true, "http://[fd00:ec2::254]/": true, "http://168.63.129.16/": true,
	}
	accepted := []string{"https://hooks.example.com/in", "https://internal.corp/hook", "http://93.184.216.34/"}

	for _, allowPrivate := range []bool{false, true} {
		ts := newTestServer(t, func(c *Config) { c.AllowPrivateTargets = allowPrivate })
		createApp(t, ts, `{"name":"A","uid":"a"}`)
		var ep endpointOut
		ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/a/endpoint", `{"url":"https://hooks.example.com/in"}`)
		for _, u := range refused {
			before := dumpStore(t, ts.Store)
			for _, call := range []struct{ method, path, body string }{
				{"POST", "/api/v1/app/a/endpoint", `{"url":"` + u + `"}`},
				{"PUT", "/api/v1/app/a/endpoint/" + ep.ID, `{"url":"` + u + `"}`},
				{"PUT", "/api/v1/app/a/endpoint/new-uid", `{"url":"` + u + `"}`},
				{"PATCH", "/api/v1/app/a/endpoint/" + ep.ID, `{"url":"` + u + `"}`},
			} {
				res := ts.call(t, call.method, call.path, call.body)
				wantRefused := !allowPrivate || metadata[u]
				if !wantRefused {
					if res.Status >= 300 {
						t.Errorf("allowPrivate: %s %s %s: %d %s, want it accepted", call.method, call.path, u, res.Status, res.Body)
					}
					continue
				}
				if res.Status != http.StatusUnprocessableEntity {
					t.Errorf("allowPrivate=%v: %s %s %s: %d %s, want 422", allowPrivate, call.method, call.path, u, res.Status, res.Body)
					continue
				}
				items := validationOut(t, res)
				if len(items) != 1 || !cmp.Equal(items[0].Loc, []string{"body", "url"}) || !strings.Contains(items[0].Msg, "host is a") {
					t.Errorf("%s %s: 422 items %+v, want one at body.url saying why", call.method, u, items)
				}
				if metadata[u] != strings.Contains(items[0].Msg, "never allowed") {
					t.Errorf("%s: %q", u, items[0].Msg)
				}
			}
			if !allowPrivate || metadata[u] {
				checkUnchanged(t, ts.Store, before, u)
			}
		}
		for _, u := range accepted {
			ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app/a/endpoint", `{"url":"`+u+`"}`)
			ts.mustCall(t, http.StatusOK, nil, "PATCH", "/api/v1/app/a/endpoint/"+ep.ID, `{"url":"`+u+`"}`)
		}
	}
}
