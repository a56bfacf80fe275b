package sqlite_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
)

// Sizes of TestFullFilesystem: a 2 MiB tmpfs, half of it taken by a file
// written before the store opens and removed to give space back; messages
// carry 64 KiB payloads, so the rest fills up in a few batches.
const (
	fullFSSize      = 2 << 20
	fullFSReserve   = 1 << 20
	fullFSPayload   = 64 << 10
	fullFSBatchSize = 1
)

// TestFullFilesystem runs the store on a genuinely full filesystem, a tmpfs
// with a size limit (TestFullDiskIsUnavailable only pins the database's
// page count). Every kind of write that does not fit (ingest, claims,
// attempt outcomes, a group of writes sharing one commit) is EUNAVAILABLE
// and leaves nothing behind; reads go on; and once space is freed the same
// store, not reopened, writes again.
func TestFullFilesystem(t *testing.T) {
	ctx := t.Context()
	dir := mountTmpfs(t, fullFSSize)
	reserve, topUp := filepath.Join(dir, "reserve"), filepath.Join(dir, "top-up")
	if err := os.WriteFile(reserve, make([]byte, fullFSReserve), 0o600); err != nil {
		t.Fatalf("write the reserve file: %v", err)
	}
	s := openAt(t, filepath.Join(dir, "herald.db"), testKeyring(t)) // closed before the unmount
	// The schema goes into the database file now: left in the WAL, the
	// checkpointer would copy it out at a moment of its choosing, in the
	// middle of the filling below, and how much room that takes or frees
	// would depend on the schema's size.
	if err := sqlite.ExecOnWriter(ctx, s, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s, randomKey(t))
	n := 0
	next := func() *herald.Message {
		n++
		m := newMsg(f.app.ID, n, "")
		m.Payload = bytes.Repeat([]byte{'a' + byte(n%26)}, fullFSPayload)
		return m
	}

	// A delivery leased and one pending before the disk fills.
	first, second := next(), next()
	mustCreate(t, s, first)
	claims, err := s.ClaimDue(ctx, herald.ClaimOptions{Owner: "node", Now: first.CreatedAt,
		LeaseUntil: t0.Add(time.Hour), Limit: 1})
	if err != nil || len(claims) != 1 {
		t.Fatalf("ClaimDue = %d claims, %v; want 1", len(claims), err)
	}
	mustCreate(t, s, second)
	stored := []*herald.Message{first, second}
	success := []herald.AttemptOutcome{{DeliveryID: claims[0].Delivery.ID, LeaseOwner: "node",
		Status: herald.DeliverySucceeded, Attempt: &herald.Attempt{URL: f.ep.URL, ResponseStatus: 200,
			Response: []byte("ok"), CreatedAt: t0}}}
	due := herald.ClaimOptions{Owner: "node", Now: t0.Add(time.Hour), LeaseUntil: t0.Add(2 * time.Hour), Limit: 10}

	// Not a byte left. This comes first: a write that failed half-way
	// leaves the WAL file longer than what it holds, and later writes
	// that fit in that tail succeed on a full filesystem.
	fillUp(t, topUp)
	_, err = s.CreateMessages(ctx, []*herald.Message{next()}, herald.Lease{})
	wantUnavailable(t, "CreateMessages with no space left", err)
	_, err = s.ClaimDue(ctx, due)
	wantUnavailable(t, "ClaimDue with no space left", err)
	wantUnavailable(t, "RecordAttempts with no space left", s.RecordAttempts(ctx, success))
	checkDelivery(t, s, first, herald.DeliverySending, 0)
	checkDelivery(t, s, second, herald.DeliveryPending, 0)
	checkMessages(t, s, f.app.ID, stored, nil)
	if err := os.Remove(topUp); err != nil {
		t.Fatal(err)
	}

	// Ingest fills the rest, batch by batch, until one does not fit: it is
	// EUNAVAILABLE (503 at ingest) and none of its messages was written.
	var failed []*herald.Message
	for range 2 * fullFSSize / (fullFSBatchSize * fullFSPayload) {
		batch := make([]*herald.Message, fullFSBatchSize)
		for i := range batch {
			batch[i] = next()
		}
		if _, err = s.CreateMessages(ctx, batch, herald.Lease{}); err != nil {
			failed = batch
			break
		}
		stored = append(stored, batch...)
	}
	if failed == nil {
		t.Fatalf("%d messages of %d bytes fit in a %d-byte filesystem", len(stored), fullFSPayload, fullFSSize)
	}
	wantUnavailable(t, "CreateMessages on a full filesystem", err)
	// Then message by message, so that what is left is less than one
	// message whatever the schema's and a commit's sizes: the room a
	// failed write leaves (its tail of the WAL file) may hold a message.
	for range 4 {
		one := next()
		if _, err = s.CreateMessages(ctx, []*herald.Message{one}, herald.Lease{}); err != nil {
			failed = append(failed, one)
			break
		}
		stored = append(stored, one)
	}
	t.Logf("full after %d messages: %v", len(stored), err)
	wantUnavailable(t, "CreateMessages of one message on a full filesystem", err)
	checkMessages(t, s, f.app.ID, stored, failed)

	// Ingest batches that queued behind a busy writer: each is written in
	// a transaction of its own (a bulk write is never grouped, see
	// writeAlone), none fits, every one fails and none is stored.
	group := make([]*herald.Message, 2*fullFSBatchSize)
	for i := range group {
		group[i] = next()
	}
	for i, err := range createGrouped(t, s, group) {
		wantUnavailable(t, fmt.Sprintf("grouped CreateMessages %d", i), err)
	}
	checkMessages(t, s, f.app.ID, stored, group)

	// Space back: the same store writes again.
	if err := os.Remove(reserve); err != nil {
		t.Fatal(err)
	}
	again := next()
	mustCreate(t, s, again)
	stored = append(stored, again)
	if err := s.RecordAttempts(ctx, success); err != nil {
		t.Fatalf("RecordAttempts once space is back: %v", err)
	}
	checkDelivery(t, s, first, herald.DeliverySucceeded, 1)
	if claims, err := s.ClaimDue(ctx, due); err != nil || len(claims) != len(stored)-1 {
		t.Fatalf("ClaimDue once space is back = %d claims, %v; want %d", len(claims), err, len(stored)-1)
	}
	checkDelivery(t, s, second, herald.DeliverySending, 0)
	checkMessages(t, s, f.app.ID, stored, append(failed, group...))
}

// mountTmpfs mounts a tmpfs of size bytes on a new temporary directory and
// unmounts it when the test ends, after the cleanups registered later
// (closing a store whose files are in it). Without the right to mount
// (not root) the test is skipped.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size))
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		t.Skipf("cannot mount a size-limited tmpfs here (needs root or CAP_SYS_ADMIN): %v", err)
	}
	if err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount the tmpfs on %s: %v", dir, err)
		}
	})
	return dir
}

// fillUp writes to a new file at path until the filesystem has no space
// left.
func fillUp(t *testing.T, path string) {
	t.Helper()
	file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := file.Write(chunk); errors.Is(err, syscall.ENOSPC) {
			return
		} else if err != nil {
			t.Fatalf("fill the filesystem: %v", err)
		}
	}
}

// createGrouped creates each message by a CreateMessages call of its own,
// all queued behind a held writer so that the writer takes them in one
// batch, and returns each call's error.
func createGrouped(t *testing.T, s *sqlite.Store, msgs []*herald.Message) []error {
	t.Helper()
	errs := make([]error, len(msgs))
	queued, release := sqlite.HoldWriter(t.Context(), s)
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() {
			_, errs[i] = s.CreateMessages(t.Context(), []*herald.Message{m}, herald.Lease{})
		})
	}
	queued(len(msgs))
	if err := release(); err != nil {
		t.Fatalf("held write: %v", err)
	}
	wg.Wait()
	return errs
}

// mustCreate stores m and checks it reads back.
func mustCreate(t *testing.T, s *sqlite.Store, m *herald.Message) {
	t.Helper()
	res, err := s.CreateMessages(t.Context(), []*herald.Message{m}, herald.Lease{})
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		t.Fatalf("CreateMessages: %v", err)
	}
	got, err := s.GetMessage(t.Context(), m.AppID, m.ID)
	if err != nil || !bytes.Equal(got.Payload, m.Payload) {
		t.Fatalf("read back message %s: %v", m.ID, err)
	}
}

// wantUnavailable fails the test unless err is EUNAVAILABLE.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if code := herald.ErrorCode(err); code != herald.EUNAVAILABLE {
		t.Errorf("%s: code %q (%v), want %q", what, code, err, herald.EUNAVAILABLE)
	}
}

// checkMessages checks that application appID holds exactly the messages
// of stored, with their payloads, and none of absent.
func checkMessages(t *testing.T, s *sqlite.Store, appID string, stored, absent []*herald.Message) {
	t.Helper()
	ctx := t.Context()
	for _, m := range stored {
		got, err := s.GetMessage(ctx, appID, m.ID)
		if err != nil {
			t.Fatalf("read message %s: %v", m.ID, err)
		}
		if !bytes.Equal(got.Payload, m.Payload) {
			t.Errorf("message %s: payload of %d bytes, want %d", m.ID, len(got.Payload), len(m.Payload))
		}
	}
	for _, m := range absent {
		if _, err := s.GetMessage(ctx, appID, m.ID); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Errorf("message %s of a failed write: GetMessage returned %v, want ENOTFOUND", m.ID, err)
		}
	}
	all, err := s.ListMessages(ctx, appID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 1000}})
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	if len(all) != len(stored) {
		t.Errorf("application holds %d messages, want %d", len(all), len(stored))
	}
}

// checkDelivery checks the status and attempt count of m's one delivery.
func checkDelivery(t *testing.T, s *sqlite.Store, m *herald.Message, status herald.DeliveryStatus, attempts int) {
	t.Helper()
	dels, err := s.ListMessageDeliveries(t.Context(), m.AppID, m.ID)
	if err != nil {
		t.Fatalf("ListMessageDeliveries: %v", err)
	}
	if len(dels) != 1 || dels[0].Status != status || dels[0].Attempts != attempts {
		t.Errorf("deliveries of %s = %+v, want one %s after %d attempts", m.ID, dels, status, attempts)
	}
}
