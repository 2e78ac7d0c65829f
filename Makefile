# creditd: the targets a newcomer guesses.
GO ?= go
NAME ?= change

.PHONY: run demo test test-short soak bench generate migrate-diff lint tidy build

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

## soak: the model test, long (16 goroutines x 2000 random operations, both databases); CREDITD_MODEL_SEED=N replays a run
soak:
	CREDITD_SOAK=1 $(GO) test ./engine/ledger/ -run '^TestModel$$' -count=1 -v -timeout 60m

## bench: usage throughput through the engine vs a raw-SQL baseline, on PostgreSQL, with ratios
bench:
	$(GO) test ./engine/ledger/ -run '^$$' -bench . -benchtime 3s -count 1 | tee bench.out
	@awk '/events\/s/ { name=$$1; sub(/-[0-9]+$$/, "", name); for (i=1;i<=NF;i++) if ($$i=="events/s") rate[name]=$$(i-1) } \
	  END { print ""; print "service / raw SQL, same run:"; \
	  for (n in rate) if (n ~ /^BenchmarkRecordUsage\//) { sub_=n; sub(/^BenchmarkRecordUsage\//, "", sub_); \
	    raw="BenchmarkRawSQL/" sub_; if (raw in rate) printf "  %-22s %9.0f / %9.0f events/s = %.2f\n", sub_, rate[n], rate[raw], rate[n]/rate[raw] } }' bench.out

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

## tidy: go mod tidy, tolerating a test-only dependency of modernc.org/sqlite the proxy refuses
tidy:
	$(GO) mod tidy -e
