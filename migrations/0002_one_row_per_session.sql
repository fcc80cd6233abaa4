-- token-refresh session ledger, schema version 2: one row per session.
--
-- `{schema}` is replaced by the configured schema name, as in 0001.
-- PostgresLedger::migrate() runs the migrations not yet recorded in
-- {schema}.migrations, in order, in one transaction under an advisory lock.
-- Every statement here is idempotent as well, so running this file again by
-- hand (or from several instances at once) is safe.
--
-- Every token id now carries its session's 64-bit tag (TokenId::session), so
-- the ledger finds a token's session from its id alone and keeps exactly one
-- row per session, updated in place by each rotation: the current refresh id
-- and its immediate predecessor (for the grace window), the current access
-- id, the generation, the lifetimes, the revoked flag and the claims needed to
-- sign the current pair again. Nothing is kept per rotation.
--
-- UPGRADING FROM VERSION 1 LOGS EVERY USER OUT. Version 1 filed sessions under
-- random ids and found them through a per-token table; tokens issued then
-- carry no session tag, so no new lookup can reach their sessions. Their rows
-- are deleted (only on the upgrade itself: the DELETE is a no-op once version
-- 2 is recorded), and their holders log in again. Stop every instance of the
-- old version before migrating: it needs the tables dropped here.

-- The per-token tables of version 1.
DROP TABLE IF EXISTS {schema}.tokens;
DROP TABLE IF EXISTS {schema}.revoked_access;

-- Version 1 rows are unreachable (see above). Emptying the table also lets
-- the NOT NULL columns below be added without defaults.
DELETE FROM {schema}.sessions
WHERE NOT EXISTS (SELECT 1 FROM {schema}.migrations WHERE version = 2);

-- The columns version 1 had keep their meaning: subject, account, role
-- (the claims of the current pair), access_id, access_expires_at,
-- refresh_id, refresh_expires_at (the current pair; the refresh expiry is
-- capped at absolute_expires_at), generation (the login pair is 0),
-- rotated_at (the latest rotation, or the login), replays (grace replays of
-- the latest rotation), revoked, and retain_until (the row is needed until
-- then: the latest tokens' expiry plus leeway, never lowered).
ALTER TABLE {schema}.sessions
    -- The current refresh token's immediate predecessor; NULL before the
    -- first rotation.
    ADD COLUMN IF NOT EXISTS previous_refresh_id uuid NULL,
    -- The login time (unix seconds), as the caller gave it.
    ADD COLUMN IF NOT EXISTS created_at bigint NOT NULL,
    -- The leeway the session was created with: it stays live until
    -- refresh_expires_at + leeway.
    ADD COLUMN IF NOT EXISTS leeway bigint NOT NULL,
    -- Login order, to tell apart sessions of one user created in the same
    -- second ("oldest first" for listing and eviction).
    ADD COLUMN IF NOT EXISTS login_seq bigint GENERATED ALWAYS AS IDENTITY;

-- A user's sessions, oldest first: listing, eviction at the per-user cap,
-- revoke_user. Replaces version 1's index on (subject).
DROP INDEX IF EXISTS {schema}.sessions_subject_idx;
-- No index may cover a column a rotation changes: then every rotation is a
-- HOT update (the new row version goes in the same page, no index entry is
-- written), which keeps the table and its indexes from growing between
-- vacuums. retain_until changes with every rotation, so its index goes;
-- purge() scans the table instead, which is housekeeping run rarely.
DROP INDEX IF EXISTS {schema}.sessions_retain_until_idx;
CREATE INDEX IF NOT EXISTS sessions_subject_created_idx ON {schema}.sessions (subject, created_at, login_seq);

INSERT INTO {schema}.migrations (version) VALUES (2) ON CONFLICT (version) DO NOTHING;
