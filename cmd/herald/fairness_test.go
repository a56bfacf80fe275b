package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusesBadFairnessFlags: --app-worker-share and
// --max-endpoints-per-app are checked before anything starts, each refusal
// naming its flag.
func TestServeRefusesBadFairnessFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--app-worker-share", "0"}, "--app-worker-share"},
		{[]string{"--app-worker-share", "1.5"}, "--app-worker-share"},
		{[]string{"--app-worker-share", "-0.5"}, "--app-worker-share"},
		{[]string{"--max-endpoints-per-app", "-1"}, "--max-endpoints-per-app"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"serve", "--db", filepath.Join(t.TempDir(), "h.db")}, c.args...)
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), c.flag) {
			t.Errorf("serve %v = %d, stderr %q: want a refusal naming %s", c.args, code, errOut.String(), c.flag)
		}
	}
}
