/*
 * online_agg.c — the serving path of aggregation views: value(k, now()) of agg.h, computed from
 * the source's events of the key by the evaluator training uses, and in online mode 'stream'
 * cached in the online cache.
 *
 * The events are read under a new snapshot taken at the lookup (the transaction's, in REPEATABLE
 * READ and SERIALIZABLE), as latest values are read (online_read.c): inserts, late rows, updates
 * and deletes are served by the first lookup that starts after their COMMIT returned, even within
 * a statement that began before it, never before; and time passing is accounted for because t is
 * the transaction's now(). One read per backend and view version: `key = $k [AND event_ts >=
 * $t - longest window]`, which an index on (key columns, event time) answers with one range
 * scan (directly, without the executor, for a plain table without a filter).
 *
 * In 'stream', an answer is stored in the cache with the instants between which it holds (the
 * next event to leave a window or to enter one: the read therefore has no upper bound and
 * stops after the first event at or after t), under the cache protocol of online_cache.c with
 * the source's key triggers as writers (online_agg_cache.c). Modes do not change answers;
 * 'off' serves nothing.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/numeric.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "agg.h"
#include "online_agg.h"
#include "online_agg_cache.h"
#include "online_cache.h"
#include "online_key.h"

/* What a backend keeps per view version (in the registry cache's memory, see online_meta.c). */
typedef struct FsOnlineAgg
{
	FsAggEval	ev;
	SPIPlanPtr	plan;
	bool		bounded;		/* every window is finite: the read has a lower bound */
	int64		longest_us;
	Oid			event_type;
	int			ncols;			/* event, [created], args, [filter] */
	bool		has_created;
	Oid			created_type;
	FmgrInfo   *to_jsonb;		/* per spec: to_jsonb of its result type */
	/* the direct path (plain table, no filter, a btree index on (keys, event time)) */
	Oid			relid;
	Oid			index;			/* InvalidOid: read through the prepared SPI plan */
	int			index_key[FS_MAX_KEYS];	/* index column i + 1 holds key index_key[i] */
	RegProcedure key_eq[FS_MAX_KEYS];
	RegProcedure ts_lt,
				ts_ge;
	AttrNumber *att;			/* per column read: event, [created], arguments */
	AttrNumber	att_max;
	/* caching answers (online mode 'stream', see online_agg_cache.c) */
	bool		stable;			/* answers do not depend on session settings */
	bool		checked;		/* fs_agg_cache_check ran since the source's last invalidation */
	uint32		epoch;
	bool		cacheable;
} FsOnlineAgg;

/* A cached answer: the instants between which it is value(k, t), then its jsonb. */
typedef struct AggAnswerHead
{
	int64		from;
	int64		until;			/* inclusive */
} AggAnswerHead;

static bool scalar_jsonb(Oid type, Datum d, JsonbValue *jv);
static bool stable_type(Oid type);

/* to_jsonb(anyelement) for one type: its fmgr call finds the argument type in fn_expr. */
static void
init_to_jsonb(FmgrInfo *fi, Oid type, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	FuncExpr   *fe;

	fmgr_info_cxt(F_TO_JSONB, fi, cxt);
	fe = makeFuncExpr(F_TO_JSONB, JSONBOID,
					  list_make1(makeNullConst(type, -1, InvalidOid)), InvalidOid, InvalidOid,
					  COERCE_EXPLICIT_CALL);
	fi->fn_expr = (Node *) fe;
	MemoryContextSwitchTo(old);
}

/* A time value of the source as timestamptz (a timestamp is read in the session's time zone). */
static int64
to_tz(Datum d, Oid type)
{
	if (type == TIMESTAMPOID)
	{
		int			overflow = 0;
		TimestampTz r = timestamp2timestamptz_opt_overflow(DatumGetTimestamp(d), &overflow);

		return overflow > 0 ? PG_INT64_MAX : overflow < 0 ? PG_INT64_MIN : r;
	}
	return DatumGetTimestampTz(d);
}

/*
 * The direct path: a plain table (no inheritance children, no row-level security, which the
 * executor would apply) whose btree index leads with the key columns (any order) and then the
 * event time, a timestamptz: the key's events in the window are one index range scan, without
 * the executor. Leaves st->index invalid when the source does not qualify.
 */
static void
plan_direct(FsOnlineAgg *st, FsView *v, char **cols, MemoryContext cxt)
{
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	int			nk = v->entity.nkeys;

	st->index = InvalidOid;
	if (get_rel_relkind(st->relid) != RELKIND_RELATION || st->event_type != TIMESTAMPTZOID)
		return;
	rel = table_open(st->relid, AccessShareLock);
	if (rel->rd_rel->relhassubclass || rel->rd_rel->relrowsecurity)
	{
		table_close(rel, AccessShareLock);
		return;
	}
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	irel = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index ix = irel->rd_index;
		bool		ok = irel->rd_rel->relam == BTREE_AM_OID && ix->indnkeyatts > nk && ix->indisvalid &&
			heap_attisnull(irel->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			ix->indkey.values[nk] == get_attnum(st->relid, v->event_time);

		for (int i = 0; ok && i < nk; i++)
		{
			int			k;

			for (k = 0; k < nk; k++)
				if (ix->indkey.values[i] == get_attnum(st->relid, v->entity.keys[k]))
					break;
			ok = k < nk && irel->rd_opcintype[i] == v->entity.key_types[k] &&
				irel->rd_indcollation[i] == get_typcollation(v->entity.key_types[k]);
			if (ok)
			{
				Oid			op = get_opfamily_member(irel->rd_opfamily[i], v->entity.key_types[k],
													 v->entity.key_types[k], BTEqualStrategyNumber);

				st->index_key[i] = k;
				st->key_eq[i] = OidIsValid(op) ? get_opcode(op) : InvalidOid;
				ok = OidIsValid(st->key_eq[i]);
			}
		}
		if (ok && irel->rd_opcintype[nk] == TIMESTAMPTZOID)
		{
			Oid			lt = get_opfamily_member(irel->rd_opfamily[nk], TIMESTAMPTZOID, TIMESTAMPTZOID, BTLessStrategyNumber);
			Oid			ge = get_opfamily_member(irel->rd_opfamily[nk], TIMESTAMPTZOID, TIMESTAMPTZOID, BTGreaterEqualStrategyNumber);

			st->ts_lt = OidIsValid(lt) ? get_opcode(lt) : InvalidOid;
			st->ts_ge = OidIsValid(ge) ? get_opcode(ge) : InvalidOid;
			ok = OidIsValid(st->ts_lt) && OidIsValid(st->ts_ge);
		}
		else
			ok = false;
		index_close(irel, AccessShareLock);
		if (ok)
		{
			st->index = lfirst_oid(lc);
			break;
		}
	}
	table_close(rel, AccessShareLock);
	if (!OidIsValid(st->index))
		return;
	st->att = MemoryContextAlloc(cxt, sizeof(AttrNumber) * st->ncols);
	st->att[0] = get_attnum(st->relid, v->event_time);
	if (st->has_created)
		st->att[1] = get_attnum(st->relid, v->created_time);
	for (int a = 0; a < st->ev.nargs; a++)
		st->att[1 + (st->has_created ? 1 : 0) + a] = get_attnum(st->relid, cols[a]);
	st->att_max = 0;
	for (int c = 0; c < st->ncols; c++)
		st->att_max = Max(st->att_max, st->att[c]);
}

/*
 * Reads the key's events in [lo, t) by the index (see plan_direct) into evs, and the first one
 * at or after t, if any (the evaluator leaves it out; it says until when the answer holds).
 */
static void
read_direct(FsOnlineAgg *st, FsView *v, Datum *keys, TimestampTz t, TimestampTz lo, Snapshot snap,
			FsAggEvents *evs)
{
	int			nk = v->entity.nkeys;
	ScanKeyData sk[FS_MAX_KEYS + 2];
	int			nsk = 0;
	Relation	rel = table_open(st->relid, AccessShareLock);
	Relation	irel = index_open(st->index, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	Datum	   *vals = palloc(sizeof(Datum) * st->ncols);
	bool	   *nulls = palloc(sizeof(bool) * st->ncols);
	int			ca = 1 + (st->has_created ? 1 : 0);

	for (int i = 0; i < nk; i++)
		ScanKeyInit(&sk[nsk++], i + 1, BTEqualStrategyNumber, st->key_eq[i], keys[st->index_key[i]]);
	if (st->bounded)
		ScanKeyInit(&sk[nsk++], nk + 1, BTGreaterEqualStrategyNumber, st->ts_ge, TimestampTzGetDatum(lo));
	scan = index_beginscan(rel, irel, snap, nsk, 0);
	index_rescan(scan, sk, nsk, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		slot_getsomeattrs(slot, st->att_max);
		for (int c = 0; c < st->ncols; c++)
		{
			vals[c] = slot->tts_values[st->att[c] - 1];
			nulls[c] = slot->tts_isnull[st->att[c] - 1];
		}
		if (nulls[0])
			continue;
		fs_agg_events_add(&st->ev, evs, DatumGetTimestampTz(vals[0]),
						  st->has_created && !nulls[1] ? to_tz(vals[1], st->created_type) : 0,
						  !st->has_created || nulls[1], true, &vals[ca], &nulls[ca]);
		if (DatumGetTimestampTz(vals[0]) >= t)
			break;				/* index order: the first event at or after t */
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(irel, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/* Prepares a view's read and evaluator, once per backend and view version. */
static FsOnlineAgg *
agg_state(FsOnlineView *ov)
{
	FsView	   *v = ov->view;
	FsOnlineAgg *st;
	MemoryContext cxt = fs_meta_context();
	MemoryContext old;
	Oid			relid;
	StringInfoData sql;
	Oid			argtypes[FS_MAX_KEYS + 2];
	int			nparams;
	FsAggSpec  *specs;
	Oid		   *colls;

	if (ov->agg_state != NULL)
		return ov->agg_state;
	relid = fs_view_source_relid(v);
	old = MemoryContextSwitchTo(cxt);
	st = palloc0(sizeof(FsOnlineAgg));
	fs_agg_resolve_view(v, relid, &specs, &colls);
	st->bounded = true;
	for (int f = 0; f < v->nfeatures; f++)
	{
		if (specs[f].lifetime)
			st->bounded = false;
		else
			st->longest_us = Max(st->longest_us, specs[f].window_us);
	}
	fs_agg_eval_init(&st->ev, specs, v->nfeatures, colls, v->has_hop, v->hop_us);
	st->to_jsonb = palloc0(sizeof(FmgrInfo) * v->nfeatures);
	for (int f = 0; f < v->nfeatures; f++)
		init_to_jsonb(&st->to_jsonb[f], v->features[f].type, cxt);
	st->event_type = get_atttype(relid, get_attnum(relid, v->event_time));
	st->has_created = v->created_time != NULL;
	st->created_type = st->has_created ? get_atttype(relid, get_attnum(relid, v->created_time)) : InvalidOid;
	st->stable = st->event_type == TIMESTAMPTZOID && (!st->has_created || st->created_type == TIMESTAMPTZOID);
	for (int f = 0; f < v->nfeatures; f++)
		st->stable &= stable_type(v->features[f].type);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s", quote_identifier(v->event_time));
	if (st->has_created)
		appendStringInfo(&sql, ", %s", quote_identifier(v->created_time));
	for (int a = 0; a < st->ev.nargs; a++)
		appendStringInfo(&sql, ", %s", quote_identifier(st->ev.arg_name[a]));
	if (v->filter)
		appendStringInfo(&sql, ", (%s)", v->filter);
	st->ncols = 1 + (st->has_created ? 1 : 0) + st->ev.nargs + (v->filter ? 1 : 0);
	appendStringInfo(&sql, " FROM %s WHERE ", quote_qualified_identifier(v->source_schema, v->source_name));
	for (int k = 0; k < v->entity.nkeys; k++)
	{
		appendStringInfo(&sql, "%s OPERATOR(pg_catalog.=) $%d AND ", quote_identifier(v->entity.keys[k]), k + 1);
		argtypes[k] = v->entity.key_types[k];
	}
	/* no upper bound: events at or after t say until when the answer holds */
	nparams = v->entity.nkeys;
	if (st->bounded)
	{
		argtypes[nparams++] = TIMESTAMPTZOID;
		appendStringInfo(&sql, "%s OPERATOR(pg_catalog.>=) $%d", quote_identifier(v->event_time), nparams);
	}
	else
		appendStringInfoString(&sql, "true");
	MemoryContextSwitchTo(old);

	st->relid = relid;
	if (v->filter == NULL)
		plan_direct(st, v, st->ev.arg_name, cxt);

	SPI_connect();
	{
		int			save_nestlevel = NewGUCNestLevel();

		(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		st->plan = SPI_prepare(sql.data, nparams, argtypes);
		if (st->plan == NULL)
			elog(ERROR, "SPI_prepare failed for: %s", sql.data);
		SPI_keepplan(st->plan);
		AtEOXact_GUC(true, save_nestlevel);
	}
	SPI_finish();
	ov->agg_state = st;
	ov->agg_free = fs_agg_forget;
	return st;
}

/*
 * Result types whose jsonb does not depend on session settings (timestamptz is written in the
 * session's TimeZone, interval in its IntervalStyle): answers of views made only of them, over
 * timestamptz event times, are the same for every session and may be cached.
 */
static bool
stable_type(Oid type)
{
	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case BOOLOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case DATEOID:
		case TIMESTAMPOID:
			return true;
		default:
			return false;
	}
}

/*
 * The instants between which the answer computed at now stays value(k, t): from now (hopping:
 * the start of now's hop) until the first instant an event enters or leaves a window, inclusive
 * (an event at e counts for t in (e, e + W]). Events are sorted; lo is the read's lower bound,
 * below which no event counts at now or later.
 */
static void
answer_validity(FsOnlineAgg *st, FsView *v, FsAggEvents *evs, int64 now, int64 *from, int64 *until)
{
	int			i = 0;

	if (v->has_hop)
	{
		*from = fs_agg_hop(now, v->hop_us);
		if (pg_add_s64_overflow(*from, v->hop_us - 1, until))
			*until = DT_NOEND;
		return;
	}
	*from = now;
	*until = DT_NOEND;
	while (i < evs->n && evs->e[i] < now)
		i++;
	if (i < evs->n)
		*until = evs->e[i];		/* the first future event enters just after its time */
	for (int f = 0; f < st->ev.nspecs; f++)
	{
		FsAggSpec  *sp = &st->ev.specs[f];
		int64		start,
					leave;

		if (sp->lifetime)
			continue;
		if (pg_sub_s64_overflow(now, sp->window_us, &start))
			continue;			/* nothing can leave a window reaching back before time began */
		/* the oldest event in the window leaves first */
		for (int j = 0; j < evs->n && evs->e[j] < now; j++)
			if (evs->e[j] >= start)
			{
				if (!pg_add_s64_overflow(evs->e[j], sp->window_us, &leave))
					*until = Min(*until, leave);
				break;
			}
	}
}

/* The answer as {"view": {"feature": value, ...}}, values as to_jsonb gives them. */
static Jsonb *
answer_jsonb(FsOnlineAgg *st, FsView *v, Datum *out, bool *outnull)
{
	JsonbParseState *ps = NULL;
	JsonbValue	jv;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	jv.type = jbvString;
	jv.val.string.val = v->name;
	jv.val.string.len = strlen(v->name);
	pushJsonbValue(&ps, WJB_KEY, &jv);
	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	for (int f = 0; f < v->nfeatures; f++)
	{
		jv.type = jbvString;
		jv.val.string.val = v->features[f].name;
		jv.val.string.len = strlen(v->features[f].name);
		pushJsonbValue(&ps, WJB_KEY, &jv);
		if (outnull[f])
		{
			jv.type = jbvNull;
			pushJsonbValue(&ps, WJB_VALUE, &jv);
		}
		else if (scalar_jsonb(v->features[f].type, out[f], &jv))
			pushJsonbValue(&ps, WJB_VALUE, &jv);
		else
		{
			Jsonb	   *j = DatumGetJsonbP(FunctionCall1(&st->to_jsonb[f], out[f]));

			if (JB_ROOT_IS_SCALAR(j))
			{
				JsonbValue	sv;

				JsonbExtractScalar(&j->root, &sv);
				pushJsonbValue(&ps, WJB_VALUE, &sv);
			}
			else
			{
				jv.type = jbvBinary;
				jv.val.binary.data = &j->root;
				jv.val.binary.len = VARSIZE(j) - VARHDRSZ;
				pushJsonbValue(&ps, WJB_VALUE, &jv);
			}
		}
	}
	pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
}

/* Reads the key's events from lo on (no upper bound) through the prepared plan. */
static void
read_spi(FsOnlineAgg *st, FsView *v, Datum *keys, int64 lo, FsAggEvents *evs)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		params[FS_MAX_KEYS + 1];
	int			nk = v->entity.nkeys;
	int			save_nestlevel;
	int			rc;

	memcpy(params, keys, sizeof(Datum) * nk);
	params[nk] = TimestampTzGetDatum(lo);
	SPI_connect();
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	{
		Snapshot	snap = RegisterSnapshot(IsolationUsesXactSnapshot() ? GetTransactionSnapshot() : GetLatestSnapshot());

		rc = SPI_execute_snapshot(st->plan, params, NULL, snap, InvalidSnapshot, true, false, 0);
		UnregisterSnapshot(snap);
	}
	AtEOXact_GUC(true, save_nestlevel);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "aggregation read failed: %s", SPI_result_code_string(rc));
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		Datum	   *vals = palloc(sizeof(Datum) * st->ncols);
		bool	   *nulls = palloc(sizeof(bool) * st->ncols);
		int			ca = 1 + (st->has_created ? 1 : 0);
		int			cf = ca + st->ev.nargs;

		for (uint64 i = 0; i < SPI_processed; i++)
		{
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, vals, nulls);
			if (nulls[0])
				continue;
			fs_agg_events_add(&st->ev, evs, to_tz(vals[0], st->event_type),
							  st->has_created && !nulls[1] ? to_tz(vals[1], st->created_type) : 0,
							  !st->has_created || nulls[1],
							  v->filter == NULL || (!nulls[cf] && DatumGetBool(vals[cf])),
							  &vals[ca], &nulls[ca]);
		}
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	MemoryContextSwitchTo(cxt);
}

/*
 * The cache slot for this lookup, or -1: only in online mode 'stream', for answers that do not
 * depend on the session, while the source's key triggers fire (checked again after every
 * invalidation of the source, online_agg_cache.c).
 */
static int
answer_slot(FsOnlineAgg *st, FsView *v, int slot)
{
	uint32		e;

	if (slot < 0 || !st->stable || strcmp(v->online_mode, "stream") != 0)
		return -1;
	e = fs_agg_source_epoch(st->relid);
	if (!st->checked || st->epoch != e)
	{
		st->cacheable = fs_agg_cache_check(v, st->relid, slot);
		st->epoch = e;
		st->checked = true;
	}
	return st->cacheable ? slot : -1;
}

/* See online_agg.h. */
void
fs_agg_read_row(FsOnlineView *ov, Datum *keys, FsOnlineRow *row, int slot)
{
	FsView	   *v = ov->view;
	FsOnlineAgg *st = agg_state(ov);
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz t = v->has_hop ? fs_agg_hop(now, v->hop_us) : now;
	int64		lo = 0;
	FsAggEvents evs = {0};
	Datum	   *out;
	bool	   *outnull;
	char		img[FS_CACHE_KEY_MAX];
	int			imglen = -1;
	uint64		hash = 0;
	uint64		tag = 0;
	union
	{
		char		data[FS_CACHE_DATA];
		int64		align;
	}			buf;

	row->found = true;
	row->event_ts = now;
	row->created_null = true;
	slot = answer_slot(st, v, slot);
	if (slot >= 0 && (imglen = fs_read_key_image(ov, keys, img)) < 0)
		slot = -1;
	if (slot >= 0)
	{
		uint64		want;
		int			len;

		hash = fs_key_image_hash(v->view_id, img, imglen);
		want = fs_cache_want(slot, hash);
		tag = fs_cache_fill_tag();
		len = fs_cache_get(slot, v->view_id, hash, img, imglen, want, buf.data);
		if (len > (int) sizeof(AggAnswerHead))
		{
			AggAnswerHead *h = (AggAnswerHead *) buf.data;

			if (h->from <= now && now <= h->until)
			{
				fs_cache_count(slot, FS_CTR_HITS);
				row->features = palloc(len - sizeof(AggAnswerHead));
				memcpy(row->features, buf.data + sizeof(AggAnswerHead), len - sizeof(AggAnswerHead));
				return;
			}
		}
		fs_cache_count(slot, FS_CTR_MISSES);
	}

	/* a miss, or no cache: the events under a snapshot taken after W and C (protocol) */
	if (st->bounded && pg_sub_s64_overflow(t, st->longest_us, &lo))
		lo = DT_NOBEGIN;
	fs_agg_events_reset(&evs, st->ev.nargs);
	if (OidIsValid(st->index))
	{
		Snapshot	snap = RegisterSnapshot(IsolationUsesXactSnapshot() ? GetTransactionSnapshot() : GetLatestSnapshot());

		read_direct(st, v, keys, t, lo, snap, &evs);
		UnregisterSnapshot(snap);
	}
	else
		read_spi(st, v, keys, lo, &evs);
	fs_agg_events_sort(&st->ev, &evs);
	out = palloc(sizeof(Datum) * v->nfeatures);
	outnull = palloc(sizeof(bool) * v->nfeatures);
	fs_agg_eval_at(&st->ev, &evs, now, out, outnull);
	row->features = answer_jsonb(st, v, out, outnull);
	if (slot >= 0)
	{
		AggAnswerHead *h = (AggAnswerHead *) buf.data;
		int			jlen = VARSIZE(row->features);

		fs_cache_count(slot, FS_CTR_READ_THROUGHS);
		answer_validity(st, v, &evs, now, &h->from, &h->until);
		if (sizeof(AggAnswerHead) + jlen <= sizeof(buf.data))
		{
			memcpy(buf.data + sizeof(AggAnswerHead), row->features, jlen);
			fs_cache_put(slot, v->view_id, hash, img, imglen, tag, buf.data, sizeof(AggAnswerHead) + jlen);
		}
		else
			fs_cache_count(slot, FS_CTR_DECLINED);
	}
}

/*
 * The jsonb scalar to_jsonb makes of the common result types, without its per-call type lookups:
 * numbers as numeric (NaN and infinities as strings, as to_jsonb writes them), text as a string;
 * false for the other types (to_jsonb itself then).
 */
static bool
scalar_jsonb(Oid type, Datum d, JsonbValue *jv)
{
	switch (type)
	{
		case INT8OID:
			jv->type = jbvNumeric;
			jv->val.numeric = int64_to_numeric(DatumGetInt64(d));
			return true;
		case NUMERICOID:
			if (numeric_is_nan(DatumGetNumeric(d)) || numeric_is_inf(DatumGetNumeric(d)))
				return false;
			jv->type = jbvNumeric;
			jv->val.numeric = DatumGetNumeric(d);
			return true;
		case FLOAT8OID:
			if (isnan(DatumGetFloat8(d)) || isinf(DatumGetFloat8(d)))
				return false;
			/* to_jsonb's conversion: the shortest exact text, read as numeric */
			jv->type = jbvNumeric;
			jv->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																  CStringGetDatum(float8out_internal(DatumGetFloat8(d))),
																  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
			return true;
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = DatumGetTextPP(d);

				jv->type = jbvString;
				jv->val.string.val = VARDATA_ANY(t);
				jv->val.string.len = VARSIZE_ANY_EXHDR(t);
				return true;
			}
		default:
			return false;
	}
}

/* Frees a view's prepared read (the registry cache is being rebuilt). */
void
fs_agg_forget(FsOnlineView *ov)
{
	FsOnlineAgg *st = ov->agg_state;

	if (st != NULL && st->plan != NULL)
		SPI_freeplan(st->plan);
	ov->agg_state = NULL;
}
