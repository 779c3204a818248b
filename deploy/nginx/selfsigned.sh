#!/usr/bin/env bash
# A throwaway self-signed certificate for trying the TLS proxy locally
# (cert.pem and key.pem in FOLDER, for localhost and 127.0.0.1). Browsers
# warn about it; use a real certificate in production.
#
# Usage: deploy/nginx/selfsigned.sh FOLDER
set -euo pipefail
DIR=${1:?folder}
mkdir -p "$DIR"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
echo "wrote $DIR/cert.pem and $DIR/key.pem"
