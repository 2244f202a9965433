#!/bin/sh
# One-shot: create or upgrade Temporal's PostgreSQL schemas with temporal-sql-tool (of the
# admin-tools image pinned in docker-compose.yml, the server version kooflow's tests embed).
#
# The connection comes from the environment, which temporal-sql-tool reads itself: SQL_PLUGIN,
# SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD. The password is never on a command line
# (where `ps` shows it and spaces or quotes break it).
#
# Every step is idempotent (setup-schema -v 0.0 leaves a newer schema alone; update-schema
# applies only what is missing) and retried: PostgreSQL may accept connections a moment
# after its health check passes. Compose restarts the job on failure as well.
set -eu
: "${SQL_HOST:?SQL_HOST is not set}" "${SQL_USER:?SQL_USER is not set}" "${SQL_PASSWORD:?SQL_PASSWORD is not set}"
schema=/etc/temporal/schema/postgresql/v12
attempts=${SETUP_ATTEMPTS:-30}

. /retry.sh

for db in temporal temporal_visibility; do
  dir=temporal
  [ "$db" = temporal_visibility ] && dir=visibility
  retry temporal-sql-tool --db "$db" setup-schema -v 0.0
  retry temporal-sql-tool --db "$db" update-schema -d "$schema/$dir/versioned"
done
echo "Temporal schemas are up to date"
