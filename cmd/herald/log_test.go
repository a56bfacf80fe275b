package main

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// TestLogFormatAuto: the default format is JSON unless standard error is
// a terminal; a pipe, a file or /dev/null (a character device, but no
// terminal) get JSON.
func TestLogFormatAuto(t *testing.T) {
	var buf bytes.Buffer
	logger, err := LogFlags{LogFormat: "auto", LogLevel: "info"}.logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("hello", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "hello" {
		t.Errorf("auto format to a buffer wrote %q, want a JSON line", buf.String())
	}

	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if isTerminal(devNull) {
		t.Errorf("%s is taken for a terminal", os.DevNull)
	}
	file, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if isTerminal(file) {
		t.Error("a file is taken for a terminal")
	}

	// A pseudo-terminal is one (Linux and macOS have /dev/ptmx).
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to test with: %v", err)
	}
	defer ptmx.Close()
	if !isTerminal(ptmx) {
		t.Error("a pseudo-terminal is not taken for a terminal")
	}
}
