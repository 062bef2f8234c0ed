# Thin wrappers around the commands in README.md.
.PHONY: run test lint ci bench

run:
	go run ./cmd/keyserver serve --dev

test:
	go test -race -count=1 ./...

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...

ci:
	CI=true bash .ci/run

bench:
	go test -run '^$$' -bench . ./...
