#!/usr/bin/env bash
# A smoke test of the user-account connector against Telegram's public *test* servers, by hand
# (not in CI: it needs the network, and the team's own api_id/api_hash). See
# docs/user-accounts.md, "A smoke test against Telegram".
#
#   LANBOX_TELEGRAM_API_ID=... LANBOX_TELEGRAM_API_HASH=... scripts/telegram-test-smoke.sh
#
# What it does, in a throw-away data directory:
#   1. logs a test phone number in (99966 + data centre + 4 digits; its login code is the data
#      centre's digit five times), trying a few numbers, since only numbers someone registered
#      before can sign in (lanbox connects accounts, it does not register them);
#   2. starts `lanbox serve` and waits for the account's connector to be online (it caught up
#      with updates.getDifference and went live);
#   3. waits SMOKE_WAIT seconds (default 30) for messages: write to the test account from a
#      Telegram app logged in to the test network to see them arrive; prints the chats;
#   4. removes the account, which logs it out on Telegram (auth.logOut).
# Environment: LANBOX_BIN (default target/release/lanbox, else target/debug/lanbox),
# SMOKE_DC (1-3, default 2), SMOKE_PHONE (a test number to use instead of random ones),
# LANBOX_TELEGRAM_PASSWORD (the account's 2FA password, if it has one), SMOKE_KEEP=1 keeps
# the data directory. SMOKE_SIMULATOR=1 runs the same steps against `lanbox dev mtproto-sim`
# on loopback instead (checks the script itself, offline; any api_id/api_hash).
set -euo pipefail

cd "$(dirname "$0")/.."
: "${LANBOX_TELEGRAM_API_ID:?set LANBOX_TELEGRAM_API_ID (the team application, see my.telegram.org)}"
: "${LANBOX_TELEGRAM_API_HASH:?set LANBOX_TELEGRAM_API_HASH}"
BIN="${LANBOX_BIN:-}"
if [ -z "$BIN" ]; then
    for b in target/release/lanbox target/debug/lanbox; do
        [ -x "$b" ] && BIN="$b" && break
    done
fi
[ -x "${BIN:-}" ] || { echo "no lanbox binary: cargo build --release, or set LANBOX_BIN" >&2; exit 2; }
DC="${SMOKE_DC:-2}"
case "$DC" in 1|2|3) ;; *) echo "SMOKE_DC is 1, 2 or 3" >&2; exit 2 ;; esac
CODE="$DC$DC$DC$DC$DC"

WORK="$(mktemp -d)"
DATA="$WORK/data"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${SMOKE_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

export LANBOX_DATA="$DATA" LANBOX_SERVER_LISTEN=127.0.0.1:0 LANBOX_SERVER_MDNS=false
lanbox() { LANBOX_LOG=warn "$BIN" "$@"; }
# A line of a file that a background process writes, once it is there.
wait_line() { # FILE REGEX PID
    for _ in $(seq 1 300); do
        if grep -Eq "$2" "$1"; then grep -E "$2" "$1" | head -1; return 0; fi
        kill -0 "$3" 2>/dev/null || { echo "FAIL: process $3 ended" >&2; return 1; }
        sleep 0.1
    done
    echo "FAIL: no line matching $2 in $1" >&2
    return 1
}

if [ "${SMOKE_SIMULATOR:-0}" = 1 ]; then
    SMOKE_PHONE="${SMOKE_PHONE:-99966${DC}0000}"
    "$BIN" dev mtproto-sim --listen 127.0.0.1:0 --phone "$SMOKE_PHONE" --code "$CODE" \
        --welcome "hello from the smoke test" >"$WORK/sim.out" 2>"$WORK/sim.err" &
    pids+=($!)
    for key in DEV_SIMULATOR DEV_SIMULATOR_KEY; do
        line="$(wait_line "$WORK/sim.out" "^LANBOX_TELEGRAM_$key=" "${pids[0]}")"
        export "${line?}"
    done
    echo "(against the MTProto simulator at $LANBOX_TELEGRAM_DEV_SIMULATOR, not Telegram)"
else
    export LANBOX_TELEGRAM_TEST_SERVERS=true
fi
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

echo "== init"
lanbox init >/dev/null

echo "== login on test data centre $DC"
ACCOUNT=""
for attempt in 1 2 3 4 5; do
    PHONE="${SMOKE_PHONE:-99966$DC$(printf '%04d' $((RANDOM % 10000)))}"
    echo "-- $PHONE (code $CODE)"
    if out="$(printf '%s\n' "$CODE" | lanbox account add-user --phone "$PHONE" --name smoke 2>&1)"; then
        echo "$out"
        ACCOUNT="$(lanbox account list --json | python3 -c '
import json, sys
print(next(a["id"] for a in map(json.loads, sys.stdin) if a.get("kind") == "user"))')"
        break
    fi
    echo "$out" | tail -3
    [ -n "${SMOKE_PHONE:-}" ] && break
done
[ -n "$ACCOUNT" ] || { echo "FAIL: no test number signed in" >&2; exit 1; }

echo "== serve"
PASSWORD="smoke-$(date +%s)-password"
LANBOX_PASSWORD="$PASSWORD" lanbox user add smoke --role admin >/dev/null
TOKEN="$(lanbox token create smoke --label smoke 2>/dev/null | grep -Eo 'lbx_[A-Za-z0-9_-]+')"
"$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
pids+=($!)
ADDR="$(wait_line "$WORK/serve.out" '^lanbox listening on https://' "${pids[-1]}" | sed 's#.*https://##')" \
    || { tail -20 "$WORK/serve.err" >&2; exit 1; }
CERT="$DATA/tls/cert.pem"
api() {
    curl -fsS --cacert "$CERT" --resolve "lanbox.local:${ADDR##*:}:127.0.0.1" \
        -H "Authorization: Bearer $TOKEN" "$@"
}
BASE="https://lanbox.local:${ADDR##*:}"
status=""
for _ in $(seq 1 120); do
    status="$(api "$BASE/api/v1/accounts" | json "print(next(a['status'] for a in d if a['id'] == $ACCOUNT))" || true)"
    [ "$status" = online ] && break
    sleep 0.5
done
[ "$status" = online ] || { echo "FAIL: account $ACCOUNT is '$status', not online" >&2; tail -20 "$WORK/serve.err" >&2; exit 1; }
echo "account $ACCOUNT online (caught up and live)"

WAIT="${SMOKE_WAIT:-30}"
echo "== $WAIT s for messages: write to $PHONE from a Telegram app on the test network"
sleep "$WAIT"
api "$BASE/api/v1/chats" | json '
for c in d["chats"]:
    print(c["id"], c["kind"], c["messages"], "messages")
print(len(d["chats"]), "chats")' 

echo "== remove (logs out on Telegram)"
api -X DELETE "$BASE/api/v1/accounts/$ACCOUNT" >/dev/null
echo "PASS: logged in, connected, logged out on test data centre $DC"
