#!/usr/bin/env bash
# The built-in demo: an MCP session through mcp-scrub against the bundled leaky test server (which
# leaks FAKE secrets through tool results, errors, resources and stderr), then `mcp-scrub filter`
# over a sample log. Shows what the client receives and the alert file.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
demo=$(mktemp -d)
trap 'rm -rf "$demo"' EXIT
printf '0123456789abcdef0123456789abcdef\n' > "$demo/fingerprint.key"   # demo key, not a secret

# Fake credentials in the server's environment, as a client configuration would pass them.
export LEAK_SECRET="Zq8vR2xkPm4TnW7yL3bH"
export DATABASE_URL="postgresql://app:S3cretPassw0rdX9@db.internal:5432/prod"
export LEAK_DB_URL="$DATABASE_URL"
export API_TOKEN="$LEAK_SECRET"

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
bold "1. An MCP session through: mcp-scrub -- leaky_server"
echo "   (the server holds fake secrets in its environment: API_TOKEN, DATABASE_URL)"
requests=$(cat <<'JSON'
{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"demo","version":"1"}}}
{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"leak_structured","arguments":{}}}
{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"leak_error","arguments":{}}}
{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"file:///app/.env"}}
{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"leak_stderr","arguments":{}}}
{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"message":"clean messages pass byte-identical"}}}
JSON
)
bold "   What the client receives (stdout):"
printf '%s\n' "$requests" | "$B/mcp-scrub" --fingerprint-key "$demo/fingerprint.key" \
  --secret-env LEAK_DB_URL --alerts "$demo/alerts.jsonl" -- "$B/tests/leaky_server" \
  2> "$demo/stderr.txt" | cut -c1-220
bold "   What reaches the client's log (stderr):"
cat "$demo/stderr.txt"
bold "   The alert file (no secret, no part of one):"
cut -c1-260 "$demo/alerts.jsonl"

bold "2. A log pipeline stage: mcp-scrub filter < corpus/e2e/app.log"
"$B/mcp-scrub" filter --fingerprint-key "$demo/fingerprint.key" --alerts "$demo/filter-alerts.jsonl" \
  < corpus/e2e/app.log
bold "   Alerts:"
cut -c1-200 "$demo/filter-alerts.jsonl"
bold "3. A scanner: mcp-scrub scan corpus/e2e/app.log (exit 1 when anything is found)"
"$B/mcp-scrub" scan --fingerprint-key "$demo/fingerprint.key" corpus/e2e/app.log || echo "(exit status $?)"
