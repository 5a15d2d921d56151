# ledgerd's tasks. "make help" lists them.

SHELL := /bin/bash
.DEFAULT_GOAL := help

GO            ?= go
GOLANGCI_VERSION := v2.15.0
# Tools are built from the Go module proxy into a versioned folder that
# every clone on this machine shares.
TOOLS_DIR     := $(shell $(GO) env GOPATH)/ledgerd-tools
GOLANGCI_LINT := $(TOOLS_DIR)/golangci-lint-$(GOLANGCI_VERSION)/golangci-lint
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -s -w -X main.version=$(VERSION)
BIN           := bin/ledgerd

-include .env
export

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

.PHONY: setup
setup: ## Write .env from .env.example (kept if it exists)
	@if [ -f .env ]; then echo ".env exists; left as it is"; else cp .env.example .env && echo "wrote .env"; fi

.PHONY: build
build: ## Build bin/ledgerd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ledgerd

.PHONY: run
run: build ## Serve on :3000 against the local PostgreSQL and RabbitMQ (creates the database if missing)
	$(BIN) migrate create-db
	$(BIN) serve

.PHONY: test
test: tools ## Run every test, with the race detector (needs PostgreSQL and RabbitMQ)
	$(GO) test -race -count=1 -timeout 20m ./...

.PHONY: test-unit
test-unit: ## Run the tests that need no database
	$(GO) test -race -count=1 ./money/... ./cmd/loadtest/...

.PHONY: test-integration
test-integration: ## Run the tests against the real PostgreSQL and RabbitMQ
	$(GO) test -race -count=1 -timeout 20m ./migrations/... ./ledger/... ./projection/... ./outbox/... ./api/... ./client/... ./examples/... ./cmd/... ./deploy/...

.PHONY: test-faults
test-faults: tools ## Run the fault-injection suite alone: it restarts the local PostgreSQL and RabbitMQ (see docs/reliability.md)
	$(GO) test -race -tags faults -count=1 -p 1 -timeout 30m -v ./faults/ 2>&1 | grep -v '^{' | tee faults/testdata/last-run.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|anomalies|terminated|killing'; exit $${PIPESTATUS[0]}

LOADTEST_URL ?= http://localhost:3000

.PHONY: loadtest
loadtest: ## Build bin/loadtest and run the original requirement against a running ledgerd at LOADTEST_URL; ARGS adds flags (-scenario spread, -json…)
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/loadtest ./cmd/loadtest
	bin/loadtest -url $(LOADTEST_URL) -scenario hot $(ARGS)

.PHONY: bench
bench: ## Measure the ceilings, ledgerd hot, spread, burst, relay and a long history; rewrite docs/performance.md and docs/perf/ (about 5 minutes; the first run also fills ledger_bench_history, about 5 more)
	scripts/bench.sh

.PHONY: fuzz
fuzz: ## Fuzz the money parser and the request decoders, each for a bounded time (FUZZTIME, default 30s); seeds in */testdata/fuzz
	$(GO) test ./money -run '^$$' -fuzz '^FuzzRoundTrip$$' -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./api -run '^$$' -fuzz '^FuzzBalanceRequest$$' -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./api -run '^$$' -fuzz '^FuzzParseID$$' -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./api -run '^$$' -fuzz '^FuzzStrictNames$$' -fuzztime $${FUZZTIME:-30s}

.PHONY: lint
lint: tools $(GOLANGCI_LINT) ## gofmt, go vet, go mod tidy check, golangci-lint, promtool and Compose checks
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@tmp=$$(mktemp -d); cp go.mod go.sum "$$tmp"/; $(GO) mod tidy; \
	if ! cmp -s go.mod "$$tmp"/go.mod || ! cmp -s go.sum "$$tmp"/go.sum; then \
	  echo "go mod tidy changes go.mod/go.sum: run it and commit the result"; diff -u "$$tmp"/go.mod go.mod; \
	  cp "$$tmp"/go.mod "$$tmp"/go.sum .; rm -rf "$$tmp"; exit 1; fi; rm -rf "$$tmp"
	$(GOLANGCI_LINT) run ./...
	$(GO) test -count=1 -run 'TestExternalCheckers' ./deploy/

.PHONY: tools
tools: ## Install the external checkers that lint and the tests need (promtool, prometheus, docker-compose, haproxy; jq, openssl, xxd, curl for the auditor's walk-through; node and npm for the generated TypeScript client), with apt-get
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v docker-compose >/dev/null && command -v haproxy >/dev/null && \
	  command -v jq >/dev/null && command -v openssl >/dev/null && command -v xxd >/dev/null && command -v curl >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus docker-compose haproxy jq openssl xxd curl)
	@# Apart: a Node.js installed another way (NodeSource) carries its own npm and conflicts with Debian's.
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm)

$(GOLANGCI_LINT):
	@echo "installing golangci-lint $(GOLANGCI_VERSION) (built from the Go module proxy; takes a few minutes once)"
	GOBIN=$(dir $(GOLANGCI_LINT)) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

.PHONY: run-docker
run-docker: ## Start PostgreSQL, RabbitMQ and ledgerd with Docker Compose
	docker compose up -d --build
	@echo "API:      http://localhost:$${HTTP_PORT:-3000}/api"
	@echo "RabbitMQ: http://localhost:$${RABBITMQ_MGMT_PORT:-15673} (guest/guest)"

.PHONY: stop-docker
stop-docker: ## Stop the Compose stack
	docker compose down

.PHONY: logs
logs: ## Follow the Compose stack's logs
	docker compose logs -f

.PHONY: clean
clean: ## Remove build output, and the Compose stack with its volumes when Docker runs
	rm -rf bin
	-docker compose down -v 2>/dev/null
