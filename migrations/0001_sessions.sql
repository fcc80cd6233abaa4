-- token-refresh session ledger, schema version 1.
--
-- `{schema}` is replaced by the configured schema name (PostgresOptions::schema,
-- default `token_refresh`) before this runs; PostgresLedger::migrate() runs it
-- in one transaction under an advisory lock, and every statement is
-- idempotent, so running it again (or from several instances at once) is safe.
--
-- Only ids (uuid), expiries (unix seconds) and claims are stored: never a
-- token string, so a read of these tables lets nobody replay or mint a token.

CREATE SCHEMA IF NOT EXISTS {schema};

-- One row per session (token family): its current pair and rotation state.
CREATE TABLE IF NOT EXISTS {schema}.sessions (
    session_id          uuid    PRIMARY KEY,
    subject             text    NOT NULL,
    account             text    NOT NULL,
    role                text    NOT NULL,
    access_id           uuid    NOT NULL,
    access_expires_at   bigint  NOT NULL,
    refresh_id          uuid    NOT NULL,
    refresh_expires_at  bigint  NOT NULL,
    generation          bigint  NOT NULL,
    absolute_expires_at bigint  NOT NULL,
    rotated_at          bigint  NOT NULL,
    replays             integer NOT NULL,
    revoked             boolean NOT NULL,
    -- Kept at least until here: the latest refresh expiry plus leeway.
    retain_until        bigint  NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_subject_idx ON {schema}.sessions (subject);
CREATE INDEX IF NOT EXISTS sessions_retain_until_idx ON {schema}.sessions (retain_until);

-- One row per refresh token ever issued, until its own expiry plus leeway:
-- the generation tells a current token from a consumed one.
CREATE TABLE IF NOT EXISTS {schema}.tokens (
    token_id     uuid   PRIMARY KEY,
    session_id   uuid   NOT NULL,
    generation   bigint NOT NULL,
    retain_until bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_retain_until_idx ON {schema}.tokens (retain_until);

-- Access tokens revoked by a rotation, logout or reuse, until their own
-- expiry plus leeway.
CREATE TABLE IF NOT EXISTS {schema}.revoked_access (
    access_id     uuid   PRIMARY KEY,
    revoked_until bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_access_until_idx ON {schema}.revoked_access (revoked_until);

CREATE TABLE IF NOT EXISTS {schema}.migrations (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.migrations (version) VALUES (1) ON CONFLICT (version) DO NOTHING;
