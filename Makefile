# creditd: the targets a newcomer guesses.
GO ?= go
NAME ?= change

.PHONY: run demo test test-short soak bench bench-kpi loadtest verify generate migrate-diff lint lint-schema tidy build

## run: the server on the embedded SQLite database (sqlite://creditd.db)
run:
	$(GO) run ./cmd/creditd serve

## demo: the server with an example organisation, register, rule and grants
demo:
	$(GO) run ./cmd/creditd serve --demo

## build: the creditd binary in ./bin
build:
	$(GO) build -o bin/creditd ./cmd/creditd

## test: the whole suite, on PostgreSQL (127.0.0.1:5432 or $$CREDITD_TEST_PG) and SQLite
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## test-short: skips the slow code-regeneration check
test-short:
	$(GO) test -short -count=1 ./...

## soak: the model test, long (16 goroutines x 10 periods x 300 random operations, both databases); CREDITD_MODEL_SEED=N replays a run
soak:
	CREDITD_SOAK=1 $(GO) test ./engine/ledger/ -run '^TestModel$$' -count=1 -v -timeout 60m

## bench: usage throughput through the engine vs a raw-SQL baseline, on PostgreSQL, with ratios
bench:
	$(GO) test ./engine/ledger/ -run '^$$' -bench . -benchtime 3s -count 1 | tee bench.out
	@awk '/events\/s/ { name=$$1; sub(/-[0-9]+$$/, "", name); for (i=1;i<=NF;i++) if ($$i=="events/s") rate[name]=$$(i-1) } \
	  END { print ""; print "service / raw SQL, same run:"; \
	  for (n in rate) if (n ~ /^BenchmarkRecordUsage\//) { sub_=n; sub(/^BenchmarkRecordUsage\//, "", sub_); \
	    raw="BenchmarkRawSQL/" sub_; if (raw in rate) printf "  %-22s %9.0f / %9.0f events/s = %.2f\n", sub_, rate[n], rate[raw], rate[n]/rate[raw] } }' bench.out

## bench-kpi: kpis and accountHealth over 1,000 organisations and 1,000,000 events on PostgreSQL, with a raw-SQL aggregate
bench-kpi:
	$(GO) test ./kpi/ -run '^$$' -bench KPIs -benchtime 1x

## loadtest: the real server on a fresh PostgreSQL database, driven over loopback HTTP by
## `creditd loadtest` (single events, batches, then the default mix), then the raw-SQL baseline
## at the same concurrency in the same run, and the ratios
LOAD_PG   ?= postgres://postgres@127.0.0.1:5432
LOAD_DB   ?= creditd_loadtest
LOAD_ADDR ?= 127.0.0.1:18080
LOAD_TIME ?= 15s
LOAD_KEY  ?= loadtest-admin-key-0123456789-abcdefghijkl
loadtest: build
	@psql "$(LOAD_PG)/postgres" -qc 'DROP DATABASE IF EXISTS $(LOAD_DB) WITH (FORCE)' -c 'CREATE DATABASE $(LOAD_DB)'
	@set -e; rm -f loadtest.out; CREDITD_ADMIN_KEY=$(LOAD_KEY) bin/creditd serve --addr $(LOAD_ADDR) --rate-limit -1 \
	  --database-url "$(LOAD_PG)/$(LOAD_DB)?sslmode=disable" > loadtest-server.log 2>&1 & pid=$$!; \
	  trap "kill $$pid 2>/dev/null" EXIT; \
	  for i in $$(seq 1 100); do curl -sf http://$(LOAD_ADDR)/readyz >/dev/null && break; sleep 0.2; done; \
	  for mix in single=1 batch=1 single=60,batch=10,run=20,balance=10; do \
	    bin/creditd loadtest --url http://$(LOAD_ADDR) --key $(LOAD_KEY) --duration $(LOAD_TIME) --mix $$mix | tee -a loadtest.out; done; \
	  kill $$pid; wait $$pid || true; trap - EXIT; \
	  bin/creditd verify --database-url "$(LOAD_PG)/$(LOAD_DB)?sslmode=disable"
	$(GO) test ./engine/ledger/ -run '^$$' -bench 'BenchmarkRawSQL/(single|batch100)/orgs=many' -benchtime 5s -count 1 | tee -a loadtest.out
	@awk '($$1=="single" || $$1=="batch") && $$6 > 0 && !($$1 in http) { http[$$1]=$$6 } \
	  /^BenchmarkRawSQL/ { for (i=1;i<=NF;i++) if ($$i=="events/s") raw[($$1 ~ /single/) ? "single" : "batch"]=$$(i-1) } \
	  END { print ""; print "over HTTP / raw SQL debit, same run, many organisations:"; \
	    for (k in http) if (raw[k]) printf "  %-7s %9.0f / %9.0f events/s = %.2f\n", k, http[k], raw[k], http[k]/raw[k] }' loadtest.out

## verify: the ledger verifier on $$CREDITD_DATABASE_URL (default sqlite://creditd.db)
verify:
	$(GO) run ./cmd/creditd verify

## generate: ent then gqlgen
generate:
	$(GO) generate ./...

## migrate-diff NAME=...: a new migration per dialect from the ent schema
migrate-diff:
	$(GO) run ./migrations/gen.go $(NAME)

## lint: go vet and gofmt
lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

## lint-schema: graphql-schema-linter (pinned) on the GraphQL schema, every default rule but the three
## sorting rules the README's "Schema linting" explains
SCHEMA_LINTER ?= npx --yes -p graphql-schema-linter@3.0.1 -p graphql@16.11.0 graphql-schema-linter
SCHEMA_RULES  ?= arguments-have-descriptions,defined-types-are-used,deprecations-have-a-reason,descriptions-are-capitalized,$\
  enum-values-all-caps,enum-values-have-descriptions,fields-are-camel-cased,fields-have-descriptions,$\
  input-object-values-are-camel-cased,input-object-values-have-descriptions,interface-fields-sorted-alphabetically,$\
  relay-connection-arguments-spec,relay-connection-types-spec,relay-page-info-spec,types-are-capitalized,types-have-descriptions
lint-schema:
	$(SCHEMA_LINTER) --rules $(SCHEMA_RULES) graph/schema/*.graphqls

## tidy: go mod tidy, tolerating a test-only dependency of modernc.org/sqlite the proxy refuses
tidy:
	$(GO) mod tidy -e
