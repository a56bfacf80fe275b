# Targets mirror .ci/run. `make test` is the README's test command.
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
export HERALD_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.PHONY: test race lint bench cover build release chart ci

build:
	CGO_ENABLED=0 $(GO) build -o bin/herald ./cmd/herald

test:
	$(GO) test ./...

# Release binaries (linux/darwin × amd64/arm64) with archives, as release.yml.
release:
	deploy/build.sh --archive

# The Helm chart and compose checks, a module of their own.
chart:
	cd deploy/helm/chartcheck && $(GO) test ./...

race:
	CGO_ENABLED=1 $(GO) test -race -short ./...

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	$(GO) vet ./...
	$(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.out

cover:
	$(GO) test -coverprofile=cover.out ./...
	$(GO) tool cover -func=cover.out | tail -1

ci:
	bash .ci/run
