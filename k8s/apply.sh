#!/usr/bin/env bash
# Apply an overlay in the order the services need: namespace, settings, service accounts and the
# database first, then the Alembic migration Jobs (waited for), then everything else, then wait
# for the rollouts.
# Usage: k8s/apply.sh dev|prod        (kubectl with a context for the target cluster)
set -euo pipefail
overlay="${1:?usage: k8s/apply.sh dev|prod}"
dir="$(cd "$(dirname "$0")" && pwd)/overlays/${overlay}"
ns=egov-trust
render() { kubectl kustomize "$dir"; }

render | kubectl apply -f - -l 'app.kubernetes.io/component in (namespace,settings,service-account,database)' \
  --server-side --field-manager=egov-apply
if kubectl -n "$ns" get statefulset postgres >/dev/null 2>&1; then
  kubectl -n "$ns" rollout status statefulset/postgres --timeout=300s
fi

# Jobs are immutable: the previous run goes, the new one runs with the new image. (The suspended
# keys-bootstrap Job of prod goes too and comes back suspended: bootstrapping is idempotent.)
kubectl -n "$ns" delete job -l 'app.kubernetes.io/component in (migration,bootstrap)' \
  --ignore-not-found --wait=true
render | kubectl apply -f - -l app.kubernetes.io/component=migration --server-side --field-manager=egov-apply
kubectl -n "$ns" wait --for=condition=complete job -l app.kubernetes.io/component=migration --timeout=900s

render | kubectl apply -f - --server-side --field-manager=egov-apply
for d in identity keys registry signing verify-portal; do
  kubectl -n "$ns" rollout status "deployment/${d}" --timeout=600s
done
