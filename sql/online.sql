-- Online store: fs_entity I/O, fs_materialize, serving calls, TTL statuses, errors, privileges.
CREATE EXTENSION IF NOT EXISTS feature_store;
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- fs_entity: text forms round-trip; the constructor quotes for the caller.
SELECT e, e::text::fs_entity = e AS roundtrip, fs_entity_name(e), fs_entity_keys(e)
FROM unnest(ARRAY['driver:1001', 'user_merchant:(42,7)', 'm:"a,b"', 'm:("x y","q\"t",plain)', 'm:""', 'm:-5']::fs_entity[]) e;
SELECT fs_entity('driver', 1001), fs_entity('user_merchant', 42, 7), fs_entity('m', 'a,b'::text), fs_entity('m', VARIADIC ARRAY['p', 'q']);
SELECT fs_entity('driver', 1001) = 'driver:1001', fs_entity('driver', 1001) = 'driver:1002';
-- integer keys are formatted without their output functions: oracle = the type's own text form
SELECT (SELECT count(*) FILTER (WHERE fs_entity('m', v)::text IS DISTINCT FROM 'm:' || v::text)
        FROM unnest(ARRAY[0, 1, -1, 9, 10, -10, 1001, 2147483647, 2147483648, -2147483649,
                          9223372036854775807, -9223372036854775808]::int8[]) v) AS int8_mismatches,
       (SELECT count(*) FILTER (WHERE fs_entity('m', v)::text IS DISTINCT FROM 'm:' || v::text)
        FROM unnest(ARRAY[0, -1, 7, -2147483648, 2147483647]::int4[]) v) AS int4_mismatches,
       (SELECT count(*) FILTER (WHERE fs_entity('m', v)::text IS DISTINCT FROM 'm:' || v::text)
        FROM unnest(ARRAY[0, -1, 7, -32768, 32767]::int2[]) v) AS int2_mismatches,
       fs_entity('um', VARIADIC ARRAY[-1, 9223372036854775807]::int8[]) AS variadic_int8,
       fs_entity('um', 7::int2, 'x'::text) AS mixed;
-- one call site, several names: a name is checked whenever it changes
SELECT pg_temp.err($$SELECT count(fs_entity(n, 1)) FROM unnest(ARRAY['ok_name', 'ok_name', 'bad name']) n$$) AS third_name;
-- malformed literals: invalid_text_representation with a reason
SELECT l, pg_temp.err(format('SELECT %L::fs_entity', l))
FROM unnest(ARRAY['driver', 'driver:', ':1', '1x:1', 'driver:(1,2', 'driver:()', 'driver:(1, 2)', 'driver:1)',
                  'driver:"abc', 'driver:a b', 'driver:"a\x"', 'driver:(1,2)x', 'd:(1,2,3,4,5,6,7,8,9)']) l;
SELECT pg_temp.err($$SELECT fs_entity('driver', NULL::int)$$), pg_temp.err($$SELECT fs_entity('bad name', 1)$$);

-- Sources with known history. Fixed times far in the past (expired under short TTLs) and times
-- relative to now() (fresh), duplicates on event time resolved by created time.
CREATE TABLE onl_driver (driver_id bigint, ts timestamptz, created timestamptz,
                         conv_rate float8, acc_rate float4, trips int, note text);
INSERT INTO onl_driver VALUES
  (1, '2025-01-01 10:00', '2025-01-01 10:00', 0.1, 0.5, 1, 'd1 old'),
  (1, '2025-01-02 10:00', '2025-01-02 10:00', 0.2, 0.6, 2, 'd1 new'),
  (1, '2025-01-02 10:00', '2025-01-01 09:00', 0.9, 0.9, 9, 'd1 tie older created'),
  (2, '2025-01-01 12:00', NULL, 0.3, NULL, 3, NULL),
  (3, '2025-01-05 00:00', '2025-01-05 00:00', 0.4, 0.4, 4, 'd3 after window'),
  (NULL, '2025-01-01 10:00', '2025-01-01 10:00', 0.5, 0.5, 5, 'null key');
CREATE TABLE onl_um (user_id bigint, merchant_id int, ts timestamptz, amount float8, flag bool);
INSERT INTO onl_um VALUES (42, 7, now() - interval '10 minutes', 12.5, true),
                          (42, 8, now() - interval '2 hours', 3.0, false);
CREATE TABLE onl_merchant (merchant text, ts timestamptz, category text, score numeric);
INSERT INTO onl_merchant VALUES ('a,b', now() - interval '1 minute', 'food', 1.5), ('plain', now() - interval '1 minute', 'toys', 2);

SELECT fs_register_entity('driver', 'driver_id');
SELECT fs_register_entity('user_merchant', ARRAY['user_id', 'merchant_id']);
SELECT fs_register_entity('merchant', 'merchant');
SELECT fs_register_view('onl_driver', 'onl_driver', 'driver', event_time => 'ts', created_time => 'created', ttl => '100 years');
SELECT fs_register_view('onl_driver_short', 'onl_driver', 'driver', event_time => 'ts', features => ARRAY['trips'], ttl => '1 hour');
SELECT fs_register_view('onl_um', 'onl_um', 'user_merchant', event_time => 'ts', ttl => '1 hour');
SELECT fs_register_view('onl_merchant', 'onl_merchant', 'merchant', event_time => 'ts');
SELECT fs_register_view('onl_offline', 'onl_driver', 'driver', event_time => 'ts', features => ARRAY['note'], online => false);

-- Before materialization: nothing online, no error.
SELECT fs_online('driver:1') IS NULL AS empty;

-- Window [2025-01-01, 2025-01-03]: entity 3 has no history in it; the NULL key never matches.
SELECT fs_materialize('onl_driver', '2025-01-01', '2025-01-03');
-- idempotent
SELECT fs_materialize('onl_driver', '2025-01-01', '2025-01-03');
-- Oracle: brute force latest row per entity in the window (docs/semantics.md rules at end_ts).
SELECT format('feature_store.online_%s', view_id) AS driver_online FROM fs_views WHERE name = 'onl_driver' \gset
SELECT format('feature_store.online_%s', view_id) AS short_online FROM fs_views WHERE name = 'onl_driver_short' \gset
SELECT (SELECT count(*) FROM :driver_online) AS online_rows,
       (SELECT count(*) FROM (
          SELECT k.driver_id, fs_online(fs_entity('driver', k.driver_id), 'onl_driver') AS got,
                 (SELECT jsonb_build_object('onl_driver', jsonb_build_object('conv_rate', h.conv_rate, 'acc_rate', h.acc_rate,
                                            'trips', h.trips, 'note', h.note))
                  FROM onl_driver h WHERE h.driver_id = k.driver_id AND h.ts BETWEEN '2025-01-01' AND '2025-01-03'
                  ORDER BY h.ts DESC, h.created DESC NULLS LAST LIMIT 1) AS want
          FROM (SELECT DISTINCT driver_id FROM onl_driver WHERE driver_id IS NOT NULL) k) c
        WHERE got IS DISTINCT FROM want) AS mismatches;
SELECT fs_online('driver:1');
SELECT fs_online('driver:3') IS NULL AS not_in_window;
-- A later window moves entities forward; an older window never moves them back.
SELECT fs_materialize('onl_driver', '2025-01-01', '2025-01-10');
SELECT fs_materialize('onl_driver', '2025-01-01', '2025-01-01 11:00');
SELECT driver_id, fs_online(fs_entity('driver', driver_id), 'onl_driver') -> 'onl_driver' ->> 'note' AS note
FROM generate_series(1, 3) driver_id;
-- TTL applies relative to end_ts when materializing: 1 hour before 2025-01-05 leaves only entity 3.
SELECT fs_materialize('onl_driver_short', '2025-01-01', '2025-01-05');

-- TTL at read time: onl_driver_short rows are from 2025, so expired now: "view": null, status expired.
SELECT fs_online('driver:3');
SELECT * FROM fs_online_detail('driver:3') ORDER BY view, feature;
SELECT * FROM fs_online_detail('driver:2', 'onl_driver') ORDER BY feature;
SELECT * FROM fs_online_detail('driver:99', 'onl_driver') ORDER BY feature;
SELECT fs_materialize('onl_um', now() - interval '1 day', now());
SELECT fs_online('user_merchant:(42,7)'), fs_online(fs_entity('user_merchant', 42, 8));
SELECT feature, value, status FROM fs_online_detail('user_merchant:(42,8)');
SELECT fs_materialize('onl_merchant', now() - interval '1 day', now());
SELECT fs_online('merchant:"a,b"'), fs_online(fs_entity('merchant', 'plain'::text)), fs_online('merchant:zzz');
-- a key too long for a cache entry is always read through, and still served
INSERT INTO onl_merchant VALUES (repeat('k', 100), now() - interval '1 minute', 'long', 3);
SELECT fs_materialize('onl_merchant', now() - interval '1 day', now());
SELECT fs_online(fs_entity('merchant', repeat('k', 100))) AS long_key, fs_online(fs_entity('merchant', repeat('k', 99))) AS other_key
FROM generate_series(1, 2);

-- Services, vectors, batches.
SELECT fs_register_service('onl_model', ARRAY['onl_driver:trips', 'onl_driver:conv_rate', 'onl_driver_short:trips', 'onl_driver:acc_rate']);
SELECT fs_online('driver:1', 'onl_model'), fs_online('driver:3', 'onl_model');
SELECT d, fs_online_vector(fs_entity('driver', d), 'onl_model') FROM generate_series(1, 4) d;
SELECT fs_online_vector('driver:1', 'onl_driver_short');
SELECT * FROM fs_online_batch(ARRAY['driver:2', 'driver:404', NULL, 'driver:1', 'user_merchant:(42,7)']::fs_entity[]);
SELECT entity, features -> 'onl_driver' -> 'trips' AS trips FROM fs_online_batch(ARRAY['driver:1', 'driver:3']::fs_entity[], 'onl_model');
-- batch result equals one call per entity
SELECT count(*) AS batch_mismatches FROM fs_online_batch(ARRAY(SELECT fs_entity('driver', g) FROM generate_series(0, 5) g)) b
WHERE b.features IS DISTINCT FROM fs_online(b.entity);

-- Errors with SQLSTATEs.
SELECT pg_temp.err($$SELECT fs_online('driver:1', 'no_such')$$);
SELECT pg_temp.err($$SELECT fs_online('driver:1', 'onl_offline')$$);
SELECT pg_temp.err($$SELECT fs_online('driver:abc')$$);
SELECT pg_temp.err($$SELECT fs_online('driver:(1,2)')$$);
SELECT pg_temp.err($$SELECT fs_online_vector('driver:1', 'onl_offline')$$);
SELECT pg_temp.err($$SELECT fs_online_vector('merchant:plain', 'onl_merchant')$$);
SELECT pg_temp.err($$SELECT fs_materialize('onl_offline', '2025-01-01', '2025-01-02')$$);
SELECT pg_temp.err($$SELECT fs_materialize('onl_driver', '2025-01-02', '2025-01-01')$$);
SELECT pg_temp.err($$SELECT fs_materialize('onl_driver', NULL, '2025-01-01')$$);
SELECT pg_temp.err($$SELECT fs_materialize('nope', '2025-01-01', '2025-01-02')$$);
SELECT pg_temp.err($$SELECT fs_set_online_mode('onl_driver', 'sometimes')$$);
-- an unknown key of a known entity is no data; an unknown entity name is an error
SELECT fs_online('driver:123456') IS NULL AS unknown_key, pg_temp.err($$SELECT fs_online('nobody:1')$$) AS unknown_entity;

-- Own uncommitted writes are visible to the writer; after ROLLBACK they are gone.
INSERT INTO onl_driver VALUES (1, '2025-02-01', '2025-02-01', 0.7, 0.7, 70, 'd1 rolled back');
BEGIN;
SELECT fs_materialize('onl_driver', '2025-01-01', '2025-03-01');
SELECT fs_online('driver:1', 'onl_driver') -> 'onl_driver' ->> 'note' AS in_txn;
ROLLBACK;
SELECT fs_online('driver:1', 'onl_driver') -> 'onl_driver' ->> 'note' AS after_rollback;
DELETE FROM onl_driver WHERE note = 'd1 rolled back';

-- Privileges: a role sees only views whose source it may SELECT; the cache never bypasses that.
CREATE ROLE onl_reader;
GRANT SELECT ON onl_merchant TO onl_reader;
SET ROLE onl_reader;
SELECT fs_online('driver:1') IS NULL AS driver_hidden, fs_online('merchant:plain');
SELECT pg_temp.err($$SELECT fs_online('driver:1', 'onl_driver')$$);
SELECT pg_temp.err($$SELECT fs_online_vector('driver:1', 'onl_model')$$);
SELECT pg_temp.err($$SELECT * FROM fs_online_detail('driver:1', 'onl_driver')$$);
SELECT pg_temp.err($$SELECT fs_materialize('onl_driver', '2025-01-01', '2025-01-02')$$);
SELECT left(pg_temp.err(format('SELECT count(*) FROM %s', :'driver_online')), 5) AS online_table_private;
RESET ROLE;
GRANT SELECT ON onl_driver TO onl_reader;
SET ROLE onl_reader;
SELECT fs_online('driver:1', 'onl_driver');
RESET ROLE;
REVOKE SELECT ON onl_driver FROM onl_reader;
SET ROLE onl_reader;
SELECT pg_temp.err($$SELECT fs_online('driver:1', 'onl_driver')$$);
SELECT pg_temp.err($$SELECT fs_set_online_mode('onl_driver', 'off')$$);
RESET ROLE;

-- Cache statistics: repeated lookups hit (the exact split between worker loads and fills varies).
SELECT fs_online('driver:1') FROM generate_series(1, 5);
SELECT view, hits > 0 AS hits, entries > 0 AS has_entries, bytes_used > 0 AS bytes FROM fs_stat_online WHERE view = 'onl_driver';
SELECT capacity_bytes > 0 AS capacity, worker_state IS NOT NULL AS state FROM fs_stat_online WHERE view IS NULL;

-- Off frees the view (online table dropped); batch re-creates it empty; drop removes the table.
SELECT fs_set_online_mode('onl_driver_short', 'off');
SELECT to_regclass(:'short_online') IS NULL AS table_dropped, fs_online('driver:3');
SELECT pg_temp.err($$SELECT fs_online('driver:3', 'onl_driver_short')$$);
SELECT fs_set_online_mode('onl_driver_short', 'batch');
SELECT to_regclass(:'short_online') IS NOT NULL AS table_back, fs_online('driver:3') -> 'onl_driver_short' AS empty_again;
SELECT fs_drop_service('onl_model');
SELECT fs_drop_view('onl_driver_short');
SELECT to_regclass(:'short_online') IS NULL AS dropped_with_view;
SELECT fs_online('driver:3');

-- Leave the database as we found it (other tests create the extension themselves).
SET client_min_messages = warning;
DROP EXTENSION feature_store CASCADE;
RESET client_min_messages;
DROP TABLE onl_driver, onl_um, onl_merchant;
DROP ROLE onl_reader;
