#!/usr/bin/env bash
# Smoke test and worked example for the test identity provider (server.js beside this file).
# Uses only curl and node. Run from anywhere:  bash tests/idp/smoke.sh
# It starts the provider on a free port, then, with plain HTTP requests:
#   discovery + JWKS; a client-credentials JWT for gatehouse-machine (aud/scope/client_id);
#   an authorization-code sign-in for alice without a browser (PKCE S256, cookie jar);
#   the code exchange with client_secret_basic; userinfo with her groups;
#   a key rotation (JWKS has 2 keys, new tokens carry the new kid, the session survives);
#   RP-initiated logout;
#   the counters; and both ways of stopping it (SIGTERM, stdin closed).
# Exits non-zero at the first thing that is not as documented in README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ ! -d "$here/node_modules/oidc-provider" ]; then
  echo "smoke: $here/node_modules is missing; run: npm ci --prefix tests/idp" >&2
  exit 2
fi

REDIRECT=http://127.0.0.1:9/auth/callback
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "smoke: FAIL: $*" >&2
  if [ -s "$work/stderr" ]; then echo "--- provider stderr:" >&2; cat "$work/stderr" >&2; fi
  exit 1
}
step() { printf '\n== %s\n' "$*"; }

# json KEY... < document: prints the value at that path (strings raw, the rest as JSON).
json() {
  node -e '
    let s = "";
    process.stdin.on("data", (d) => (s += d)).on("end", () => {
      let v = JSON.parse(s);
      for (const k of process.argv.slice(1)) v = v?.[k];
      process.stdout.write(v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v));
    });' "$@"
}
# jwt_part INDEX TOKEN: the decoded header (0) or payload (1) of a JWT.
jwt_part() {
  node -e 'process.stdout.write(Buffer.from(process.argv[2].split(".")[process.argv[1]], "base64url").toString())' "$1" "$2"
}
# header NAME < headers-file: the value of one response header (last one wins).
header() { tr -d '\r' | awk -v n="$(echo "$1" | tr 'A-Z' 'a-z')" 'BEGIN{FS=": "} tolower($1)==n {sub(/^[^:]*: /,""); v=$0} END{print v}'; }
status() { tr -d '\r' | awk 'NR==1{print $2}'; }
absolute() { case "$1" in /*) echo "$issuer$1" ;; *) echo "$1" ;; esac; }

# ---------------------------------------------------------------------------------------------
step "start: node server.js --host 127.0.0.1 --issuer-host localhost --port 0 --redirect-uri $REDIRECT"
# Its stdin is a FIFO this script holds open on fd 3: when the script ends (or crashes), the
# provider sees end-of-file and exits. (Started with </dev/null it would exit at once.)
mkfifo "$work/stdin"
node "$here/server.js" --host 127.0.0.1 --issuer-host localhost --port 0 \
  --redirect-uri "$REDIRECT" --post-logout-redirect-uri http://127.0.0.1:9/ \
  <"$work/stdin" >"$work/stdout" 2>"$work/stderr" &
pid=$!
exec 3>"$work/stdin"
for _ in $(seq 1 300); do
  if [ "$(wc -l <"$work/stdout")" -ge 1 ]; then break; fi
  kill -0 "$pid" 2>/dev/null || fail "the provider exited before it was ready"
  sleep 0.1
done
ready=$(head -n 1 "$work/stdout")
echo "ready line: $ready"
[ "$(json ready <<<"$ready")" = true ] || fail "no ready line"
issuer=$(json issuer <<<"$ready")
port=$(json port <<<"$ready")
[ "$issuer" = "http://localhost:$port" ] || fail "issuer $issuer"

# ---------------------------------------------------------------------------------------------
step "discovery and JWKS"
curl -fsS "$issuer/.well-known/openid-configuration" >"$work/discovery.json"
for k in issuer authorization_endpoint token_endpoint userinfo_endpoint jwks_uri end_session_endpoint; do
  printf '%-24s %s\n' "$k" "$(json "$k" <"$work/discovery.json")"
done
printf '%-24s %s\n' code_challenge_methods "$(json code_challenge_methods_supported <"$work/discovery.json")"
printf '%-24s %s\n' scopes_supported "$(json scopes_supported <"$work/discovery.json")"
[ "$(json issuer <"$work/discovery.json")" = "$issuer" ] || fail "discovery issuer"
authz=$(json authorization_endpoint <"$work/discovery.json")
token_ep=$(json token_endpoint <"$work/discovery.json")
userinfo_ep=$(json userinfo_endpoint <"$work/discovery.json")
jwks_uri=$(json jwks_uri <"$work/discovery.json")
curl -fsS "$jwks_uri" >"$work/jwks.json"
first_kid=$(json keys 0 kid <"$work/jwks.json")
echo "JWKS: $(json keys length <"$work/jwks.json") key(s), kid $first_kid, kty $(json keys 0 kty <"$work/jwks.json"), alg $(json keys 0 alg <"$work/jwks.json")"
[ "$(json keys 0 d <"$work/jwks.json")" = "" ] || fail "the JWKS publishes a private key"

# ---------------------------------------------------------------------------------------------
step "client credentials: gatehouse-machine (client_secret_basic, scope, resource=api://default)"
cc() { # cc CLIENT SCOPE [extra curl args]: prints the token response, body only
  local client=$1 scope=$2; shift 2
  curl -sS -u "$client:$client-secret" -d grant_type=client_credentials --data-urlencode "scope=$scope" "$@" "$token_ep"
}
cc gatehouse-machine "directory.read directory.write" --data-urlencode resource=api://default >"$work/cc.json"
at=$(json access_token <"$work/cc.json")
[ -n "$at" ] || fail "no token: $(cat "$work/cc.json")"
echo "token_type $(json token_type <"$work/cc.json"), expires_in $(json expires_in <"$work/cc.json"), scope '$(json scope <"$work/cc.json")'"
echo "header:  $(jwt_part 0 "$at")"
echo "payload: $(jwt_part 1 "$at")"
[ "$(jwt_part 1 "$at" | json aud)" = "api://default" ] || fail "aud"
[ "$(jwt_part 1 "$at" | json client_id)" = "gatehouse-machine" ] || fail "client_id"
[ "$(jwt_part 1 "$at" | json scope)" = "directory.read directory.write" ] || fail "scope"
[ "$(jwt_part 0 "$at" | json kid)" = "$first_kid" ] || fail "kid"

echo "-- without resource: the same audience (api://default is the machine clients' default)"
at2=$(cc gatehouse-reader directory.read | json access_token)
echo "payload: $(jwt_part 1 "$at2")"
[ "$(jwt_part 1 "$at2" | json aud)" = "api://default" ] || fail "default aud"
echo "-- gatehouse-reader asking for directory.write:"
refused=$(cc gatehouse-reader "directory.read directory.write")
echo "$refused"
[ "$(json error <<<"$refused")" = invalid_scope ] || fail "reader got write"
echo "-- without scope:"
noscope=$(cc gatehouse-machine "")
echo "payload: $(jwt_part 1 "$(json access_token <<<"$noscope")" 2>/dev/null || echo "$noscope")"

# ---------------------------------------------------------------------------------------------
step "authorization code + PKCE for alice, without a browser (curl with a cookie jar)"
verifier=$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64url"))')
challenge=$(node -e 'process.stdout.write(require("crypto").createHash("sha256").update(process.argv[1]).digest("base64url"))' "$verifier")
jar=$work/cookies.txt
# 1. The authorization request: 303 to the login interaction, with cookies to keep.
curl -sS -o /dev/null -D "$work/h1" -c "$jar" -b "$jar" --get "$authz" \
  --data-urlencode client_id=gatehouse-web --data-urlencode response_type=code \
  --data-urlencode "scope=openid email profile groups" --data-urlencode "redirect_uri=$REDIRECT" \
  --data-urlencode state=state-123 --data-urlencode nonce=nonce-456 \
  --data-urlencode "code_challenge=$challenge" --data-urlencode code_challenge_method=S256
interaction=$(absolute "$(header location <"$work/h1")")
echo "1. GET /auth -> $(status <"$work/h1") Location: $interaction"
[ "$(status <"$work/h1")" = 303 ] || fail "authorization request"
# 2. The login page (what a browser would show): a form with login and password.
curl -sS -b "$jar" -c "$jar" "$interaction" >"$work/login.html"
grep -q 'name="login"' "$work/login.html" || fail "no login form"
echo "2. GET $interaction -> login form ($(grep -o '<form[^>]*>' "$work/login.html" | head -n 1))"
# 3. Submit it. Any password; the login must be a known user: an unknown one gets the same
#    form again (303 back to the interaction), nobody is signed in. Then alice.
curl -sS -o /dev/null -D "$work/h3" -b "$jar" -c "$jar" "$interaction" \
  --data-urlencode prompt=login --data-urlencode login=carol --data-urlencode password=any
echo "3. POST prompt=login&login=carol&password=any -> $(status <"$work/h3") Location: $(header location <"$work/h3") (unknown user: the form again)"
[ "$(absolute "$(header location <"$work/h3")")" = "$interaction" ] || fail "an unknown user was not sent back to the form"
curl -sS -o /dev/null -D "$work/h3" -b "$jar" -c "$jar" "$interaction" \
  --data-urlencode prompt=login --data-urlencode login=alice --data-urlencode password=any
resume=$(absolute "$(header location <"$work/h3")")
echo "   POST prompt=login&login=alice&password=any -> $(status <"$work/h3") Location: $resume"
# 4. Resume the authorization (the _interaction_resume cookie is scoped to /auth/<uid>); consent is granted automatically (first-party client), so this
#    redirects straight to the client with code, state and iss.
curl -sS -o /dev/null -D "$work/h4" -b "$jar" -c "$jar" "$resume"
callback=$(header location <"$work/h4")
echo "4. GET $resume -> $(status <"$work/h4") Location: $callback"
case "$callback" in "$REDIRECT?"*) ;; *) fail "not sent back to the client: $callback" ;; esac
echo "   cookies kept for localhost: $(awk '!/^#/ && NF>=7 {printf "%s(path %s) ", $6, $3} /^#HttpOnly_/ {printf "%s(path %s) ", $6, $3}' "$jar")"
query=${callback#*\?}
param() { node -e 'process.stdout.write(new URLSearchParams(process.argv[1]).get(process.argv[2]) ?? "")' "$query" "$1"; }
code=$(param code)
[ "$(param state)" = state-123 ] || fail "state"
[ "$(param iss)" = "$issuer" ] || fail "iss in the authorization response"
echo "   code=${code:0:12}… state=$(param state) iss=$(param iss)"

step "code exchange (client_secret_basic gatehouse-web:gatehouse-web-secret, code_verifier)"
curl -sS -u gatehouse-web:gatehouse-web-secret -d grant_type=authorization_code \
  --data-urlencode "code=$code" --data-urlencode "redirect_uri=$REDIRECT" \
  --data-urlencode "code_verifier=$verifier" "$token_ep" >"$work/tokens.json"
id_token=$(json id_token <"$work/tokens.json")
web_at=$(json access_token <"$work/tokens.json")
[ -n "$id_token" ] || fail "no ID token: $(cat "$work/tokens.json")"
echo "token response keys: $(node -e 'process.stdout.write(Object.keys(JSON.parse(require("fs").readFileSync(0))).join(" "))' <"$work/tokens.json"), scope '$(json scope <"$work/tokens.json")'"
echo "access token (opaque, ${#web_at} chars): ${web_at:0:12}…"
echo "ID token header:  $(jwt_part 0 "$id_token")"
echo "ID token payload: $(jwt_part 1 "$id_token")"
[ "$(jwt_part 1 "$id_token" | json nonce)" = nonce-456 ] || fail "nonce"
[ "$(jwt_part 1 "$id_token" | json groups)" = '["gatehouse-admins","engineering"]' ] || fail "groups in the ID token"

step "userinfo with the access token"
userinfo=$(curl -fsS -H "Authorization: Bearer $web_at" "$userinfo_ep")
echo "$userinfo"
[ "$(json groups <<<"$userinfo")" = '["gatehouse-admins","engineering"]' ] || fail "groups at userinfo"
[ "$(json email <<<"$userinfo")" = alice@example.com ] || fail "email at userinfo"
echo "-- a client-credentials JWT at userinfo (not accepted: it is for api://default):"
curl -sS -o /dev/null -w '%{http_code} ' -H "Authorization: Bearer $at" "$userinfo_ep"
curl -sS -D - -o /dev/null -H "Authorization: Bearer $at" "$userinfo_ep" | header www-authenticate

# ---------------------------------------------------------------------------------------------
step "key rotation: POST /__test/rotate-keys"
rotated=$(curl -fsS -X POST "$issuer/__test/rotate-keys")
echo "$rotated"
new_kid=$(json kid <<<"$rotated")
curl -fsS "$jwks_uri" >"$work/jwks2.json"
kids=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0)).keys.map((k) => k.kid).join(" "))' <"$work/jwks2.json")
echo "JWKS kids now: $kids"
[ "$kids" = "$new_kid $first_kid" ] || fail "JWKS after rotation"
at3=$(cc gatehouse-machine directory.read | json access_token)
echo "new client-credentials token header: $(jwt_part 0 "$at3")"
[ "$(jwt_part 0 "$at3" | json kid)" = "$new_kid" ] || fail "the new key does not sign"
echo "-- the access token issued before the rotation still works at userinfo:"
curl -fsS -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $web_at" "$userinfo_ep"
echo "-- alice's session survived: a new authorization request returns a code without a login form"
curl -sS -o /dev/null -D "$work/h5" -c "$jar" -b "$jar" --get "$authz" \
  --data-urlencode client_id=gatehouse-web --data-urlencode response_type=code \
  --data-urlencode "scope=openid email profile groups" --data-urlencode "redirect_uri=$REDIRECT" \
  --data-urlencode state=s2 --data-urlencode nonce=n2 \
  --data-urlencode "code_challenge=$challenge" --data-urlencode code_challenge_method=S256
loc=$(header location <"$work/h5")
echo "GET /auth -> $(status <"$work/h5") Location: ${loc:0:60}…"
case "$loc" in "$REDIRECT?"*) ;; *) fail "session lost by the rotation: $loc" ;; esac
query=${loc#*\?}
id_token2=$(curl -sS -u gatehouse-web:gatehouse-web-secret -d grant_type=authorization_code \
  --data-urlencode "code=$(param code)" --data-urlencode "redirect_uri=$REDIRECT" \
  --data-urlencode "code_verifier=$verifier" "$token_ep" | json id_token)
echo "new ID token header: $(jwt_part 0 "$id_token2")"
[ "$(jwt_part 0 "$id_token2" | json kid)" = "$new_kid" ] || fail "ID token kid after rotation"

# ---------------------------------------------------------------------------------------------
step "RP-initiated logout: end_session_endpoint with id_token_hint"
end_session=$(json end_session_endpoint <"$work/discovery.json")
curl -sS -b "$jar" -c "$jar" --get "$end_session" --data-urlencode "id_token_hint=$id_token2" \
  --data-urlencode post_logout_redirect_uri=http://127.0.0.1:9/ --data-urlencode state=bye-1 >"$work/logout.html"
xsrf=$(grep -o 'name="xsrf" value="[^"]*"' "$work/logout.html" | sed 's/.*value="//; s/"$//')
[ -n "$xsrf" ] || fail "no logout confirmation form"
echo "GET /session/end -> confirmation page: $(grep -o '<h1>[^<]*' "$work/logout.html" | sed 's/<h1>//')"
curl -sS -o /dev/null -D "$work/h6" -b "$jar" -c "$jar" "$issuer/session/end/confirm" \
  --data-urlencode "xsrf=$xsrf" --data-urlencode logout=yes
echo "POST /session/end/confirm xsrf=…&logout=yes -> $(status <"$work/h6") Location: $(header location <"$work/h6")"
[ "$(header location <"$work/h6")" = "http://127.0.0.1:9/?state=bye-1" ] || fail "post-logout redirect"
curl -sS -o /dev/null -D "$work/h7" -b "$jar" -c "$jar" --get "$authz" \
  --data-urlencode client_id=gatehouse-web --data-urlencode response_type=code \
  --data-urlencode scope=openid --data-urlencode "redirect_uri=$REDIRECT" \
  --data-urlencode "code_challenge=$challenge" --data-urlencode code_challenge_method=S256
echo "signed out: GET /auth -> $(status <"$work/h7") Location: $(header location <"$work/h7")"
case "$(header location <"$work/h7")" in */interaction/*) ;; *) fail "still signed in after logout" ;; esac

# ---------------------------------------------------------------------------------------------
step "counters: GET /__test/stats"
curl -fsS "$issuer/__test/stats"
echo

step "stop: SIGTERM"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
echo "exit code $rc"
[ "$rc" = 0 ] || fail "exit code $rc on SIGTERM"
pid=
exec 3>&-
[ "$(wc -l <"$work/stdout")" = 1 ] || fail "stdout has more than the ready line: $(cat "$work/stdout")"
echo "stdout held only the ready line; stderr had $(wc -l <"$work/stderr") line(s) (runtime and dev-only warnings)"

step "stop: stdin closed"
mkfifo "$work/stdin2"
node "$here/server.js" --port 0 <"$work/stdin2" >"$work/stdout2" 2>/dev/null &
pid=$!
exec 4>"$work/stdin2"
for _ in $(seq 1 300); do [ "$(wc -l <"$work/stdout2")" -ge 1 ] && break; sleep 0.1; done
echo "ready: $(head -n 1 "$work/stdout2")"
exec 4>&-
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "still running after its stdin closed"
rc=0
wait "$pid" || rc=$?
pid=
echo "exited with code $rc after its stdin closed"

printf '\nsmoke: OK\n'
