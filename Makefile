# token-operator Makefile. `make help` lists the targets.

# The image docker-build builds and deploy deploys; the default is the one config/manager names, for a local cluster.
IMG ?= token-operator:dev
# Build identity stamped into the manager (manager --version, token_operator_build_info) and the kubectl plugin.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG := github.com/token-operator/token-operator/internal/version
GO_LDFLAGS ?= -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(COMMIT) -X $(VERSION_PKG).Date=$(DATE)
# Platforms docker-buildx builds for.
PLATFORMS ?= linux/amd64,linux/arm64
CONTAINER_TOOL ?= docker
CONTROLLER_GEN ?= go tool controller-gen
# crd-ref-docs writes docs/api.md from the Go types (built from the Go module proxy into bin/).
CRD_REF_DOCS_VERSION ?= v0.3.0
CRD_REF_DOCS ?= $(CURDIR)/bin/crd-ref-docs-$(CRD_REF_DOCS_VERSION)
GO_TEST_FLAGS ?= -race -count=1
# Tools built from the Go module proxy are cached here, outside the clone, like the API server.
TOOLS_CACHE ?= $(or $(TOKEN_OPERATOR_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/token-operator)
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(TOOLS_CACHE)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint
# Building kube-apiserver and etcd on a fresh machine takes ~8 minutes; tests then take a few.
TEST_TIMEOUT ?= 40m
# Nested Go modules, which ./... in the root module skips: vet, lint and test run in each too.
NESTED_MODULES ?= pkg/tokenfile pkg/awscredentials

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate the CRD and RBAC manifests from the Go types and markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases
	rm -f charts/token-operator/files/crds/*.yaml && cp config/crd/bases/*.yaml charts/token-operator/files/crds/

.PHONY: generate
generate: ## Generate the DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: api-docs
api-docs: ## Generate docs/api.md, the API reference, from the Go types in api/ (builds crd-ref-docs into bin/).
	@test -x $(CRD_REF_DOCS) || { GOBIN=$(CURDIR)/bin GOFLAGS=-mod=mod go install github.com/elastic/crd-ref-docs@$(CRD_REF_DOCS_VERSION) && mv $(CURDIR)/bin/crd-ref-docs $(CRD_REF_DOCS); }
	$(CRD_REF_DOCS) --log-level=WARN --source-path=api/v1alpha1 --config=hack/crd-ref-docs.yaml --renderer=markdown --output-path=docs/api.md

.PHONY: verify-generated
verify-generated: manifests generate api-docs ## Fail when generated files differ from what is committed.
	@git diff --exit-code -- config api docs/api.md charts/token-operator/files/crds || { echo "generated files are stale: run 'make manifests generate api-docs' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- config api docs/api.md charts/token-operator/files/crds)" || { git status --porcelain -- config api docs/api.md charts/token-operator/files/crds; echo "untracked generated files: commit them"; exit 1; }

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet (the root module and NESTED_MODULES).
	go vet ./...
	for m in $(NESTED_MODULES); do (cd $$m && go vet ./...) || exit 1; done

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd for tests (cached outside the clone) and print their folder.
	@hack/setup-envtest.sh

.PHONY: test
test: verify-generated vet lint ## Everything: tool builds (API servers 1.37 and 1.29, etcd, Hydra, zitadelop, golangci-lint, promtool), generated-file check, vet, lint, unit, envtest, interop, hostile-tenant and demo tests, CRD admission and smoke tests against the oldest supported Kubernetes, every benchmark once, and a short fuzz run.
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt wants changes"; exit 1; }
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" HYDRA_BINARY="$$(hack/setup-hydra.sh)" ZITADELOP_BINARY="$$(hack/setup-zitadelop.sh)" go test $(GO_TEST_FLAGS) -timeout $(TEST_TIMEOUT) ./...
	for m in $(NESTED_MODULES); do (cd $$m && go test $(GO_TEST_FLAGS) ./...) || exit 1; done
	$(MAKE) test-oldest-kube
	$(MAKE) bench-once
	$(MAKE) fuzz

# The support-range check against the oldest Kubernetes README.md supports: the CRD admission tests (every CEL
# rule and marker; a CEL function or field newer than that version fails them), the documented examples and
# samples applied, and an envtest smoke suite: a token issued and kept fresh, a forced refresh, and tokens
# through a ClusterTokenIssuer.
OLDEST_KUBE_SMOKE ?= ^(TestAClientSecretTokenRequestBecomesReadyAndKeepsItsSecretFresh|TestAForcedRefreshGetsANewTokenAndIsRecorded|TestAClusterIssuerServesManyNamespacesWithOneCall)$$

.PHONY: test-oldest-kube
test-oldest-kube: ## Run the CRD admission tests and an envtest smoke suite against the oldest supported kube-apiserver (built once, cached outside the clone).
	assets="$$(hack/setup-envtest-oldest.sh)" && \
		"$$assets/kube-apiserver" --version | grep -qx "Kubernetes v$$(basename "$$assets")" && \
		KUBEBUILDER_ASSETS="$$assets" go test $(GO_TEST_FLAGS) -timeout 10m ./api/v1alpha1/ && \
		KUBEBUILDER_ASSETS="$$assets" go test $(GO_TEST_FLAGS) -timeout 10m -run '^(TestDocsExamplesApply|TestSamplesApply)$$' ./internal/install/ && \
		KUBEBUILDER_ASSETS="$$assets" go test $(GO_TEST_FLAGS) -timeout 10m -run '$(OLDEST_KUBE_SMOKE)' ./internal/controller/tokenrequest/

FUZZTIME ?= 5s

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 5s) each: templates, credential parsing, token answers.
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

# Sizes (TokenRequests) of the scale benchmark in test/scale; a 10,000 run takes about half an hour.
SCALE_SIZES ?= 1000,10000
BENCH_TIMEOUT ?= 90m

.PHONY: bench
bench: ## Run the benchmarks and print their figures, with the scale table for SCALE_SIZES (SCALE_PROFILE=dir saves manager profiles).
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" SCALE_SIZES=$(SCALE_SIZES) go test -run '^$$' -bench . -benchmem -timeout $(BENCH_TIMEOUT) ./...

# Root-module packages with a Benchmark function; bench-once runs only these,
# and each nested module's benchmarks in that module.
BENCH_PACKAGES = $$(git ls-files '*_test.go' $(foreach m,$(NESTED_MODULES),':!$(m)') | xargs grep -l '^func Benchmark' | xargs -n1 dirname | sort -u | sed 's|^|./|')

.PHONY: bench-once
bench-once: ## Compile and run every benchmark once (-benchtime=1x), the scale benchmark at 50 TokenRequests, so none rots.
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" SCALE_SIZES=50 SCALE_TOKEN_LIFETIME=40s SCALE_UNRELATED=500 \
		go test $(GO_TEST_FLAGS) -run '^$$' -bench . -benchtime=1x -timeout 15m $(BENCH_PACKAGES)
	for m in $(NESTED_MODULES); do (cd $$m && go test $(GO_TEST_FLAGS) -run '^$$' -bench . -benchtime=1x ./...) || exit 1; done

.PHONY: lint
lint: ## Run golangci-lint (built from the Go module proxy once, cached outside the clone).
	@test -x $(GOLANGCI_LINT) || GOBIN=$(dir $(GOLANGCI_LINT)) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(GOLANGCI_LINT) run ./...
	for m in $(NESTED_MODULES); do (cd $$m && $(GOLANGCI_LINT) run ./...) || exit 1; done

##@ Build

.PHONY: build
build: ## Build the manager into bin/manager and the kubectl plugin into bin/kubectl-token_operator.
	CGO_ENABLED=0 go build -trimpath -ldflags '$(GO_LDFLAGS)' -o bin/manager ./cmd/manager
	CGO_ENABLED=0 go build -trimpath -ldflags '$(GO_LDFLAGS)' -o bin/kubectl-token_operator ./cmd/kubectl-token_operator

.PHONY: run
run: manifests ## Run the manager against the current kubeconfig (plain-http loopback token services allowed).
	go run ./cmd/manager --insecure-allow-http-loopback

DOCKER_BUILD_ARGS = --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE)

.PHONY: docker-build
docker-build: ## Build the container image IMG for the local platform (needs a Docker engine).
	$(CONTAINER_TOOL) build $(DOCKER_BUILD_ARGS) -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the container image IMG.
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: docker-buildx
docker-buildx: ## Build and push IMG for every platform in PLATFORMS (default linux/amd64,linux/arm64) with docker buildx.
	- $(CONTAINER_TOOL) buildx create --name token-operator-builder
	$(CONTAINER_TOOL) buildx use token-operator-builder
	$(CONTAINER_TOOL) buildx build --push --platform=$(PLATFORMS) $(DOCKER_BUILD_ARGS) --tag $(IMG) .
	- $(CONTAINER_TOOL) buildx rm token-operator-builder

.PHONY: demo
demo: build ## Run the operator locally against a local control plane and token server.
	hack/demo.sh

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	kubectl apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Remove the CRDs from the cluster of the current kubeconfig, and with them every TokenRequest and issuer, and the token Secrets not under deletionPolicy: Retain.
	kubectl delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests kustomization-img ## Deploy the operator with the image IMG to the cluster of the current kubeconfig.
	kubectl apply --server-side -k dist/installer

.PHONY: undeploy
undeploy: ## Remove the operator from the cluster of the current kubeconfig; the CRDs, TokenRequests, issuers, token Secrets and the namespace stay (make uninstall removes the CRDs).
	kubectl delete --ignore-not-found -k config/undeploy

##@ Packaging

KUSTOMIZE ?= kubectl kustomize
HELM ?= $(CURDIR)/bin/helm
HELM_VERSION ?= v4.3.2

.PHONY: build-installer
build-installer: manifests kustomization-img ## Write dist/install.yaml: CRDs, RBAC and the manager (config/default) with the image IMG.
	$(KUSTOMIZE) dist/installer > dist/install.yaml
	@echo "wrote dist/install.yaml with image $(IMG)"

# Writes dist/installer/kustomization.yaml: config/default with the manager image set to IMG
# (name:tag, name without a tag meaning :latest, or name@sha256:digest).
.PHONY: kustomization-img
kustomization-img:
	@mkdir -p dist/installer
	@img='$(IMG)'; \
	case "$$img" in \
	  *@*) name="$${img%@*}"; ref="  digest: $${img#*@}";; \
	  *) last="$${img##*/}"; case "$$last" in \
	       *:*) name="$${img%:*}"; ref="  newTag: $${img##*:}";; \
	       *) name="$$img"; ref="  newTag: latest";; \
	     esac;; \
	esac; \
	printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../config/default\nimages:\n- name: token-operator\n  newName: %s\n%s\n' "$$name" "$$ref" > dist/installer/kustomization.yaml

.PHONY: helm-lint
helm-lint: ## Lint the Helm chart with default values and with every option on (builds helm into bin/).
	@test -x $(HELM) || GOBIN=$(CURDIR)/bin go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	$(HELM) lint --strict charts/token-operator
	$(HELM) lint --strict charts/token-operator --values charts/token-operator/ci/all-on-values.yaml
