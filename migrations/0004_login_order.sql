-- token-refresh session ledger, schema version 4: ties go by login order.
--
-- `{schema}` is replaced by the configured schema name, as in 0001. Run by
-- PostgresLedger::migrate() in one transaction under its advisory lock;
-- every statement is idempotent as well. Upgrading keeps every session.
--
-- Login order. `login_seq` (an identity column since version 2, so every
-- row, old ones included, has a value from the one sequence that every
-- instance draws from) is the contract's tie-break: a login draws it while
-- it holds its user's lock, so within one user it follows the order the
-- logins happened in, whatever the instances' clocks. The cap's victims are
-- the listed sessions by (ends_at, login_seq), and a user's sessions are
-- listed by login_seq: `created_at` (the caller's clock, one-second
-- resolution) no longer orders anything, so both indexes are rebuilt
-- without it. Building them locks the table against writes while they
-- build: on a large table, migrate at a quiet time.
CREATE INDEX IF NOT EXISTS sessions_listed_seq_idx
    ON {schema}.sessions (subject, ends_at, login_seq) WHERE listed;
DROP INDEX IF EXISTS {schema}.sessions_listed_idx;
CREATE INDEX IF NOT EXISTS sessions_subject_seq_idx ON {schema}.sessions (subject, login_seq);
DROP INDEX IF EXISTS {schema}.sessions_subject_created_idx;

INSERT INTO {schema}.migrations (version) VALUES (4) ON CONFLICT (version) DO NOTHING;
