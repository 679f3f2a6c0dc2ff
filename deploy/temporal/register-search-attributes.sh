#!/bin/sh
# Register the case search attributes on the namespace, skipping those it already has.
#
# Usage: register-search-attributes.sh Name=Type [Name=Type ...]
# The pairs are those of whn.temporal.search_attribute_cli_args(); docker-compose.yml
# lists them and tests/deploy checks the list against the code.
#
# Temporal Cloud registers search attributes with tcld or its web UI, not with this
# (docs/deployment.md): its override file does not run this job.
#
# Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE; for mTLS the temporal CLI's own
# TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH,
# TEMPORAL_TLS_SERVER_CA_CERT_PATH; an API key from the file TEMPORAL_API_KEY_FILE.
set -eu

if [ -n "${TEMPORAL_API_KEY_FILE:-}" ]; then
    TEMPORAL_API_KEY=$(cat "$TEMPORAL_API_KEY_FILE")
    export TEMPORAL_API_KEY
fi

: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}"
if [ "$#" -eq 0 ]; then
    echo "usage: $0 Name=Type [Name=Type ...]" >&2
    exit 2
fi

# A namespace created a moment ago is not yet in the server's namespace cache (refreshed
# every 10 s by default, system.namespaceCacheRefreshInterval): until it is, every call
# here says "not found", so this retries for a minute.
attempts=0
until existing=$(temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" \
    --namespace "$TEMPORAL_NAMESPACE" 2>&1); do
    attempts=$((attempts + 1))
    if [ "$attempts" -ge 30 ]; then
        echo "cannot list search attributes of $TEMPORAL_NAMESPACE: $existing" >&2
        exit 1
    fi
    sleep 2
done

for pair in "$@"; do
    name=${pair%%=*}
    kind=${pair#*=}
    if printf '%s\n' "$existing" | grep -q "^[[:space:]]*$name[[:space:]]"; then
        echo "$name: already registered"
        continue
    fi
    temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" \
        --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type "$kind"
    echo "$name: registered as $kind"
done
