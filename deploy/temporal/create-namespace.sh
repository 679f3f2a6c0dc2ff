#!/bin/sh
# Create the namespace the cases run in, with its retention, unless it already exists.
#
# Retention counts from a workflow's close, and a case stays open for months, so this is
# how long a closed case's history stays in Temporal. The case store keeps the record.
# An existing namespace is left as it is: change its retention with
#   temporal operator namespace update --namespace NAME --retention 60d
#
# Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_RETENTION (e.g. 30d); for
# mTLS the temporal CLI's TEMPORAL_TLS_* variables; an API key from TEMPORAL_API_KEY_FILE.
set -eu

if [ -n "${TEMPORAL_API_KEY_FILE:-}" ]; then
    TEMPORAL_API_KEY=$(cat "$TEMPORAL_API_KEY_FILE")
    export TEMPORAL_API_KEY
fi

: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${TEMPORAL_RETENTION:?}"

attempts=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
    attempts=$((attempts + 1))
    if [ "$attempts" -ge 60 ]; then
        echo "Temporal at $TEMPORAL_ADDRESS not serving after 60 attempts" >&2
        exit 1
    fi
    sleep 2
done

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" \
    --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
    echo "namespace $TEMPORAL_NAMESPACE exists; retention left unchanged"
    exit 0
fi
temporal operator namespace create --address "$TEMPORAL_ADDRESS" \
    --namespace "$TEMPORAL_NAMESPACE" --retention "$TEMPORAL_RETENTION" \
    --description "What Happens Next: crime report cases"
echo "namespace $TEMPORAL_NAMESPACE created with retention $TEMPORAL_RETENTION"
