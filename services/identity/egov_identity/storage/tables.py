"""The identity database schema (SQLAlchemy Core). Alembic migrations in ``migrations/``.

Everything single-use (authorization codes, refresh tokens, CIBA requests, client-assertion and
device-proof ``jti``s) is consumed by a conditional UPDATE/INSERT in the database, so several
processes on one PostgreSQL database behave as one service.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_ts = sa.Float  # POSIX seconds (UTC); one representation on SQLite and PostgreSQL

persons = sa.Table(
    "persons",
    metadata,
    sa.Column("person_id", sa.String(40), primary_key=True),
    sa.Column("identifier", sa.String(64), nullable=False, unique=True),
    sa.Column("given_name_th", sa.String(200), nullable=False, default=""),
    sa.Column("family_name_th", sa.String(200), nullable=False, default=""),
    sa.Column("given_name_en", sa.String(200), nullable=False, default=""),
    sa.Column("family_name_en", sa.String(200), nullable=False, default=""),
    sa.Column("birth_date", sa.String(10), nullable=False, default=""),
    sa.Column("ial", sa.String(16), nullable=False, default=""),
    sa.Column("verification_json", sa.Text, nullable=False, default="{}"),
    sa.Column("verified_at", _ts),
    sa.Column("username", sa.String(128), unique=True),
    sa.Column("password_hash", sa.String(256)),
    sa.Column("enrolment_code_hash", sa.String(64)),
    sa.Column("totp_secret_enc", sa.LargeBinary),
    # Id of the KEK that sealed totp_secret_enc (domain/secrets_box.py); NULL for a seed sealed
    # before KEK ids were recorded (migration 0003) until rewrap-kek re-seals it.
    sa.Column("totp_kek_id", sa.String(16), index=True),
    sa.Column("totp_confirmed", sa.Boolean, nullable=False, default=False),
    sa.Column("totp_last_step", sa.BigInteger, nullable=False, default=0),
    # A TOTP authenticator was confirmed and not revoked by proofing since: binding another
    # needs an AAL2 login (stays set while its replacement waits for its first code).
    sa.Column("totp_bound", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", _ts, nullable=False),
)

proofing_sessions = sa.Table(
    "proofing_sessions",
    metadata,
    sa.Column("session_id", sa.String(40), primary_key=True),
    sa.Column("identifier", sa.String(64), nullable=False),
    sa.Column("target_ial", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("evidence_json", sa.Text, nullable=False, default="[]"),
    sa.Column("attributes_json", sa.Text, nullable=False, default="{}"),
    sa.Column("achieved_ial", sa.String(16), nullable=False, default=""),
    sa.Column("failure_reason", sa.String(64), nullable=False, default=""),
    sa.Column("person_id", sa.String(40), nullable=False, default=""),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("expires_at", _ts, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=0),
)

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("client_name", sa.String(200), nullable=False),
    sa.Column("redirect_uris_json", sa.Text, nullable=False),
    sa.Column("grant_types_json", sa.Text, nullable=False),
    sa.Column("scopes_json", sa.Text, nullable=False),
    sa.Column("auth_method", sa.String(32), nullable=False),
    sa.Column("jwks_json", sa.Text, nullable=False, default=""),
    sa.Column("subject_type", sa.String(16), nullable=False),
    sa.Column("sector_identifier", sa.String(256), nullable=False, default=""),
    sa.Column("agency", sa.String(64), nullable=False, default=""),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("id_token_signed_response_alg", sa.String(8), nullable=False,
              server_default="ES256"),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("alg", sa.String(8), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("public_jwk_json", sa.Text, nullable=False),
    sa.Column("private_key_enc", sa.LargeBinary, nullable=False),
    # Id of the KEK that sealed private_key_enc; NULL before migration 0003 (see persons).
    sa.Column("private_key_kek_id", sa.String(16)),
    sa.Column("activates_at", _ts, nullable=False),
    sa.Column("retires_at", _ts, nullable=False),
    sa.Column("expires_at", _ts, nullable=False),
    sa.UniqueConstraint("alg", "generation", name="uq_signing_keys_alg_generation"),
)

service_secrets = sa.Table(
    "service_secrets",
    metadata,
    # Secrets the service makes for itself and keeps, sealed under the KEK like the signing keys
    # (``pairwise_salt``: the HMAC key of pairwise subjects, kept across KEK rotations).
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value_enc", sa.LargeBinary, nullable=False),
    sa.Column("kek_id", sa.String(16), nullable=False),
    sa.Column("created_at", _ts, nullable=False),
)

login_sessions = sa.Table(
    "login_sessions",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("client_id", sa.String(128), nullable=False),
    sa.Column("aal", sa.Integer, nullable=False),
    sa.Column("amr_json", sa.Text, nullable=False),
    sa.Column("auth_time", _ts, nullable=False),
    sa.Column("expires_at", _ts, nullable=False, index=True),
)

authorization_codes = sa.Table(
    "authorization_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(128), nullable=False),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("nonce", sa.String(256), nullable=False, default=""),
    sa.Column("code_challenge", sa.String(128), nullable=False),
    sa.Column("claims_json", sa.Text, nullable=False, default=""),
    sa.Column("aal", sa.Integer, nullable=False),
    sa.Column("amr_json", sa.Text, nullable=False),
    sa.Column("auth_time", _ts, nullable=False),
    sa.Column("expires_at", _ts, nullable=False, index=True),
    sa.Column("used_at", _ts),
    # The refresh-token family and the access token (its jti) issued on redemption: revoked if
    # the code is presented again (RFC 6749 sections 4.1.2 and 10.5).
    sa.Column("family_id", sa.String(40)),
    sa.Column("access_jti", sa.String(64)),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("family_id", sa.String(40), nullable=False, index=True),
    sa.Column("client_id", sa.String(128), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("claims_json", sa.Text, nullable=False, default=""),
    sa.Column("aal", sa.Integer, nullable=False),
    sa.Column("amr_json", sa.Text, nullable=False),
    sa.Column("auth_time", _ts, nullable=False),
    sa.Column("expires_at", _ts, nullable=False, index=True),
    sa.Column("used_at", _ts),
    sa.Column("revoked_at", _ts),
    # The jti of the access token issued with this refresh token: revoking the family revokes
    # it too (RFC 7009 section 2.1). NULL for refresh tokens issued before migration 0008.
    sa.Column("access_jti", sa.String(64), index=True),
)

revoked_access_tokens = sa.Table(
    "revoked_access_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("expires_at", _ts, nullable=False, index=True),
)

used_jtis = sa.Table(
    "used_jtis",
    metadata,
    sa.Column("issuer", sa.String(128), primary_key=True),
    sa.Column("jti", sa.String(128), primary_key=True),
    sa.Column("expires_at", _ts, nullable=False, index=True),
)

login_throttle = sa.Table(
    "login_throttle",
    metadata,
    # "account:<sha256 of username>" or "client:<client_id>": unknown and known usernames are
    # throttled alike, so lock-out reveals nothing about which accounts exist.
    sa.Column("throttle_key", sa.String(200), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("window_start", _ts, nullable=False),
    sa.Column("locked_until", _ts, nullable=False, default=0.0),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("device_id", sa.String(40), primary_key=True),
    sa.Column("person_id", sa.String(40), nullable=False, index=True),
    sa.Column("public_key_der", sa.LargeBinary, nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", _ts, nullable=False),
)

ciba_requests = sa.Table(
    "ciba_requests",
    metadata,
    sa.Column("auth_req_id", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(128), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False, default=""),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("binding_message", sa.String(64), nullable=False, default=""),
    sa.Column("status", sa.String(16), nullable=False),  # pending, approved, denied
    sa.Column("interval", sa.Integer, nullable=False),
    sa.Column("last_poll_at", _ts, nullable=False, default=0.0),
    sa.Column("auth_time", _ts),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("expires_at", _ts, nullable=False, index=True),
    sa.Column("redeemed_at", _ts),
)

juristic_persons = sa.Table(
    "juristic_persons",
    metadata,
    sa.Column("identifier", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name_th", sa.String(300), nullable=False, default=""),
    sa.Column("name_en", sa.String(300), nullable=False, default=""),
    sa.Column("directors_json", sa.Text, nullable=False),
    sa.Column("registered_at", _ts, nullable=False),
)

representations = sa.Table(
    "representations",
    metadata,
    sa.Column("representation_id", sa.String(40), primary_key=True),
    sa.Column("juristic_person", sa.String(64), nullable=False, index=True),
    sa.Column("representative", sa.String(64), nullable=False, index=True),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("powers_json", sa.Text, nullable=False),
    sa.Column("valid_from", _ts, nullable=False),
    sa.Column("valid_until", _ts, nullable=False),
    sa.Column("granted_by", sa.String(64), nullable=False),
    sa.Column("evidence", sa.String(200), nullable=False, default=""),
    sa.Column("revoked_at", _ts),
    sa.Column("created_at", _ts, nullable=False),
)

subject_aliases = sa.Table(
    "subject_aliases",
    metadata,
    # Pairwise ``sub`` values handed out (OIDC Core 8.1), so tokens presented back resolve.
    sa.Column("sub", sa.String(80), primary_key=True),
    sa.Column("person_id", sa.String(40), nullable=False),
)
