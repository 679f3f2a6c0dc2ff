#!/bin/sh
# Create Temporal's two databases (persistence and visibility) on temporal-db and bring
# both schemas to the version this admin-tools image ships.
#
# Run on every deployment, before the server starts: each step is safe to repeat.
# `setup-schema -v 0.0` leaves a database that already has a newer version alone, and
# `update-schema` applies only the versions the database has not recorded yet, so after
# an image upgrade this is also the schema upgrade.
#
# Environment: SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (read by temporal-sql-tool
# itself, so it never appears on a command line) or SQL_PASSWORD_FILE (a compose secret),
# DBNAME, VISIBILITY_DBNAME.
set -eu

if [ -n "${SQL_PASSWORD_FILE:-}" ]; then
    SQL_PASSWORD=$(cat "$SQL_PASSWORD_FILE")
    export SQL_PASSWORD
fi

: "${SQL_HOST:?}" "${SQL_PORT:?}" "${SQL_USER:?}" "${SQL_PASSWORD:?}"
: "${DBNAME:=temporal}" "${VISIBILITY_DBNAME:=temporal_visibility}"
SCHEMA_DIR=${SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}

sql_tool() {
    temporal-sql-tool --plugin postgres12 --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" "$@"
}

attempts=0
until nc -z "$SQL_HOST" "$SQL_PORT"; do
    attempts=$((attempts + 1))
    if [ "$attempts" -ge 60 ]; then
        echo "PostgreSQL at $SQL_HOST:$SQL_PORT not reachable after 60 s" >&2
        exit 1
    fi
    sleep 1
done

setup() {
    database=$1
    versioned=$2
    # `create` fails when the database exists, which is the normal case after the
    # first deployment; a real problem (wrong password, no such host) fails the next step.
    if sql_tool --db "$database" create; then
        echo "created database $database"
    else
        echo "database $database not created (it probably exists); continuing"
    fi
    sql_tool --db "$database" setup-schema -v 0.0
    sql_tool --db "$database" update-schema -d "$SCHEMA_DIR/$versioned/versioned"
    echo "schema of $database is up to date"
}

setup "$DBNAME" temporal
setup "$VISIBILITY_DBNAME" visibility
