#!/bin/sh
# Run a command with secrets taken from files into its environment.
#
#   ENV_FROM_FILES="POSTGRES_PWD OTHER" POSTGRES_PWD_FILE=/run/secrets/x env-from-files.sh CMD...
#
# For images that read a secret only from an environment variable (the Temporal server's
# POSTGRES_PWD, the Temporal UI's TEMPORAL_AUTH_CLIENT_SECRET, Keycloak's admin password):
# the compose file names the file, so the value is in no container configuration
# (docker inspect) and only in the environment of the process this starts.
set -eu

for name in ${ENV_FROM_FILES:-}; do
    case $name in
        *[!A-Za-z0-9_]* | [0-9]*)
            echo "env-from-files: not a variable name: $name" >&2
            exit 2
            ;;
    esac
    eval "path=\${${name}_FILE:-}"
    if [ -z "$path" ]; then
        echo "env-from-files: ${name}_FILE is not set" >&2
        exit 2
    fi
    if [ ! -s "$path" ]; then
        echo "env-from-files: $path (${name}_FILE) is missing or empty" >&2
        exit 2
    fi
    value=$(cat "$path")
    export "$name=$value"
    unset "${name}_FILE"
done
exec "$@"
