#!/usr/bin/env bash
# Creates the Secrets the dev overlay references and does not generate itself: a dev service CA
# with one mTLS certificate per service, the KEKs of keys and identity, the registry's tree-head
# key and its passphrase, and the verify portal's seal key. Existing Secrets are left alone (rotation: k8s/README.md).
# Usage: k8s/dev-secrets.sh            create them in namespace egov-trust (current kubectl context)
#        k8s/dev-secrets.sh --print    print them as YAML instead (no cluster needed)
# Needs openssl and kubectl. Never use these for production: the CA key is thrown away here.
set -euo pipefail
ns=egov-trust
print=false
[ "${1:-}" = "--print" ] && print=true
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

exists() { ! $print && kubectl -n "$ns" get secret "$1" >/dev/null 2>&1; }
emit() {  # emit NAME ARGS...: create the Secret, or print it
  local name="$1"; shift
  if $print; then
    echo "---"
    kubectl create secret "$@" --namespace "$ns" --dry-run=client -o yaml
  elif exists "$name"; then
    echo "secret/$name exists: kept"
  else
    kubectl create secret "$@" --namespace "$ns"
  fi
}
$print || kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"

openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days 365 -subj "/CN=egov-trust dev service CA" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt 2>/dev/null
for svc in identity keys registry signing verify-portal; do
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$svc.key"
  openssl req -new -key "$svc.key" -subj "/CN=$svc" -out "$svc.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' \
    "$svc" "$svc" "$ns" "$svc" "$ns" > "$svc.ext"
  openssl x509 -req -in "$svc.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -sha256 \
    -extfile "$svc.ext" -out "$svc.crt" 2>/dev/null
  emit "$svc-mtls" generic "$svc-mtls" --type=kubernetes.io/tls \
    --from-file=tls.crt="$svc.crt" --from-file=tls.key="$svc.key" --from-file=ca.crt=ca.crt
done

openssl rand -base64 32 | tr -d '\n' > keys.kek
emit keys-kek generic keys-kek --from-file=kek=keys.kek
openssl rand -base64 32 | tr -d '\n' > identity.kek
emit identity-kek generic identity-kek --from-file=kek=identity.kek

# The tree-head key is sealed under a passphrase kept in a Secret of its own.
openssl rand -base64 32 | tr -d '\n' > log-key.passphrase
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -v2 aes-256-cbc \
  -v2prf hmacWithSHA256 -passout file:log-key.passphrase -out log-key.pem
openssl pkey -in log-key.pem -passin file:log-key.passphrase -pubout -out log-key.pub.pem
emit registry-log-key generic registry-log-key \
  --from-file=log-key.pem=log-key.pem --from-file=log-key.pub.pem=log-key.pub.pem
emit registry-log-key-passphrase generic registry-log-key-passphrase \
  --from-file=passphrase=log-key.passphrase

openssl rand -hex 32 | tr -d '\n' > seal.key
emit verify-portal-seal-key generic verify-portal-seal-key --from-file=key=seal.key
