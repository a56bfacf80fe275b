package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SendCmd posts one message to a Herald server from the command line.
type SendCmd struct {
	URL       string   `name:"url" env:"HERALD_URL" default:"http://127.0.0.1:8040" help:"Herald's base URL."`
	Token     string   `name:"token" env:"HERALD_TOKEN" help:"API token. Default: the admin-token file of --db's directory."`
	CAFile    string   `name:"ca-file" env:"HERALD_CA_FILE" help:"PEM certificates of the authorities to trust for an https --url (a private CA, a self-signed certificate), besides the system's."`
	DB        string   `name:"db" env:"HERALD_DB" default:"./herald-data/herald.db" help:"Used only to find the admin-token file when --token is not given."`
	App       string   `name:"app" required:"" help:"Application ID or uid."`
	EventType string   `name:"event-type" required:"" help:"The message's event type."`
	EventID   string   `name:"event-id" help:"Your unique ID of the message (de-duplicates)."`
	Channel   []string `name:"channel" help:"Channel(s) of the message; repeat for several."`
	Payload   string   `arg:"" help:"The JSON object to send, or - to read it from standard input."`
}

// Run posts the message and prints Herald's answer.
func (c *SendCmd) Run(env *Env) error {
	token := c.Token
	if token == "" {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(c.DB), "admin-token"))
		if err != nil {
			return fmt.Errorf("no --token and no admin token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	payload := []byte(c.Payload)
	if c.Payload == "-" {
		var err error
		if payload, err = io.ReadAll(io.LimitReader(os.Stdin, 64<<20)); err != nil {
			return fmt.Errorf("read payload: %w", err)
		}
	}
	if !json.Valid(payload) {
		return errors.New("the payload is not valid JSON")
	}
	body := map[string]any{"eventType": c.EventType, "payload": json.RawMessage(payload)}
	if c.EventID != "" {
		body["eventId"] = c.EventID
	}
	if len(c.Channel) > 0 {
		body["channels"] = c.Channel
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	endpoint := strings.TrimRight(c.URL, "/") + "/api/v1/app/" + url.PathEscape(c.App) + "/msg"
	req, err := http.NewRequestWithContext(env.Ctx, http.MethodPost, endpoint, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	tlsConf, err := clientTLS(c.CAFile)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsConf}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("herald answered %s: %s", resp.Status, strings.TrimSpace(string(answer)))
	}
	_, err = fmt.Fprintln(env.Stdout, strings.TrimSpace(string(answer)))
	return err
}
