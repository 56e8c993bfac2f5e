/*
 * runlog_test.c — test drivers of the run log's C API (runlog.h), not part of the extension's
 * SQL: the tests declare them themselves (sql/include/runlog_test.sql, schema fs_test), so that
 * a user's database never holds them.
 *   fs_test.run_logged_test(view, kind, work_sql, quarantine, start_ts, end_ts): runs work_sql
 *     as a logged run of the view (rows written = rows it processed), optionally quarantining
 *     the window's failing rows; kind NULL is what an incremental run logs.
 *   fs_test.stream_logged_test(): a statement trigger that logs each statement as a 'stream' run
 *     and quarantines the failing rows of its transition table, as the streaming path does.
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "checks.h"
#include "registry.h"
#include "runlog.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(fs_run_logged_test);
PG_FUNCTION_INFO_V1(fs_stream_logged_test);

typedef struct TestWork
{
	FsView	   *view;
	const char *sql;
	bool		quarantine;
	FsWindow	window;
} TestWork;

/* The test work: runs the given SQL (rows written = rows it processed), then quarantines. */
static uint64
test_work(void *arg, int64 run_id, uint64 *quarantined)
{
	TestWork   *t = arg;
	uint64		n;

	SPI_connect();
	if (SPI_execute(t->sql, false, 0) < 0)
		elog(ERROR, "SPI_execute failed for: %s", t->sql);
	n = SPI_processed;
	SPI_finish();
	if (t->quarantine)
		*quarantined = fs_quarantine_window(t->view, &t->window, run_id, NULL);
	return n;
}

/*
 * feature_store.run_logged_test(view text, kind text, work_sql text, quarantine boolean,
 * start_ts timestamptz, end_ts timestamptz): test-only (superuser) driver of fs_run_logged.
 * A NULL kind means "what an incremental run would log" (scheduled under pg_cron).
 */
Datum
fs_run_logged_test(PG_FUNCTION_ARGS)
{
	TestWork	t;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("view and work_sql must not be null")));
	t.view = fs_lookup_view(text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	t.sql = text_to_cstring(PG_GETARG_TEXT_PP(2));
	t.quarantine = !PG_ARGISNULL(3) && PG_GETARG_BOOL(3);
	t.window.start = PG_ARGISNULL(4) ? DT_NOBEGIN : PG_GETARG_TIMESTAMPTZ(4);
	t.window.end = PG_ARGISNULL(5) ? DT_NOEND : PG_GETARG_TIMESTAMPTZ(5);
	t.window.on_created = false;
	PG_RETURN_INT64((int64) fs_run_logged(t.view, PG_ARGISNULL(1) ? fs_run_incremental_kind() :
										  text_to_cstring(PG_GETARG_TEXT_PP(1)),
										  t.window.start, t.window.end, test_work, &t));
}

typedef struct StreamWork
{
	FsView	   *view;
	TriggerData *trigdata;
} StreamWork;

/*
 * The test micro-batch: quarantines the failing rows of the statement's transition table;
 * the passing ones count as written (the online store's streaming path will write them).
 */
static uint64
stream_work(void *arg, int64 run_id, uint64 *quarantined)
{
	StreamWork *s = arg;
	const char *table = quote_identifier(s->trigdata->tg_trigger->tgnewtable);
	uint64		failing;
	int64		total;
	bool		isnull;

	*quarantined = fs_quarantine_relation(s->view, table, s->trigdata, run_id, &failing);
	SPI_connect();
	if (SPI_register_trigger_data(s->trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "SPI_register_trigger_data failed");
	fs_spi_exec(psprintf("SELECT count(*) FROM %s", table), 0, NULL, NULL, NULL, true);
	total = DatumGetInt64(fs_spi_datum(0, 1, &isnull));
	SPI_finish();
	return (uint64) total - failing;
}

/*
 * feature_store.stream_logged_test(view): test-only statement trigger (AFTER INSERT ...
 * REFERENCING NEW TABLE ... FOR EACH STATEMENT) that logs each statement as a 'stream' run
 * and quarantines its failing rows, as the streaming path will.
 */
Datum
fs_stream_logged_test(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	StreamWork	s;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("stream_logged_test must be called as a trigger")));
	if (!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) || trigdata->tg_trigger->tgnewtable == NULL ||
		trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("stream_logged_test needs a statement trigger with a NEW TABLE and the view name as its argument")));
	s.view = fs_lookup_view(trigdata->tg_trigger->tgargs[0], false);
	s.trigdata = trigdata;
	fs_run_logged(s.view, "stream", DT_NOBEGIN, DT_NOEND, stream_work, &s);
	return PointerGetDatum(NULL);
}
