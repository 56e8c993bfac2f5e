/*
 * schedule.c — fs_schedule_materialization / fs_unschedule_materialization: a pg_cron job per
 * feature view that runs its incremental materialization; fs_schedule_skew_check /
 * fs_unschedule_skew_check: a job per view or service that runs fs_skew_check.
 *
 * Which role the job runs as: pg_cron runs a job as the role that scheduled it, so
 * cron.schedule is called as the CALLER (not as the extension owner): the job has exactly the
 * caller's privileges, and fails if the caller later loses SELECT on the source. Removing a
 * job (reschedule by another member of the owning role, unschedule, drop of the view) is done
 * as the extension owner, after the caller's ownership of the view has been checked, because
 * pg_cron only lets a job's own role (or one with DELETE on cron.job) remove it.
 *
 * The job's command calls the function schema-qualified with the extension's schema (the one
 * holding fs_schedule_materialization itself) and the
 * view name as a quoted literal, so it means the same under any search_path.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "registry.h"
#include "schedule.h"
#include "security.h"
#include "spi_util.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(fs_schedule_materialization);
PG_FUNCTION_INFO_V1(fs_unschedule_materialization);
PG_FUNCTION_INFO_V1(fs_schedule_drop_extension);
PG_FUNCTION_INFO_V1(fs_schedule_skew_check);
PG_FUNCTION_INFO_V1(fs_unschedule_skew_check);

static bool
pg_cron_installed(void)
{
	return OidIsValid(get_extension_oid("pg_cron", true));
}

/*
 * pg_cron is installed here, or in pg_cron's database (cron.database_name) when that is another
 * one: its jobs are then created there to run here (schedule_remote.c), which is checked there.
 */
static void
require_pg_cron(void)
{
	if (!pg_cron_installed() && !fs_cron_is_remote())
	{
		char	   *db = get_database_name(MyDatabaseId);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("scheduled materialization requires the pg_cron extension"),
				 errdetail("Extension \"pg_cron\" is not installed in database \"%s\".", db),
				 errhint("Set shared_preload_libraries = 'pg_cron, feature_store' and cron.database_name = '%s' in postgresql.conf, restart the server, then run CREATE EXTENSION pg_cron.",
						 db)));
	}
}

/* A schedule belongs to the view's name (it materializes whatever version is latest). */
static FsView *
owned_view(FunctionCallInfo fcinfo)
{
	char	   *name;
	FsView	   *v;

	name = fs_text_arg(fcinfo, 0, "feature view name");
	if (strchr(name, '@') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a schedule applies to a feature view, not to one version: \"%s\"", name),
				 errhint("Pass the view name without @N; the job materializes the latest version.")));
	v = fs_lookup_view(name, false);
	fs_check_not_agg(v, "schedule materialization of");
	if (!fs_is_member_of(GetUserId(), v->registered_by))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of feature view \"%s\"", v->name),
				 errdetail("It was registered by role \"%s\".", v->registered_by)));
	return v;
}

/* Removes a cron job as the extension owner; a job already gone is fine. Owner context held. */
static void
remove_cron_job(int64 job_id)
{
	Oid			t[1] = {INT8OID};
	Datum		a[1] = {Int64GetDatum(job_id)};

	if (!pg_cron_installed())
	{
		/* a job in pg_cron's database: removed when this transaction commits */
		if (fs_cron_is_remote())
			fs_cron_remote_unschedule(job_id);
		return;
	}
	if (fs_spi_exec("SELECT 1 FROM cron.job WHERE jobid = $1", 1, t, a, NULL, false) > 0)
		fs_spi_exec("SELECT cron.unschedule($1)", 1, t, a, NULL, false);
}

/*
 * SELECT cron.schedule(name, schedule, command) as the caller. pg_cron before 1.5 raises a bad
 * schedule as an internal error without a hint: that one is raised again as
 * invalid_parameter_value with the accepted formats; every other error passes unchanged.
 */
typedef struct CronCall
{
	Oid		   *types;
	Datum	   *args;
	int64		job_id;
} CronCall;

static void
cron_schedule_call(void *a)
{
	CronCall   *c = a;
	bool		isnull;

	fs_spi_exec("SELECT cron.schedule($1, $2, $3)", 3, c->types, c->args, NULL, false);
	c->job_id = DatumGetInt64(fs_spi_datum(0, 1, &isnull));
}

static int64
cron_schedule(Oid *types, Datum *args, const char *schedule)
{
	CronCall	c = {types, args, 0};
	ErrorData  *edata = fs_subxact_try(cron_schedule_call, &c);

	if (edata)
	{
		if (edata->message && strncmp(edata->message, "invalid schedule", 16) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid schedule \"%s\"", schedule),
					 errhint("Use cron format (minute hour day-of-month month day-of-week), e.g. '*/5 * * * *'; pg_cron 1.5 and later also accept '[1-59] seconds'.")));
		ReThrowError(edata);
	}
	return c.job_id;
}

/*
 * Whether the schedule table has its 0.3 column kind: this library also serves a database whose
 * extension is still at 0.1 or 0.2 (until ALTER EXTENSION UPDATE), where every job materializes.
 */
static bool
schedule_has_kind(void)
{
	Oid			nsp = get_namespace_oid("feature_store", true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid("schedule", nsp) : InvalidOid;

	return OidIsValid(rel) && get_attnum(rel, "kind") != InvalidAttrNumber;
}

static void
lock_schedules(void)
{
	fs_spi_exec("LOCK TABLE feature_store.schedule IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL, NULL, false);
}

/*
 * Creates the job (kind) of name, or replaces its schedule; returns the pg_cron job id. The
 * caller's right to schedule it was checked.
 */
static int64
schedule_job(const char *name, const char *kind, const char *job_name, const char *command,
			 const char *schedule)
{
	char	   *caller = GetUserNameFromId(GetUserId(), false);
	int64		job_id;
	int64		prev_job_id = 0;
	bool		remote;
	FsOwnerContext octx;

	require_pg_cron();
	remote = !pg_cron_installed();
	if (remote)
		job_name = fs_cron_remote_job_name(job_name);
	else
	{
		Oid			cron_nsp = get_namespace_oid("cron", true);

		if (!OidIsValid(cron_nsp) ||
			pg_namespace_aclcheck(cron_nsp, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for schema cron"),
					 errdetail("The job runs as the role that schedules it, which must be allowed to use pg_cron."),
					 errhint("An administrator can run GRANT USAGE ON SCHEMA cron TO %s.",
							 quote_identifier(caller))));
	}

	SPI_connect();
	fs_owner_context_enter(&octx);
	lock_schedules();
	{
		Oid			t[3] = {TEXTOID, NAMEOID, TEXTOID};
		Datum		a[3] = {CStringGetTextDatum(name), DirectFunctionCall1(namein, CStringGetDatum(caller)),
		CStringGetTextDatum(kind)};
		bool		isnull;

		if (fs_spi_exec(schedule_has_kind() ?
						"SELECT job_id FROM feature_store.schedule WHERE view_name = $1 AND kind = $3" :
						"SELECT job_id FROM feature_store.schedule WHERE view_name = $1",
						3, t, a, NULL, false) == 1)
			prev_job_id = DatumGetInt64(fs_spi_datum(0, 1, &isnull));
		/* A job of another role (another member of the owning role) is replaced, not duplicated. */
		if (fs_spi_exec(schedule_has_kind() ?
						"SELECT job_id FROM feature_store.schedule WHERE view_name = $1 AND kind = $3 AND job_role <> $2" :
						"SELECT job_id FROM feature_store.schedule WHERE view_name = $1 AND job_role <> $2",
						3, t, a, NULL, false) == 1)
			remove_cron_job(DatumGetInt64(fs_spi_datum(0, 1, &isnull)));
	}
	fs_owner_context_leave(&octx);

	/* As the caller: the job will run as the caller. */
	{
		Oid			t[3] = {TEXTOID, TEXTOID, TEXTOID};
		Datum		a[3] = {CStringGetTextDatum(job_name), CStringGetTextDatum(schedule),
		CStringGetTextDatum(command)};

		job_id = remote ? fs_cron_remote_schedule(job_name, schedule, command, prev_job_id) :
			cron_schedule(t, a, schedule);
	}

	fs_owner_context_enter(&octx);
	{
		Oid			t[7] = {TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, NAMEOID, TEXTOID};
		Datum		a[7] = {CStringGetTextDatum(name), CStringGetTextDatum(schedule),
			Int64GetDatum(job_id), CStringGetTextDatum(job_name), CStringGetTextDatum(command),
		DirectFunctionCall1(namein, CStringGetDatum(caller)), CStringGetTextDatum(kind)};

		fs_spi_exec(schedule_has_kind() ?
					"INSERT INTO feature_store.schedule (view_name, schedule, job_id, job_name, command, job_role, kind) "
					"VALUES ($1, $2, $3, $4, $5, $6, $7) "
					"ON CONFLICT (view_name, kind) DO UPDATE SET schedule = EXCLUDED.schedule, job_id = EXCLUDED.job_id, "
					"  job_name = EXCLUDED.job_name, command = EXCLUDED.command, job_role = EXCLUDED.job_role, "
					"  scheduled_at = now()" :
					"INSERT INTO feature_store.schedule (view_name, schedule, job_id, job_name, command, job_role) "
					"VALUES ($1, $2, $3, $4, $5, $6) "
					"ON CONFLICT (view_name) DO UPDATE SET schedule = EXCLUDED.schedule, job_id = EXCLUDED.job_id, "
					"  job_name = EXCLUDED.job_name, command = EXCLUDED.command, job_role = EXCLUDED.job_role, "
					"  scheduled_at = now()",
					7, t, a, NULL, false);
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
	return job_id;
}

static char *
schedule_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("schedule must not be null"),
				 errhint("Use cron format (minute hour day-of-month month day-of-week), e.g. '*/5 * * * *'.")));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* The schema of the extension's functions: where the called one lives. */
static const char *
ext_schema(FunctionCallInfo fcinfo)
{
	return quote_identifier(get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid)));
}

/*
 * fs_schedule_materialization(view text, schedule text) returns the pg_cron job id; creates
 * the view's job or replaces its schedule.
 */
Datum
fs_schedule_materialization(PG_FUNCTION_ARGS)
{
	FsView	   *v = owned_view(fcinfo);
	char	   *schedule = schedule_arg(fcinfo, 1);

	require_pg_cron();
	fs_check_view_select(v);
	PG_RETURN_INT64(schedule_job(v->name, "materialize", psprintf("feature_store:%s", v->name),
								 psprintf("SELECT %s.fs_materialize_incremental(%s)", ext_schema(fcinfo),
										  quote_literal_cstr(v->name)),
								 schedule));
}

/*
 * The view or service a skew check schedule belongs to, by name (it checks whatever version
 * is current), owned by the caller.
 */
static char *
owned_skew_target(FunctionCallInfo fcinfo)
{
	char	   *name = fs_text_arg(fcinfo, 0, "feature view or service name");
	FsView	   *v;
	const char *owner;

	if (strchr(name, '@') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a schedule applies to a feature view or service, not to one version: \"%s\"", name),
				 errhint("Pass the name without @N; the job checks the current version.")));
	v = fs_lookup_view(name, true);
	if (v != NULL)
		owner = v->registered_by;
	else
	{
		Oid			t[1] = {TEXTOID};
		Datum		a[1] = {CStringGetTextDatum(name)};

		SPI_connect();
		if (fs_spi_exec("SELECT registered_by::text FROM feature_store.feature_service WHERE name = $1 "
						"ORDER BY version DESC LIMIT 1", 1, t, a, NULL, true) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("feature view or service \"%s\" does not exist", name),
					 errhint("See SELECT name FROM fs_views UNION SELECT name FROM fs_services.")));
		owner = fs_spi_text(0, 1, fcinfo->flinfo->fn_mcxt);
		SPI_finish();
	}
	if (!fs_is_member_of(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of \"%s\"", name),
				 errdetail("It was registered by role \"%s\".", owner)));
	return name;
}

/* fs_schedule_skew_check(view_or_service text, schedule text, sample integer) returns the job id. */
Datum
fs_schedule_skew_check(PG_FUNCTION_ARGS)
{
	char	   *name = owned_skew_target(fcinfo);
	char	   *schedule = schedule_arg(fcinfo, 1);
	int32		sample = PG_ARGISNULL(2) ? 1000 : PG_GETARG_INT32(2);

	if (sample < 1 || sample > 10000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample must be between 1 and %d", 10000000)));
	PG_RETURN_INT64(schedule_job(name, "skew_check", psprintf("feature_store:skew:%s", name),
								 psprintf("SELECT count(*) FROM %s.fs_skew_check(%s, %d)", ext_schema(fcinfo),
										  quote_literal_cstr(name), sample),
								 schedule));
}

/*
 * Removes the schedule (kind, or every kind when NULL) of view_name, if any; owner context
 * held. Returns whether one existed.
 */
static bool
remove_schedule(const char *view_name, const char *kind)
{
	Oid			t[2] = {TEXTOID, TEXTOID};
	Datum		a[2] = {CStringGetTextDatum(view_name), kind ? CStringGetTextDatum(kind) : (Datum) 0};
	bool		n[2] = {false, kind == NULL};
	uint64		removed;

	lock_schedules();
	if (!schedule_has_kind())
	{
		/* (before 0.3 every schedule materializes) */
		if (kind != NULL && strcmp(kind, "materialize") != 0)
			return false;
		n[1] = true;
	}
	removed = fs_spi_exec(schedule_has_kind() ?
						  "DELETE FROM feature_store.schedule WHERE view_name = $1 AND ($2::text IS NULL OR kind = $2) "
						  "RETURNING job_id" :
						  "DELETE FROM feature_store.schedule WHERE view_name = $1 AND $2::text IS NULL "
						  "RETURNING job_id", 2, t, a, n, false);
	for (uint64 i = 0; i < removed; i++)
	{
		bool		isnull;
		int64		job = DatumGetInt64(fs_spi_datum(i, 1, &isnull));

		remove_cron_job(job);
	}
	return removed > 0;
}

/* fs_unschedule_materialization(view text) returns false (with a NOTICE) if it had none. */
Datum
fs_unschedule_materialization(PG_FUNCTION_ARGS)
{
	FsView	   *v = owned_view(fcinfo);
	FsOwnerContext octx;
	bool		removed;

	SPI_connect();
	fs_owner_context_enter(&octx);
	removed = remove_schedule(v->name, "materialize");
	fs_owner_context_leave(&octx);
	SPI_finish();
	if (!removed)
		ereport(NOTICE,
				(errmsg("feature view \"%s\" has no materialization schedule, skipping", v->name)));
	PG_RETURN_BOOL(removed);
}

/* fs_unschedule_skew_check(view_or_service text) returns false (with a NOTICE) if it had none. */
Datum
fs_unschedule_skew_check(PG_FUNCTION_ARGS)
{
	char	   *name = owned_skew_target(fcinfo);
	FsOwnerContext octx;
	bool		removed;

	SPI_connect();
	fs_owner_context_enter(&octx);
	removed = remove_schedule(name, "skew_check");
	fs_owner_context_leave(&octx);
	SPI_finish();
	if (!removed)
		ereport(NOTICE,
				(errmsg("\"%s\" has no skew check schedule, skipping", name)));
	PG_RETURN_BOOL(removed);
}

void
fs_schedule_forget_view(const char *view_name)
{
	FsOwnerContext octx;
	Oid			t[1] = {TEXTOID};
	Datum		a[1] = {CStringGetTextDatum(view_name)};

	SPI_connect();
	fs_owner_context_enter(&octx);
	if (fs_spi_exec("SELECT 1 FROM feature_store.feature_view WHERE name = $1", 1, t, a, NULL, false) == 0)
	{
		(void) remove_schedule(view_name, "materialize");
		/* a skew check of that name may be a service's */
		if (fs_spi_exec("SELECT 1 FROM feature_store.feature_service WHERE name = $1", 1, t, a, NULL, false) == 0)
			(void) remove_schedule(view_name, "skew_check");
	}
	fs_owner_context_leave(&octx);
	SPI_finish();
}

/*
 * Event trigger on ddl_command_start for DROP EXTENSION. pg_cron's job table is not part of this
 * extension, so without this the jobs of a dropped feature_store would go on failing every
 * period. When feature_store is among the extensions being dropped, its jobs are removed first,
 * in the same transaction: a DROP that fails or rolls back keeps them. (Dropping the extension
 * implicitly, by DROP SCHEMA ... CASCADE, does not fire this; see docs/limits.md.)
 */
Datum
fs_schedule_drop_extension(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	DropStmt   *stmt;
	ListCell   *lc;
	bool		ours = false;
	FsOwnerContext octx;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired by an event trigger", "drop_extension_cleanup")));
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!IsA(trigdata->parsetree, DropStmt))
		PG_RETURN_VOID();
	stmt = (DropStmt *) trigdata->parsetree;
	if (stmt->removeType != OBJECT_EXTENSION)
		PG_RETURN_VOID();
	foreach(lc, stmt->objects)
	{
		if (IsA(lfirst(lc), String) && strcmp(strVal(lfirst(lc)), "feature_store") == 0)
			ours = true;
	}
	if (!ours || (!pg_cron_installed() && !fs_cron_is_remote()))
		PG_RETURN_VOID();
	if (!pg_cron_installed())
	{
		/* jobs in pg_cron's database: removed when the DROP commits */
		uint64		n;

		SPI_connect();
		fs_owner_context_enter(&octx);
		lock_schedules();
		n = fs_spi_exec("SELECT job_id FROM feature_store.schedule", 0, NULL, NULL, NULL, false);
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;

			fs_cron_remote_unschedule(DatumGetInt64(fs_spi_datum(i, 1, &isnull)));
		}
		fs_owner_context_leave(&octx);
		SPI_finish();
		PG_RETURN_VOID();
	}

	SPI_connect();
	fs_owner_context_enter(&octx);
	lock_schedules();
	fs_spi_exec("SELECT cron.unschedule(j.jobid) FROM feature_store.schedule s JOIN cron.job j ON j.jobid = s.job_id",
				0, NULL, NULL, NULL, false);
	fs_owner_context_leave(&octx);
	SPI_finish();
	PG_RETURN_VOID();
}
