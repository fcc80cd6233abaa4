-- token-refresh session ledger, schema version 3: each user's sessions
-- ordered by end of life, and a count of them per user.
--
-- `{schema}` is replaced by the configured schema name, as in 0001. Run by
-- PostgresLedger::migrate() in one transaction under its advisory lock;
-- every statement is idempotent as well. Upgrading keeps every session.
--
-- A login must know how many sessions the user holds and which ends first
-- without reading the user's rows (the per-user cap; a login used to walk
-- all of them). So:
-- * `ends_at` is the instant the session stops being live:
--   LEAST(absolute_expires_at, refresh_expires_at + leeway). A rotation
--   moves it.
-- * `listed` says the session is in its user's index: not revoked, and not
--   dropped by a login as ended (more than 60 s ago, the clock slack) or as
--   the cap's victim. The partial index over the listed rows, ordered by
--   end of life, gives a login the ended sessions and the cap's victims at
--   its front, O(log n) each.
-- * `session_counts` holds each user's number of listed rows, changed
--   (always relatively, `listed = listed + k`) under the user's advisory
--   lock by logins, logouts, detected reuse and revoke_user, and by purge.
--
-- The cost: the index covers `ends_at`, which a rotation changes, so a
-- rotation is no longer a HOT update (docs/ledgers.md measures it).

ALTER TABLE {schema}.sessions
    ADD COLUMN IF NOT EXISTS ends_at bigint,
    ADD COLUMN IF NOT EXISTS listed boolean;

UPDATE {schema}.sessions
SET ends_at = LEAST(absolute_expires_at, refresh_expires_at + leeway)
WHERE ends_at IS NULL;

UPDATE {schema}.sessions SET listed = NOT revoked WHERE listed IS NULL;

ALTER TABLE {schema}.sessions
    ALTER COLUMN ends_at SET NOT NULL,
    ALTER COLUMN listed SET NOT NULL;

CREATE INDEX IF NOT EXISTS sessions_listed_idx
    ON {schema}.sessions (subject, ends_at, created_at, login_seq) WHERE listed;

CREATE TABLE IF NOT EXISTS {schema}.session_counts (
    subject text PRIMARY KEY,
    listed integer NOT NULL
);

INSERT INTO {schema}.session_counts (subject, listed)
SELECT subject, count(*) FROM {schema}.sessions WHERE listed GROUP BY subject
ON CONFLICT (subject) DO NOTHING;

INSERT INTO {schema}.migrations (version) VALUES (3) ON CONFLICT (version) DO NOTHING;
