// Package observe is what operators see of a running server: a request id on
// every request, response and log line, structured access logs, and
// Prometheus metrics (requests by operation and outcome, latency, usage
// events, credits burned, rule errors, database pool stats).
package observe

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type ctxKey struct{}

// RequestID returns the request id of ctx, "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// Logger is the default logger with the request id of ctx.
func Logger(ctx context.Context) *slog.Logger {
	if id := RequestID(ctx); id != "" {
		return slog.Default().With("request_id", id)
	}
	return slog.Default()
}

// saneID accepts a caller's request id of 1 to 64 letters, digits, '-',
// '_', '.' or ':'; anything else is replaced (it ends up in logs and rows).
func saneID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Middleware gives every request an id (the caller's X-Request-Id when it is
// sane, else a new one), returns it in the X-Request-Id header, and logs the
// request when it ends.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneID(id) {
			id = newID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := WithRequestID(r.Context(), id)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(sw, r.WithContext(ctx))
		if r.URL.Path != "/metrics" && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			Logger(ctx).Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
				"duration_ms", float64(time.Since(start).Microseconds())/1000)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

// Metrics are the server's Prometheus metrics.
type Metrics struct {
	Registry         *prometheus.Registry
	Operations       *prometheus.CounterVec   // by operation and outcome (ok or an error code)
	OperationSeconds *prometheus.HistogramVec // by operation
	UsageEvents      *prometheus.CounterVec   // by decision, duplicates apart
	CreditsBurned    prometheus.Counter
	RuleErrors       *prometheus.CounterVec // by code (RULE_RUNTIME, RULE_COMPILE)
}

// NewMetrics registers the metrics, Go runtime metrics and db's pool stats.
func NewMetrics(db *sql.DB) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditd_graphql_operations_total", Help: "GraphQL operations by name and outcome (ok or the first error code).",
		}, []string{"operation", "outcome"}),
		OperationSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "creditd_graphql_operation_seconds", Help: "GraphQL operation latency.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
		UsageEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditd_usage_events_total", Help: "Usage events recorded, by decision; replays counted as duplicate.",
		}, []string{"decision"}),
		CreditsBurned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "creditd_credits_burned_total", Help: "Credits burned by usage (a float view of exact amounts, for monitoring only).",
		}),
		RuleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditd_rule_errors_total", Help: "Rule evaluation and compilation errors.",
		}, []string{"code"}),
	}
	reg.MustRegister(m.Operations, m.OperationSeconds, m.UsageEvents, m.CreditsBurned, m.RuleErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		reg.MustRegister(collectors.NewDBStatsCollector(db, "creditd"))
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
