#!/usr/bin/env bash
# From a running server to a first authorized MCP tool call, with curl only.
# Start the server with the development switch (loopback only):
#   DEV_AUTO_APPROVE=alice npm start
# then run: bash examples/first-tool-call.sh [http://127.0.0.1:8787]
set -euo pipefail
BASE="${1:-http://127.0.0.1:8787}"
REDIRECT="http://127.0.0.1:9/callback"   # nobody listens: we read the code from the Location header
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }

# 1. Register a public client (RFC 7591).
CLIENT_ID=$(curl -sf "$BASE/register" -H 'content-type: application/json' \
  -d "{\"client_name\":\"curl\",\"redirect_uris\":[\"$REDIRECT\"],\"token_endpoint_auth_method\":\"none\"}" | json client_id)

# 2. Authorize with PKCE (S256); the development switch approves at once and redirects with a code.
VERIFIER=$(openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n')
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | openssl base64 | tr '+/' '-_' | tr -d '=\n')
LOCATION=$(curl -s -o /dev/null -w '%{redirect_url}' "$BASE/authorize?response_type=code&client_id=$CLIENT_ID&redirect_uri=$REDIRECT&scope=mcp:tools&state=xyz&code_challenge=$CHALLENGE&code_challenge_method=S256&resource=$BASE/mcp")
CODE=$(node -e 'console.log(new URL(process.argv[1]).searchParams.get("code"))' "$LOCATION")

# 3. Exchange the code for tokens.
ACCESS_TOKEN=$(curl -sf "$BASE/token" -d grant_type=authorization_code -d "code=$CODE" \
  -d "redirect_uri=$REDIRECT" -d "code_verifier=$VERIFIER" -d "client_id=$CLIENT_ID" | json access_token)

# 4. Open an MCP session (initialize), then call the whoami tool in it.
MCP=(-H "authorization: Bearer $ACCESS_TOKEN" -H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
SESSION=$(curl -sf -D - -o /dev/null "$BASE/mcp" "${MCP[@]}" \
  -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' \
  | tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
curl -sf "$BASE/mcp" "${MCP[@]}" -H "mcp-session-id: $SESSION" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
curl -sf "$BASE/mcp" "${MCP[@]}" -H "mcp-session-id: $SESSION" \
  -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
echo
