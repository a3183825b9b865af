#!/usr/bin/env bash
# Calls the web service's cron endpoints, one after the other:
#
#   cron.sh JOB...        e.g. cron.sh mail-flush notifications
#
#   CRON_TOKEN            the bearer token (from /etc/zentralink/env)
#   ZENTRALINK_CRON_URL   where the web service listens (default http://127.0.0.1:8080)
#
# Each job is `POST $ZENTRALINK_CRON_URL/api/cron/<job>`. The token goes to
# curl on its standard input (`--header @-`), never on a command line that
# `ps` shows. Prints each job's answer; exits 1 when a job failed (the others
# still run). Installed by scripts/install.sh as /usr/local/lib/zentralink/cron.sh
# and run by zentralink-cron.service and zentralink-cron-daily.service.
set -euo pipefail

: "${CRON_TOKEN:?CRON_TOKEN must be set (it is in /etc/zentralink/env)}"
base=${ZENTRALINK_CRON_URL:-http://127.0.0.1:8080}
base=${base%/}
[ "$#" -gt 0 ] || { echo "usage: cron.sh JOB..." >&2; exit 2; }

failed=0
for job in "$@"; do
    if [[ ! "$job" =~ ^[a-z][a-z-]*$ ]]; then
        echo "$job: not a job name" >&2
        failed=1
        continue
    fi
    # The body and, on its last line, the status code.
    if ! answer=$(printf 'Authorization: Bearer %s\n' "$CRON_TOKEN" |
        curl --silent --show-error --max-time 600 --request POST --header @- \
            --write-out '\n%{http_code}' "$base/api/cron/$job"); then
        echo "$job: the web service at $base did not answer" >&2
        failed=1
        continue
    fi
    status=${answer##*$'\n'}
    body=${answer%$'\n'*}
    body=$(printf '%s' "$body" | tr '\n' ' ' | cut -c1-500)
    case $status in
        2??) echo "$job: $status $body" ;;
        # Another run of the same job is under way: it does the work.
        409) echo "$job: already running elsewhere: $body" ;;
        *)
            echo "$job: failed with HTTP $status: $body" >&2
            failed=1
            ;;
    esac
done
exit "$failed"
