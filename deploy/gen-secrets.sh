#!/bin/sh
# One-shot: every secret and certificate the compose stack reads, as files in one folder.
#
#   deploy/gen-secrets.sh ./secrets [PUBLIC_HOST]
#   echo SECRETS_DIR=./secrets >> .env
#
# Writes (never overwrites: an existing file is kept, so running it again is safe and
# rotating a secret means deleting its file first, see docs/deployment.md):
#   temporal_db_password, case_db_password  PostgreSQL passwords (letters and digits)
#   codec_keys                              the payload key, "k1:BASE64" (32 random bytes)
#   codec_token                             the codec server's shared token for scripts
#   ui_oidc_client_secret                   the Temporal UI's OIDC client secret
#   keycloak_admin_password, oidc_demo_operator_password   the bundled Keycloak (profile oidc)
#   grafana_admin_password                  Grafana's first administrator (the dashboard)
#   tls/ca.pem (+ ca.key, which no container mounts: keep it offline)
#   tls/server.pem, tls/server.key          the Temporal frontend (SAN temporal, localhost)
#   tls/client.pem, tls/client.key          our processes and the admin tools (mTLS)
#   tls/ui.pem, tls/ui.key                  the Temporal UI's client certificate (mTLS)
#   tls/https.pem, tls/https.key            the https proxy, for PUBLIC_HOST (default localhost)
#
# The folder is 0700 (only you); the files in it are 0644 because compose bind-mounts each
# secret file into its container as it is on disk, and the containers run as other users.
# Needs only sh and openssl.
set -eu

out=${1:?usage: gen-secrets.sh DIR [PUBLIC_HOST]}
public_host=${2:-localhost}
days=${CERT_DAYS:-825}
umask 077
mkdir -p "$out/tls"
chmod 700 "$out"

random_secret() {  # letters and digits only: safe inside a DSN and a YAML value
    openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | cut -c1-40
}

put() {  # put NAME VALUE: write once, world-readable inside the private folder
    if [ -s "$out/$1" ]; then
        echo "kept    $out/$1"
    else
        printf '%s\n' "$2" > "$out/$1"
        chmod 644 "$out/$1"
        echo "wrote   $out/$1"
    fi
}

put temporal_db_password "$(random_secret)"
put case_db_password "$(random_secret)"
put codec_keys "k1:$(openssl rand -base64 32)"
put codec_token "$(random_secret)"
put ui_oidc_client_secret "$(random_secret)"
put keycloak_admin_password "$(random_secret)"
put oidc_demo_operator_password "$(random_secret)"
put grafana_admin_password "$(random_secret)"

tls="$out/tls"
if [ ! -s "$tls/ca.pem" ]; then
    openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days "$days" \
        -subj "/CN=What Happens Next private CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    chmod 600 "$tls/ca.key"
    chmod 644 "$tls/ca.pem"
    echo "wrote   $tls/ca.pem"
fi

leaf() {  # leaf NAME CN SAN EKU
    if [ -s "$tls/$1.pem" ]; then
        echo "kept    $tls/$1.pem"
        return
    fi
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$2" \
        -keyout "$tls/$1.key" -out "$tls/$1.csr" 2>/dev/null
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
        "$4" "$3" > "$tls/$1.ext"
    openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
        -CAcreateserial -days "$days" -sha256 -extfile "$tls/$1.ext" -out "$tls/$1.pem" 2>/dev/null
    rm -f "$tls/$1.csr" "$tls/$1.ext"
    chmod 644 "$tls/$1.pem" "$tls/$1.key"
    echo "wrote   $tls/$1.pem"
}

# The frontend's certificate also serves internode traffic, where the server is a client.
leaf server temporal "DNS:temporal,DNS:localhost,IP:127.0.0.1" "serverAuth,clientAuth"
leaf client whn-client "DNS:whn-client" "clientAuth"
leaf ui temporal-ui "DNS:temporal-ui" "clientAuth"
leaf https "$public_host" "DNS:$public_host" "serverAuth"
rm -f "$tls/ca.srl"

echo "done: set SECRETS_DIR=$out in .env (docs/deployment.md)"
