#!/bin/sh
# One-shot: the namespace and kooflow's custom search attributes (idempotent). Uses the
# `temporal` CLI of the admin-tools image pinned in docker-compose.yml.
#
# The frontend's port opens before the server can serve requests, so every step is retried
# (and compose restarts the job on failure as well).
set -eu
: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is not set}"
ns=${TEMPORAL_NAMESPACE:-default}
attempts=${SETUP_ATTEMPTS:-60}
created=0

. /retry.sh

ensure_namespace() {
  temporal operator namespace describe --namespace "$ns" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 ||
    temporal operator namespace create --namespace "$ns" --retention 30d --address "$TEMPORAL_ADDRESS"
}

ensure_search_attribute() {
  if temporal operator search-attribute list --namespace "$ns" --address "$TEMPORAL_ADDRESS" 2>/dev/null | grep -qw -- "$1"; then
    return 0
  fi
  temporal operator search-attribute create --namespace "$ns" --name "$1" --type Keyword --address "$TEMPORAL_ADDRESS" || return 1
  created=$((created + 1))
}

retry temporal operator cluster health --address "$TEMPORAL_ADDRESS"
retry ensure_namespace
for sa in KooflowInstanceId KooflowCarrierUserId KooflowState KooflowBillingCycle; do
  retry ensure_search_attribute "$sa"
done
if [ "$created" -gt 0 ]; then
  # The server caches search attributes for up to a minute (in production it does not read
  # them on every request); kooflow starts only after this job, so wait the cache out once.
  echo "waiting ${SEARCH_ATTRIBUTE_CACHE_SECONDS:-65} s for the server to see the new search attributes"
  sleep "${SEARCH_ATTRIBUTE_CACHE_SECONDS:-65}"
fi
echo "namespace $ns and search attributes ready"
