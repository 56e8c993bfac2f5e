-- The join benchmarks' timer (bench/pit_join.sh, bench/agg_join.sh): pg_temp.bench_ms(tbl, q) runs
-- q (which creates table tbl) bench.repeat times and returns the best time in ms; the machine
-- may be shared, so the best of a few is the figure; the table of the last run is kept.
CREATE FUNCTION pg_temp.bench_ms(tbl text, q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; best float8;
BEGIN
    FOR i IN 1..current_setting('bench.repeat')::int LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', tbl);
        t0 := clock_timestamp();
        EXECUTE q;
        best := least(best, round(extract(epoch FROM clock_timestamp() - t0) * 1000));
    END LOOP;
    RETURN best;
END $$;
