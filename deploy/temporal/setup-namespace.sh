#!/bin/sh
# One-shot: the namespace and kooflow's custom search attributes (idempotent).
set -eu
ns=${TEMPORAL_NAMESPACE:-default}
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do sleep 1; done
temporal operator namespace describe --namespace "$ns" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 ||
  temporal operator namespace create --namespace "$ns" --retention 30d --address "$TEMPORAL_ADDRESS"
for sa in KooflowInstanceId KooflowCarrierUserId KooflowState KooflowBillingCycle; do
  temporal operator search-attribute create --namespace "$ns" --name "$sa" --type Keyword --address "$TEMPORAL_ADDRESS" || true
done
echo "namespace $ns and search attributes ready"
