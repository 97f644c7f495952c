#!/usr/bin/env bash
# The superapp under load on loopback, driven by wrk (Debian's package), against a fresh
# `agora demo`: signed-in home pages, a mini-app launch (the host page, a launch context, the
# mini-app's entry file from its own origin) and the OpenID Connect token endpoint. Each figure is
# printed with its ratio to the same server's `/healthz` under the same load, run in this script.
#
#   bash bench/superapp-load.sh [AGORA_BINARY]     (default target/release/agora)
#
# Environment: DURATION_S (default 10), CONNECTIONS (default 32), THREADS (default 2),
# TOKEN_CODES (codes minted for the token run, default 2000). Loopback only; every run is
# bounded by DURATION_S and the demo is stopped when the script exits.
set -euo pipefail

AGORA="${1:-target/release/agora}"
DURATION_S="${DURATION_S:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
TOKEN_CODES="${TOKEN_CODES:-2000}"
PORT="${PORT:-18181}"
BASE="http://127.0.0.1:$PORT"
APP_HOST="clinic.apps.localhost:$PORT"

command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[[ -x "$AGORA" ]] || { echo "error: $AGORA is not an executable; build it: cargo build --release -p agora-cli" >&2; exit 1; }

WORK="$(mktemp -d /tmp/agora-superapp-load.XXXXXX)"
cleanup() {
    [[ -n "${DEMO_PID:-}" ]] && kill "$DEMO_PID" 2>/dev/null && wait "$DEMO_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

"$AGORA" demo --listen "127.0.0.1:$PORT" --data-dir "$WORK/demo" >"$WORK/demo.log" 2>&1 &
DEMO_PID=$!
for _ in $(seq 1 240); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -fsS "$BASE/healthz" >/dev/null || { echo "error: the demo did not start; see its log:" >&2; tail -20 "$WORK/demo.log" >&2; exit 1; }

# Sign the demo customer in as a browser does: the sign-in page's CSRF cookie, then the form.
JAR="$WORK/jar"
signin_page="$(curl -fsS -c "$JAR" "$BASE/signin")"
csrf="$(sed -n 's/.*name="csrf_token" value="\([0-9a-f]*\)".*/\1/p' <<<"$signin_page" | head -1)"
curl -fsS -b "$JAR" -c "$JAR" -o /dev/null -d "csrf_token=$csrf&email=cleo@customer.example&password=agora-demo-password&next=/" "$BASE/signin"
SESSION="$(awk '$6 == "agora_session" { print $7 }' "$JAR")"
[[ -n "$SESSION" ]] || { echo "error: could not sign in the demo customer" >&2; exit 1; }
COOKIE="Cookie: agora_session=$SESSION"
SESSION_CSRF="$(curl -fsS -H "$COOKIE" "$BASE/apps/clinic" | sed -n 's/.*name="agora-csrf" content="\([0-9a-f]*\)".*/\1/p' | head -1)"

# The clinic gets `profile`, so the token run can mint codes without the consent page.
curl -fsS -o /dev/null -H "$COOKIE" -H "x-csrf-token: $SESSION_CSRF" -H 'content-type: application/json' \
    -d '{"scopes":["profile"]}' "$BASE/apps/clinic/grants"

# run NAME WRK-ARGS...: prints "NAME requests/s p99" from wrk's --latency output.
run() {
    local name="$1"; shift
    local out
    out="$(wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION_S}s" "$@")"
    local rps p99 non2xx requests
    rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")"
    p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $5 }' <<<"$out")"
    requests="$(awk '/requests in/ { print $1 }' <<<"$out")"
    echo "$name|$rps|$p99|${non2xx:-0}|$requests"
}

cat >"$WORK/launch.lua" <<EOF
wrk.method = "POST"
wrk.headers["Cookie"] = "agora_session=$SESSION"
wrk.headers["x-csrf-token"] = "$SESSION_CSRF"
EOF

echo "warming up" >&2
wrk -t1 -c4 -d2s -H "$COOKIE" "$BASE/" >/dev/null

results=()
results+=("$(run 'GET /healthz (baseline)' "$BASE/healthz")")
results+=("$(run 'GET / signed in (home: directory, recently used)' -H "$COOKIE" "$BASE/")")
results+=("$(run 'GET /apps/clinic signed in (host page)' -H "$COOKIE" "$BASE/apps/clinic")")
results+=("$(run 'POST /apps/clinic/launch (signed launch context)' -s "$WORK/launch.lua" "$BASE/apps/clinic/launch")")
results+=("$(run 'GET clinic origin / (the mini-app entry)' -H "Host: $APP_HOST" "$BASE/")")

# The token endpoint: codes minted first (each an authorize request), then each exchanged once.
read -r CLIENT_ID CLIENT_SECRET < <(sed -n 's/.*client_id \(app_[0-9a-f]*\) client_secret \([0-9a-f]*\).*/\1 \2/p' "$WORK/demo.log" | head -1)
[[ -n "${CLIENT_SECRET:-}" ]] || { echo "error: the demo printed no OpenID Connect client" >&2; exit 1; }
echo "minting $TOKEN_CODES codes" >&2
VERIFIER="$(head -c 48 /dev/urandom | base64 | tr -d '=+/\n' | head -c 64)"
CHALLENGE="$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')"
: >"$WORK/codes"
for _ in $(seq 1 "$TOKEN_CODES"); do
    curl -sS -o /dev/null -w '%{redirect_url}\n' -H "$COOKIE" \
        "$BASE/oauth/authorize?response_type=code&client_id=$CLIENT_ID&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&scope=openid%20profile&code_challenge=$CHALLENGE&code_challenge_method=S256" \
        | sed -n 's/.*[?&]code=\([0-9a-f]*\).*/\1/p' >>"$WORK/codes"
done
# Each wrk thread takes every THREADS-th code, newest first (codes live code_ttl_seconds, and
# minting thousands takes a while), so no code is sent twice; once a thread has used its share it
# sends a spent code, which the endpoint refuses (counted as non-2xx, not as exchanged).
cat >"$WORK/token.lua" <<EOF
local codes = {}
for line in io.lines("$WORK/codes") do codes[#codes + 1] = line end
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  next_index = #codes - id + 1
end
function request()
  local code = codes[next_index] or codes[#codes]
  next_index = next_index - $THREADS
  local body = "grant_type=authorization_code&code=" .. code ..
    "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&code_verifier=$VERIFIER" ..
    "&client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET"
  return wrk.format("POST", "/oauth/token", { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
EOF
TOKEN_DURATION_S="${TOKEN_DURATION_S:-2}"
out="$(wrk --latency -t"$THREADS" -c"$THREADS" -d"${TOKEN_DURATION_S}s" -s "$WORK/token.lua" "$BASE/oauth/token")"
requests="$(awk '/requests in/ { print $1 }' <<<"$out")"
non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $5 }' <<<"$out")"
p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
exchanged=$(( requests - ${non2xx:-0} ))
rps="$(awk -v n="$exchanged" -v d="$TOKEN_DURATION_S" 'BEGIN { printf "%.1f", n / d }')"
results+=("POST /oauth/token (codes exchanged, $THREADS connections)|$rps|$p99|${non2xx:-0}|$requests")

echo
echo "| route | requests/s | p99 | non-2xx | requests | ratio to /healthz |"
echo "| --- | --- | --- | --- | --- | --- |"
baseline="$(cut -d'|' -f2 <<<"${results[0]}")"
for line in "${results[@]}"; do
    IFS='|' read -r name rps p99 non2xx requests <<<"$line"
    ratio="$(awk -v a="$rps" -v b="$baseline" 'BEGIN { printf "%.3f", a / b }')"
    echo "| $name | $rps | $p99 | $non2xx | $requests | $ratio |"
done
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION_S}s on loopback, against $AGORA demo; the goal is 5,000 signed-in home pages per second."
