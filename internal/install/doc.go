// Package install holds the tests of the installation artifacts: the Helm
// chart in charts/token-operator, the kustomize configuration in config/,
// and the YAML examples in README.md, docs/ and config/samples/. Each test
// renders the artifacts in process (Helm's Go SDK, kustomize's krusty) and
// applies every object to a real API server with server-side dry-run.
package install
