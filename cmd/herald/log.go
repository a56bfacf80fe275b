package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

// LogFlags configure the structured logger.
type LogFlags struct {
	LogFormat string `name:"log-format" env:"HERALD_LOG_FORMAT" default:"auto" enum:"auto,json,text" help:"Log format: json, text, or auto (text on a terminal, json otherwise)."`
	LogLevel  string `name:"log-level" env:"HERALD_LOG_LEVEL" default:"info" enum:"debug,info,warn,error" help:"Lowest level logged."`
}

// logger builds the slog logger writing to w.
func (f LogFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	format := f.LogFormat
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
