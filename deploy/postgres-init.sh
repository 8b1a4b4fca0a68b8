#!/bin/sh
# Run once by the postgres image on an empty data directory
# (/docker-entrypoint-initdb.d): the application's own role and database, so
# that the API and the workers never use Temporal's superuser.
set -eu
: "${GUEST_JOURNEY_DB_PASSWORD:?GUEST_JOURNEY_DB_PASSWORD must be set}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set app_password="$GUEST_JOURNEY_DB_PASSWORD" <<'SQL'
CREATE ROLE guest_journey LOGIN PASSWORD :'app_password';
CREATE DATABASE guest_journey OWNER guest_journey;
REVOKE ALL ON DATABASE guest_journey FROM PUBLIC;
SQL
