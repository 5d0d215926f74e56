#!/usr/bin/env bash
# Runs the token-operator demo (make demo): a local kube-apiserver and etcd, a
# local token server speaking Microsoft Entra ID's protocol, and bin/manager
# refreshing two short-lived tokens. Ctrl-C stops it.
#
#   DEMO_DURATION=90s make demo    run unattended; exit 0 only if both
#                                  TokenRequests became Ready and were refreshed
#   DEMO_TOKEN_LIFETIME=60s        lifetime of the issued tokens
#   DEMO_INTERVAL=5s               how often the table is printed
#
# Files go to bin/demo: kubeconfig, token-server-ca.pem, manager.log.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

[ -x bin/manager ] || { echo "bin/manager is missing: run 'make build' (make demo does)" >&2; exit 1; }
assets=$(hack/setup-envtest.sh)
mkdir -p bin/demo
go build -o bin/demo/demo ./hack/demo
exec bin/demo/demo -root "$root" -assets "$assets" -manager bin/manager -workdir bin/demo "$@"
