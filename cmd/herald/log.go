package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/mattn/go-isatty"

	"github.com/herald-webhooks/herald/telemetry"
)

// LogFlags configure the structured logger.
type LogFlags struct {
	LogFormat string `name:"log-format" env:"HERALD_LOG_FORMAT" default:"auto" enum:"auto,json,text" help:"Log format: json, text, or auto (text on a terminal, json otherwise)."`
	LogLevel  string `name:"log-level" env:"HERALD_LOG_LEVEL" default:"info" enum:"debug,info,warn,error" help:"Lowest level logged."`
}

// logger builds the slog logger writing to w. Lines logged within a traced
// request or delivery carry its trace_id and span_id.
func (f LogFlags) logger(w io.Writer) (*slog.Logger, error) {
	format := f.LogFormat
	if format == "auto" {
		format = telemetry.LogJSON
		if isTerminal(w) {
			format = telemetry.LogText
		}
	}
	return telemetry.NewLogger(w, format, f.LogLevel)
}

// isTerminal reports whether w is a terminal. Being a character device is
// not enough: /dev/null is one too.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}
