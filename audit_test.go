package herald

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAuditActorContext(t *testing.T) {
	if a := AuditActorFrom(context.Background()); a != nil {
		t.Fatalf("actor %+v in an empty context", a)
	}
	want := CLIActor("alice", "keys revoke")
	ctx := WithAuditActor(context.Background(), want)
	got := AuditActorFrom(ctx)
	if got == nil || *got != want {
		t.Fatalf("AuditActorFrom = %+v, want %+v", got, want)
	}
	if want.TokenKind != AuditKindCLI || want.TokenName != "cli:alice" || want.Method != "CLI" || want.Route != "keys revoke" {
		t.Errorf("CLIActor = %+v", want)
	}
}

// A record is dated by its actor's At when set, by now otherwise, to the
// microsecond in UTC; its ID is made for that time.
func TestNewAuditRecord(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	a := &AuditActor{TokenName: "admin-token"}
	r := NewAuditRecord(a, "endpoint.update", AuditEndpoint, "ep_1", "app_1", now)
	if !r.CreatedAt.Equal(now.Truncate(time.Microsecond)) || r.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt %v, want %v in UTC", r.CreatedAt, now.Truncate(time.Microsecond))
	}
	if !strings.HasPrefix(r.ID, PrefixAudit) || r.ID < MinIDAt(PrefixAudit, now) || r.ID >= MinIDAt(PrefixAudit, now.Add(time.Second)) {
		t.Errorf("ID %s is not of %v's second", r.ID, now)
	}
	a.At = now.Add(-time.Hour)
	if r := NewAuditRecord(a, "x", "y", "z", "", now); !r.CreatedAt.Equal(a.At.Truncate(time.Microsecond)) {
		t.Errorf("CreatedAt %v, want the actor's %v", r.CreatedAt, a.At)
	}
	if r.Action != "endpoint.update" || r.ResourceType != AuditEndpoint || r.ResourceID != "ep_1" || r.AppID != "app_1" || r.Actor.TokenName != "admin-token" {
		t.Errorf("record %+v", r)
	}
}
