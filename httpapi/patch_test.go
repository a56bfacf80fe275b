package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// httpPatchRounds is how many times TestConcurrentPatches races each pair
// of requests.
const httpPatchRounds = 25

// send is call for a goroutine: it reports instead of failing the test,
// and answers an error unless the status is want.
func (ts *testServer) send(ctx context.Context, want int, method, path, body string) error {
	req, err := http.NewRequestWithContext(ctx, method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+ts.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := ts.Client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d; body %s", method, path, res.StatusCode, want, b)
	}
	return nil
}

// patchRequest is one request of a concurrent pair; body is formatted
// with the round.
type patchRequest struct {
	method, path, body string
	status             int
}

// racePatches sends the two requests at the same time, round after
// round; check runs after each round.
func racePatches(t *testing.T, ts *testServer, a, b patchRequest, check func(round int)) {
	t.Helper()
	for round := range httpPatchRounds {
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, req := range []patchRequest{a, b} {
			wg.Go(func() {
				<-start
				errs[i] = ts.send(t.Context(), req.status, req.method, req.path, fmt.Sprintf(req.body, round))
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		check(round)
	}
}

// TestConcurrentPatches: two PATCHes of different fields of one endpoint
// (or of different headers, or an endpoint's fields and its headers, or
// of one application or event type) sent at the same time both take
// effect, every round, on SQLite and on PostgreSQL: the store reads and
// writes the row in one transaction.
func TestConcurrentPatches(t *testing.T) {
	onEachEngine(t, testConcurrentPatches)
}

func testConcurrentPatches(t *testing.T, ts *testServer) {
	var app applicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"A"}`)
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/"+app.ID+"/endpoint", `{"url":"https://example.com/hook"}`)
	epPath := "/api/v1/app/" + app.ID + "/endpoint/" + ep.ID
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/event-type", `{"name":"user.created","description":"d"}`)

	t.Run("endpoint fields", func(t *testing.T) {
		racePatches(t, ts,
			patchRequest{"PATCH", epPath, `{"description":"description %d"}`, http.StatusOK},
			patchRequest{"PATCH", epPath, `{"metadata":{"round":"%d"}}`, http.StatusOK},
			func(round int) {
				var got endpointOut
				ts.mustCall(t, http.StatusOK, &got, "GET", epPath, "")
				if got.Description != fmt.Sprintf("description %d", round) || got.Metadata["round"] != fmt.Sprint(round) {
					t.Fatalf("round %d: description %q, metadata %v: a PATCH was lost", round, got.Description, got.Metadata)
				}
			})
	})
	headersOf := func(t *testing.T) map[string]string {
		var got endpointHeadersOut
		ts.mustCall(t, http.StatusOK, &got, "GET", epPath+"/headers", "")
		return got.Headers
	}
	t.Run("headers", func(t *testing.T) {
		racePatches(t, ts,
			patchRequest{"PATCH", epPath + "/headers", `{"headers":{"X-Alpha":"alpha %d"}}`, http.StatusNoContent},
			patchRequest{"PATCH", epPath + "/headers", `{"headers":{"X-Beta":"beta %d"}}`, http.StatusNoContent},
			func(round int) {
				got := headersOf(t)
				if got["X-Alpha"] != fmt.Sprintf("alpha %d", round) || got["X-Beta"] != fmt.Sprintf("beta %d", round) {
					t.Fatalf("round %d: headers %v: a PATCH was lost", round, got)
				}
			})
	})
	t.Run("headers and fields", func(t *testing.T) {
		racePatches(t, ts,
			patchRequest{"PATCH", epPath + "/headers", `{"headers":{"X-Alpha":"again %d"}}`, http.StatusNoContent},
			patchRequest{"PATCH", epPath, `{"description":"again %d"}`, http.StatusOK},
			func(round int) {
				var got endpointOut
				ts.mustCall(t, http.StatusOK, &got, "GET", epPath, "")
				if h := headersOf(t); h["X-Alpha"] != fmt.Sprintf("again %d", round) || got.Description != fmt.Sprintf("again %d", round) {
					t.Fatalf("round %d: header %q, description %q: a PATCH was lost", round, h["X-Alpha"], got.Description)
				}
			})
	})
	t.Run("application", func(t *testing.T) {
		path := "/api/v1/app/" + app.ID
		racePatches(t, ts,
			patchRequest{"PATCH", path, `{"name":"name %d"}`, http.StatusOK},
			patchRequest{"PATCH", path, `{"metadata":{"round":"%d"}}`, http.StatusOK},
			func(round int) {
				var got applicationOut
				ts.mustCall(t, http.StatusOK, &got, "GET", path, "")
				if got.Name != fmt.Sprintf("name %d", round) || got.Metadata["round"] != fmt.Sprint(round) {
					t.Fatalf("round %d: name %q, metadata %v: a PATCH was lost", round, got.Name, got.Metadata)
				}
			})
	})
	t.Run("event type", func(t *testing.T) {
		path := "/api/v1/event-type/user.created"
		racePatches(t, ts,
			patchRequest{"PATCH", path, `{"description":"description %d"}`, http.StatusOK},
			patchRequest{"PATCH", path, `{"featureFlag":"flag-%d"}`, http.StatusOK},
			func(round int) {
				var got eventTypeOut
				ts.mustCall(t, http.StatusOK, &got, "GET", path, "")
				if got.Description != fmt.Sprintf("description %d", round) || got.FeatureFlag == nil || *got.FeatureFlag != fmt.Sprintf("flag-%d", round) {
					t.Fatalf("round %d: description %q, feature flag %v: a PATCH was lost", round, got.Description, got.FeatureFlag)
				}
			})
	})
}

// TestHeadersPatchOverLimitChangesNothing: a headers PATCH whose merge with
// the stored headers would pass the limit is refused with a 422 naming
// headers, from inside the store's transaction, and leaves them as they
// were.
func TestHeadersPatchOverLimitChangesNothing(t *testing.T) {
	ts := newTestServer(t)
	var app applicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"A"}`)
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/"+app.ID+"/endpoint", `{"url":"https://example.com/hook"}`)
	path := "/api/v1/app/" + app.ID + "/endpoint/" + ep.ID + "/headers"
	names := make([]string, maxHeaders)
	for i := range names {
		names[i] = fmt.Sprintf(`"X-H%d":"v"`, i)
	}
	ts.mustCall(t, http.StatusNoContent, nil, "PUT", path, `{"headers":{`+strings.Join(names, ",")+`}}`)
	var before endpointHeadersOut
	ts.mustCall(t, http.StatusOK, &before, "GET", path, "")
	items := validationOut(t, ts.call(t, "PATCH", path, `{"headers":{"X-One-More":"v"}}`))
	if len(items) != 1 || strings.Join(items[0].Loc, ".") != "body.headers" {
		t.Fatalf("422 items %+v, want one at body.headers", items)
	}
	var after endpointHeadersOut
	ts.mustCall(t, http.StatusOK, &after, "GET", path, "")
	if len(after.Headers) != maxHeaders || len(after.Headers) != len(before.Headers) || after.Headers["X-One-More"] != "" {
		t.Fatalf("after a refused PATCH: %d headers (%v), want the %d before", len(after.Headers), after.Headers, len(before.Headers))
	}
}
