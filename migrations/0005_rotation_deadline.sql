-- token-refresh session ledger, schema version 5: a rotation refuses to
-- commit after its caller's deadline.
--
-- `{schema}` is replaced by the configured schema name, as in 0001. Run by
-- PostgresLedger::migrate() in one transaction under its advisory lock;
-- every statement is idempotent as well. Upgrading keeps every session and
-- takes no table lock.
--
-- The deadline a rotation carries: the wall-clock instant (Unix
-- milliseconds) after which the ledger will have stopped waiting for the
-- answer. The rotation's UPDATE calls this in its RETURNING list, so after
-- it holds the row lock and right before it commits: a rotation that a
-- stall or a lock kept queued past its caller's timeout raises
-- query_canceled and rolls back, instead of consuming the token while the
-- client, told 500, retries it (which would then be reuse and revoke the
-- session).
CREATE OR REPLACE FUNCTION {schema}.before_deadline(not_after_ms bigint) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF clock_timestamp() >= to_timestamp(not_after_ms / 1000.0) THEN
        RAISE EXCEPTION 'token_refresh: the rotation ran past its caller''s deadline; nothing was written'
            USING ERRCODE = 'query_canceled';
    END IF;
    RETURN true;
END
$$;

INSERT INTO {schema}.migrations (version) VALUES (5) ON CONFLICT (version) DO NOTHING;
