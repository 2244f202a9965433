#!/bin/sh
# One-shot: create or upgrade Temporal's PostgreSQL schemas with temporal-sql-tool.
set -eu
schema=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  dir=temporal
  [ "$db" = temporal_visibility ] && dir=visibility
  tool="temporal-sql-tool --plugin postgres12 --ep $POSTGRES_HOST -p 5432 -u $POSTGRES_USER --pw $POSTGRES_PASSWORD --db $db"
  $tool setup-schema -v 0.0 || true   # a no-op error when the schema already exists
  $tool update-schema -d "$schema/$dir/versioned"
done
echo "Temporal schemas are up to date"
