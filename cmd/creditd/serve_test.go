package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/creditd/creditd/testdb"
)

// freePort returns a loopback address nothing listens on (a race with other
// processes is possible and fails the test loudly, not wrongly).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serveInProcess runs `creditd serve args...` until the test ends and
// waits until /healthz answers on addr.
func serveInProcess(t *testing.T, addr string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", addr, "--period-close-every", "0", "--rate-limit", "-1"}, args...), &out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve exited at start-up: %v\n%s", err, out.String())
		default:
		}
		if code, _ := get(t, "http://"+addr+"/healthz"); code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /healthz within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeMetricsAddr: with --metrics-addr, /metrics is served there and
// not on the API address; without it, on the API address as before. The
// pool metric shows --db-max-conns (SQLite: always 1).
func TestServeMetricsAddr(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(testdb.Name(d), func(t *testing.T) {
			url := testdb.NewURL(t, d)
			wantMax := "3"
			if d == dialect.SQLite {
				wantMax = "1"
			}
			maxConns := regexp.MustCompile(`(?m)^go_sql_max_open_connections\{db_name="creditd"\} (\d+)$`)

			api, metrics := freePort(t), freePort(t)
			serveInProcess(t, api, "--database-url", url, "--db-max-conns", "3", "--metrics-addr", metrics)
			code, body := get(t, "http://"+metrics+"/metrics")
			if code != http.StatusOK || !strings.Contains(body, "creditd_graphql_operation") && !strings.Contains(body, "go_goroutines") {
				t.Fatalf("GET metrics-addr/metrics: %d\n%.300s", code, body)
			}
			if m := maxConns.FindStringSubmatch(body); m == nil || m[1] != wantMax {
				t.Errorf("pool size in /metrics = %v, want %s", m, wantMax)
			}
			if code, _ := get(t, "http://"+api+"/metrics"); code != http.StatusNotFound {
				t.Errorf("GET api/metrics with --metrics-addr: %d, want 404", code)
			}
			if code, _ := get(t, "http://"+metrics+"/graphql"); code != http.StatusNotFound {
				t.Errorf("GET metrics-addr/graphql: %d, want 404 (the API is not there)", code)
			}

			// Without the flag: /metrics on the API address.
			api2 := freePort(t)
			serveInProcess(t, api2, "--database-url", url, "--db-max-conns", "3")
			code, body = get(t, "http://"+api2+"/metrics")
			if code != http.StatusOK || maxConns.FindStringSubmatch(body) == nil {
				t.Errorf("GET api/metrics without --metrics-addr: %d\n%.300s", code, body)
			}
		})
	}
}

func TestServeFlagsRefused(t *testing.T) {
	url := "sqlite://" + t.TempDir() + "/x.db"
	for _, c := range []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"--db-max-conns", "0"}, "--db-max-conns must be at least 1"},
		{"lots", nil, "CREDITD_DB_MAX_CONNS"},
		{"-2", nil, "CREDITD_DB_MAX_CONNS"},
	} {
		t.Setenv("CREDITD_DB_MAX_CONNS", c.env)
		err := run(context.Background(), append([]string{"serve", "--database-url", url}, c.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %v with CREDITD_DB_MAX_CONNS=%q: %v, want an error about %s", c.args, c.env, err, c.want)
		}
	}
	t.Setenv("CREDITD_DB_MAX_CONNS", "7")
	if n, err := dbMaxConnsDefault(); n != 7 || err != nil {
		t.Errorf("CREDITD_DB_MAX_CONNS=7: default %d, %v", n, err)
	}
}
