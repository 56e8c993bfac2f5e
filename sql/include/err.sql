-- err(q) runs q and returns its SQLSTATE, message and hint ('no error' if it succeeds), so that
-- expected outputs show the SQLSTATE of every bad call. Included by the pg_regress files.
CREATE FUNCTION pg_temp.err(q text, OUT state text, OUT message text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    state := 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
END $$;
