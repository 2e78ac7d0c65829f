package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/creditd/creditd/playbook"
)

// playbookCmd is `creditd playbook diff|apply|export`: the playbook against
// a running server's API (applyPlaybook, playbook), with a key of a role
// that may (OPERATOR or PRICING to apply; REVOPS may diff and export).
func playbookCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "diff" && args[0] != "apply" && args[0] != "export" {
		return fmt.Errorf("playbook: want diff FILE, apply FILE [--dry-run] or export")
	}
	sub := args[0]
	fs := flag.NewFlagSet("playbook "+sub, flag.ContinueOnError)
	rawURL := fs.String("url", "http://127.0.0.1:8080", "the server; /graphql is added when no path is given")
	key := fs.String("key", os.Getenv("CREDITD_ADMIN_KEY"), "an API key (default $CREDITD_ADMIN_KEY)")
	dry := false
	if sub == "apply" {
		fs.BoolVar(&dry, "dry-run", false, "plan only: write nothing")
	}
	rest := args[1:]
	var file string
	if sub != "export" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("playbook %s: the playbook FILE comes first", sub)
		}
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("playbook %s: unexpected argument %q", sub, fs.Arg(0))
	}
	if *key == "" {
		return fmt.Errorf("playbook %s: --key (or $CREDITD_ADMIN_KEY) is required", sub)
	}
	endpoint, err := graphqlURL(*rawURL)
	if err != nil {
		return err
	}
	if sub == "export" {
		var out struct{ Playbook string }
		if err := callGraphQL(ctx, endpoint, *key, `{ playbook }`, nil, &out); err != nil {
			return err
		}
		_, err := io.WriteString(stdout, out.Playbook)
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	doc, err := playbook.ParseYAML(data)
	if err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	var asJSON map[string]any
	js, _ := json.Marshal(doc)
	if err := json.Unmarshal(js, &asJSON); err != nil {
		return err
	}
	var out struct {
		Apply struct {
			Applied bool
			Changes []struct{ Kind, Name, Change, Detail string }
		} `json:"applyPlaybook"`
	}
	q := `mutation($d: JSON!, $dry: Boolean!) { applyPlaybook(document: $d, dryRun: $dry) { applied changes { kind name change detail } } }`
	if err := callGraphQL(ctx, endpoint, *key, q, map[string]any{"d": asJSON, "dry": sub == "diff" || dry}, &out); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for _, c := range out.Apply.Changes {
		line := fmt.Sprintf("%-8s %-30s %s", c.Kind, c.Name, c.Change)
		if c.Detail != "" {
			line += " (" + c.Detail + ")"
		}
		fmt.Fprintln(stdout, line)
	}
	if out.Apply.Applied {
		fmt.Fprintln(stdout, "applied")
	} else {
		fmt.Fprintln(stdout, "planned only: nothing written")
	}
	return nil
}

func graphqlURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("--url: %q is not an http(s) URL", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/graphql"
	}
	return u.String(), nil
}

// callGraphQL runs one operation and decodes its data into out; the
// first GraphQL error, with its code, is the error.
func callGraphQL(ctx context.Context, endpoint, key, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Data   json.RawMessage
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("the server answered HTTP %d, not GraphQL: %v", resp.StatusCode, err)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("%v: %s", r.Errors[0].Extensions["code"], r.Errors[0].Message)
	}
	return json.Unmarshal(r.Data, out)
}
