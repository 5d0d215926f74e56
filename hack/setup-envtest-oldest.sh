#!/usr/bin/env bash
# Builds the oldest Kubernetes version README.md supports (kube-apiserver from
# hack/tools/kube-apiserver-1.29, same etcd) into the cache outside the clone and
# prints its folder, for the support-range tests in 'make test-oldest-kube'.
set -euo pipefail
export KUBE_VERSION=1.29.15 KUBE_MODULE=kube-apiserver-1.29
exec "$(dirname "${BASH_SOURCE[0]}")/setup-envtest.sh"
