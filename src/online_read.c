/*
 * online_read.c — the read path of the online store (reader's half of the cache protocol in
 * online_cache.c): generation first, then a cache probe, then on a miss a NEW snapshot and a
 * keyed read of the durable online table, then a fill tagged with the generation read first.
 *
 * The durable read runs a prepared plan as the extension owner (who owns the online tables;
 * the caller's privilege on the view's source was checked before), with search_path fixed.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "commands/dbcommands.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "online_agg.h"
#include "online_cache.h"
#include "online_key.h"
#include "online_payload.h"
#include "online_read.h"
#include "online_wal.h"
#include "online_table.h"
#include "security.h"

static FsOwnerContext octx;
static bool notice_given = false;

/* A call's read state starts closed: cache hits never need SPI or the owner context. */
void
fs_read_begin(FsReadState *st)
{
	st->spi_open = false;
	st->notice_given = false;
}

/* Closes what read-throughs opened (on error, transaction abort does it). */
void
fs_read_end(FsReadState *st)
{
	if (st->spi_open)
	{
		fs_owner_context_leave(&octx);
		SPI_finish();
		st->spi_open = false;
	}
}

/* Opened once per call, at the first read-through: SPI as the owner of the online tables. */
static void
open_spi(FsReadState *st)
{
	if (!st->spi_open)
	{
		MemoryContext caller = CurrentMemoryContext;

		SPI_connect();
		/*
		 * SPI_connect leaves us in SPI's procedure context, which SPI_finish frees: the
		 * caller's answer (built after this first read-through, e.g. the jsonb of many views)
		 * must not live there (test/t/062_resource_bounds.pl crashed with 200 views).
		 */
		MemoryContextSwitchTo(caller);
		fs_owner_context_enter(&octx);
		st->spi_open = true;
	}
}

/*
 * SQL of the row's object {"view": {"feature": value, ...}}, the exact shape fs_online returns
 * for one view, so the common case serves cached bytes without rebuilding anything. Features
 * go through jsonb_build_object (to_jsonb rules) in chunks of 50 pairs (the argument limit).
 */
static void
append_features_jsonb(StringInfo sql, FsView *v)
{
	appendStringInfo(sql, "pg_catalog.jsonb_build_object(%s::pg_catalog.text, ", quote_literal_cstr(v->name));
	if (v->nfeatures == 0)
		appendStringInfoString(sql, "'{}'::pg_catalog.jsonb");
	for (int i = 0; i < v->nfeatures; i++)
	{
		if (i % 50 == 0)
			appendStringInfoString(sql, i == 0 ? "pg_catalog.jsonb_build_object(" : ") OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(");
		else
			appendStringInfoString(sql, ", ");
		appendStringInfo(sql, "%s::pg_catalog.text, o.%s", quote_literal_cstr(v->features[i].name),
						 quote_identifier(v->features[i].name));
	}
	if (v->nfeatures > 0)
		appendStringInfoChar(sql, ')');
	appendStringInfoChar(sql, ')');
}

JsonbContainer *
fs_row_inner(FsOnlineView *ov, FsOnlineRow *row)
{
	JsonbValue	v;
	const char *name = ov->view->name;

	if (getKeyJsonValueFromContainer(&row->features->root, name, strlen(name), &v) == NULL ||
		v.type != jbvBinary)
		elog(ERROR, "online row of view \"%s\" lacks its feature object", name);
	return v.val.binary.data;
}

/* Keyed read of one online row, prepared once per backend and view version. */
static SPIPlanPtr
read_plan(FsOnlineView *ov)
{
	if (ov->read_plan == NULL)
	{
		FsView	   *v = ov->view;
		StringInfoData sql;
		SPIPlanPtr	p;

		initStringInfo(&sql);
		appendStringInfo(&sql, "SELECT o.%s, o.%s, ", quote_identifier(FS_ONLINE_EVENT_COL),
						 quote_identifier(FS_ONLINE_CREATED_COL));
		append_features_jsonb(&sql, v);
		appendStringInfo(&sql, " FROM %s o WHERE ", fs_online_table_qualname(v->view_id));
		for (int k = 0; k < v->entity.nkeys; k++)
			appendStringInfo(&sql, "%so.%s = $%d", k > 0 ? " AND " : "", quote_identifier(v->entity.keys[k]), k + 1);
		p = SPI_prepare(sql.data, v->entity.nkeys, v->entity.key_types);
		if (p == NULL)
			elog(ERROR, "SPI_prepare failed for: %s", sql.data);
		SPI_keepplan(p);
		ov->read_plan = p;
	}
	return ov->read_plan;
}

/* Durable read of one row under snap. */
static void
read_durable(FsReadState *st, FsOnlineView *ov, Datum *keys, Snapshot snap, FsOnlineRow *row)
{
	int			rc;
	MemoryContext cxt = CurrentMemoryContext;

	open_spi(st);
	rc = SPI_execute_snapshot(read_plan(ov), keys, NULL, snap, InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "online read failed: %s", SPI_result_code_string(rc));
	row->found = SPI_processed == 1;
	if (row->found)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old;

		row->event_ts = DatumGetTimestampTz(SPI_getbinval(t, d, 1, &isnull));
		row->created_ts = DatumGetTimestampTz(SPI_getbinval(t, d, 2, &row->created_null));
		old = MemoryContextSwitchTo(cxt);
		row->features = DatumGetJsonbPCopy(SPI_getbinval(t, d, 3, &isnull));
		MemoryContextSwitchTo(old);
	}
	SPI_freetuptable(SPI_tuptable);
	/* every SPI call ends in SPI's procedure context, freed by SPI_finish: back to the caller's */
	MemoryContextSwitchTo(cxt);
}

/*
 * Whether the listed names include this database.
 */
static bool
listed_here(List *names, const char *dbname)
{
	ListCell   *lc;

	foreach(lc, names)
		if (dbname && strcmp((char *) lfirst(lc), dbname) == 0)
			return true;
	return false;
}

/*
 * Is this database one the launcher serves (feature_store.databases, or with '*' a database
 * that allows connections and is no template)? Needs a transaction; computed again only when
 * the setting changes.
 */
static bool
configured_here(void)
{
	static char *for_setting = NULL;
	static bool answer = false;
	char		setting[1024];
	List	   *names;
	HeapTuple	tup;

	snprintf(setting, sizeof(setting), "%s|%s", fs_cache_databases ? fs_cache_databases : "",
			 fs_cache_database ? fs_cache_database : "");
	if (for_setting != NULL && strcmp(for_setting, setting) == 0)
		return answer;
	names = fs_cache_database_list();
	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (!HeapTupleIsValid(tup))
		return false;
	{
		Form_pg_database f = (Form_pg_database) GETSTRUCT(tup);

		answer = names != NIL ? listed_here(names, NameStr(f->datname)) :
			(f->datallowconn && !f->datistemplate);
	}
	ReleaseSysCache(tup);
	if (for_setting)
		pfree(for_setting);
	for_setting = MemoryContextStrdup(TopMemoryContext, setting);
	return answer;
}

/*
 * Does the cache serve this database now? Says once per session why not: it is not preloaded,
 * or this database is not among the configured ones (feature_store.databases, or the deprecated
 * feature_store.database), whose statistics are not this one's. A configured database not
 * served yet (its worker is starting) is switched on here. The answer
 * can change at any time (the launcher serves and stops serving databases), so it is read from
 * shared memory for every lookup: one entry and one flag.
 */
bool
fs_read_cache_here(void)
{
	if (!fs_cache_preloaded())
	{
		if (!notice_given)
		{
			notice_given = true;
			ereport(NOTICE,
					(errmsg("feature_store online cache is not active; features are read from the online tables"),
					 errhint("Add feature_store to shared_preload_libraries to enable the shared-memory cache.")));
		}
		return false;
	}
	if (likely(fs_cache_db_served()))
		return true;
	if (configured_here())
	{
		/*
		 * A database to serve, and the extension is here (its function runs): switch the cache
		 * on now rather than when the worker gets to it (the launcher starts it within a
		 * second), so that the first lookups after CREATE EXTENSION are cached already.
		 */
		int			idx = fs_cache_db_add(MyDatabaseId);

		if (idx >= 0)
		{
			fs_cache_db_serve(idx, true);
			fs_cache_wake_launcher();
			if (fs_cache_db_served())
				return true;
		}
	}
	if (!notice_given)
	{
		List	   *names = fs_cache_database_list();
		char	   *dbname = get_database_name(MyDatabaseId);

		notice_given = true;
		if (names != NIL && !listed_here(names, dbname))
		{
			StringInfoData list;
			ListCell   *lc;

			initStringInfo(&list);
			foreach(lc, names)
				appendStringInfo(&list, "%s%s", list.len > 0 ? ", " : "", (char *) lfirst(lc));
			if (fs_cache_databases == NULL || fs_cache_databases[0] == '\0')
				ereport(NOTICE,
						(errmsg("feature_store online cache serves database \"%s\", not this one", list.data),
						 errdetail("Features of this database are read from its online tables; its cache statistics are zero."),
						 errhint("To cache this database's online views, set feature_store.database = '%s' and restart the server (deprecated), or set feature_store.databases = '%s, %s' (or '*') and reload the configuration to cache both.",
								 dbname ? dbname : "", list.data, dbname ? dbname : "")));
			else if (list_length(names) == 1)
				ereport(NOTICE,
						(errmsg("feature_store online cache serves database \"%s\", not this one", list.data),
						 errdetail("Features of this database are read from its online tables; its cache statistics are zero."),
						 errhint("To cache this database's online views as well, add it to feature_store.databases (or set it to '*') and reload the configuration.")));
			else
				ereport(NOTICE,
						(errmsg("feature_store online cache serves databases %s, not this one", list.data),
						 errdetail("Features of this database are read from its online tables; its cache statistics are zero."),
						 errhint("To cache this database's online views as well, add it to feature_store.databases (or set it to '*') and reload the configuration.")));
		}
	}
	return false;
}

/*
 * Cache for this lookup? Not in REPEATABLE READ / SERIALIZABLE (protocol), nor on a standby
 * that has not caught up yet (online_wal.c).
 */
static bool
cache_on(void)
{
	return fs_read_cache_here() && fs_wal_cache_trusted() && !IsolationUsesXactSnapshot();
}

/* The view's cache slot for this lookup, or -1 when the cache must be bypassed. */
static int
lookup_slot(FsOnlineView *ov)
{
	if (!cache_on() || fs_online_written_in_xact(ov->view->view_id))
		return -1;
	if (!fs_cache_slot_is(ov->cache_slot, ov->view->view_id))
		ov->cache_slot = fs_cache_view_slot(ov->view->view_id, true);
	return ov->cache_slot;
}

/* The snapshot of a durable read: a new one (protocol), or the transaction's in RR/SERIALIZABLE. */
static Snapshot
durable_snapshot(void)
{
	return RegisterSnapshot(IsolationUsesXactSnapshot() ? GetTransactionSnapshot() : GetLatestSnapshot());
}

/* Hash of a key image within a view: the cache's key (and its key generation's bucket). */
static inline uint64
key_hash(FsOnlineView *ov, const char *img, int imglen)
{
	return fs_key_image_hash(ov->view->view_id, img, imglen);
}

/* Encodes a row and stores it tagged `tag` (rows of oversized jsonb are declined by the put). */
static void
fill(FsOnlineView *ov, int slot, uint64 hash, const char *img, int imglen, uint64 tag, const FsOnlineRow *row)
{
	union
	{
		char		data[FS_CACHE_DATA];
		int64		align;
	}			buf;
	int			len = fs_payload_encode(ov, row, buf.data);

	fs_cache_put(slot, ov->view->view_id, hash, img, imglen, tag, buf.data, len);
}

/*
 * The read path for typed keys: W and the fill tag C first, then a cache probe; on a miss a
 * durable read under a snapshot taken after them and a fill tagged C (protocol in
 * online_cache.c).
 */
bool
fs_read_row_keys(FsReadState *st, FsOnlineView *ov, Datum *keys, FsOnlineRow *row)
{
	char		img[FS_CACHE_KEY_MAX];
	int			imglen = -1;
	uint64		hash = 0;
	int			slot;
	uint64		tag = 0;
	Snapshot	snap;

	memset(row, 0, sizeof(*row));
	if (ov->view->is_agg)
	{
		fs_agg_read_row(ov, keys, row, lookup_slot(ov));
		return true;
	}
	if (!OidIsValid(ov->online_relid))
		return false;
	slot = lookup_slot(ov);
	if (slot >= 0)
	{
		imglen = fs_read_key_image(ov, keys, img);
		if (imglen < 0)
			slot = -1;
	}
	if (slot >= 0)
	{
		union
		{
			char		data[FS_CACHE_DATA];
			int64		align;
		}			buf;
		int			len;
		uint64		want;

		hash = key_hash(ov, img, imglen);
		want = fs_cache_want(slot, hash);
		tag = fs_cache_fill_tag();
		len = fs_cache_get(slot, ov->view->view_id, hash, img, imglen, want, buf.data);
		if (len >= 0 && fs_payload_decode(ov, buf.data, len, row, true))
		{
			fs_cache_count(slot, FS_CTR_HITS);
			return row->found;
		}
		fs_cache_count(slot, FS_CTR_MISSES);
	}

	/* miss, bypass or no cache: the durable table under a snapshot taken after W and C */
	snap = durable_snapshot();
	/* on error, the resource owner releases the snapshot */
	read_durable(st, ov, keys, snap, row);
	UnregisterSnapshot(snap);
	if (slot >= 0)
	{
		fs_cache_count(slot, FS_CTR_READ_THROUGHS);
		fill(ov, slot, hash, img, imglen, tag, row);
	}
	return row->found;
}

/*
 * An fs_entity's key texts as the view's key types (a malformed key is an error whether or not
 * the view has rows yet). False when there is nothing to read: no online table.
 */
bool
fs_read_entity_keys(FsOnlineView *ov, FsEntityVal *e, Datum *keys)
{
	const char *ktext[FS_MAX_KEYS];
	FsView	   *v = ov->view;

	if (e->nkeys != v->entity.nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("entity \"%s\" has %d key columns, but %d keys were given",
						v->entity.name, v->entity.nkeys, e->nkeys)));
	if (!OidIsValid(ov->online_relid) && !OidIsValid(ov->key_in[0].fn_oid))
		return false;			/* key types not fixed: nothing to convert to, nothing to read */
	fs_entity_val_keys(e, ktext);
	for (int k = 0; k < e->nkeys; k++)
		keys[k] = InputFunctionCall(&ov->key_in[k], (char *) ktext[k], ov->key_ioparam[k], -1);
	/* an aggregation view has no online table: it reads its source */
	return OidIsValid(ov->online_relid) || ov->view->is_agg;
}

/* The read path for an fs_entity: its key texts converted to the entity's key types. */
bool
fs_read_row(FsReadState *st, FsOnlineView *ov, FsEntityVal *e, FsOnlineRow *row)
{
	Datum		keys[FS_MAX_KEYS];

	memset(row, 0, sizeof(*row));
	if (!fs_read_entity_keys(ov, e, keys))
		return false;
	return fs_read_row_keys(st, ov, keys, row);
}

/*
 * Read of many rows at once, by key arrays: every key of the view's online table that is among
 * the given ones. One plan per backend and view version; single-key views use = ANY($1), the
 * others a join with ROWS FROM (unnest($1), ..., unnest($n)).
 */
static SPIPlanPtr
batch_plan(FsOnlineView *ov)
{
	if (ov->batch_plan == NULL)
	{
		FsView	   *v = ov->view;
		int			nk = v->entity.nkeys;
		StringInfoData sql;
		Oid			argtypes[FS_MAX_KEYS];
		SPIPlanPtr	p;

		initStringInfo(&sql);
		appendStringInfoString(&sql, "SELECT ");
		for (int k = 0; k < nk; k++)
			appendStringInfo(&sql, "o.%s, ", quote_identifier(v->entity.keys[k]));
		appendStringInfo(&sql, "o.%s, o.%s, ", quote_identifier(FS_ONLINE_EVENT_COL),
						 quote_identifier(FS_ONLINE_CREATED_COL));
		append_features_jsonb(&sql, v);
		appendStringInfo(&sql, " FROM %s o", fs_online_table_qualname(v->view_id));
		if (nk == 1)
			appendStringInfo(&sql, " WHERE o.%s OPERATOR(pg_catalog.=) ANY ($1)", quote_identifier(v->entity.keys[0]));
		else
		{
			appendStringInfoString(&sql, " JOIN ROWS FROM (");
			for (int k = 0; k < nk; k++)
				appendStringInfo(&sql, "%spg_catalog.unnest($%d)", k > 0 ? ", " : "", k + 1);
			appendStringInfoString(&sql, ") AS u(");
			for (int k = 0; k < nk; k++)
				appendStringInfo(&sql, "%sk%d", k > 0 ? ", " : "", k + 1);
			appendStringInfoString(&sql, ") ON ");
			for (int k = 0; k < nk; k++)
				appendStringInfo(&sql, "%so.%s OPERATOR(pg_catalog.=) u.k%d", k > 0 ? " AND " : "", quote_identifier(v->entity.keys[k]), k + 1);
		}
		for (int k = 0; k < nk; k++)
		{
			argtypes[k] = get_array_type(v->entity.key_types[k]);
			if (!OidIsValid(argtypes[k]))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("key type %s of entity \"%s\" has no array type",
								format_type_be(v->entity.key_types[k]), v->entity.name)));
		}
		p = SPI_prepare(sql.data, nk, argtypes);
		if (p == NULL)
			elog(ERROR, "SPI_prepare failed for: %s", sql.data);
		SPI_keepplan(p);
		ov->batch_plan = p;
	}
	return ov->batch_plan;
}

/* One distinct missing key of a batch: where its rows go (chained duplicates). */
typedef struct MissKey
{
	uint64		hash;
	int			first;			/* index of the first element with this key */
	int			next;			/* next distinct miss in the same hash chain, -1 = none */
} MissKey;

/*
 * Batch read path (the chunked fast form): for n keys (keys[i * nkeys + k]; knull[i] = no
 * key, never found) reads the fill tag C, probes the cache (reading each key's W) with each
 * bucket lock taken once per chunk, and reads ALL the misses with one query under one snapshot
 * taken after those reads, filling each tagged C. Semantics are fs_read_row's, key by key.
 */
FsReadScratch *
fs_read_scratch(MemoryContext cxt, int cap)
{
	FsReadScratch *sc = MemoryContextAllocZero(cxt, sizeof(FsReadScratch));

	sc->cap = cap;
	sc->imgs = MemoryContextAlloc(cxt, (Size) FS_CACHE_KEY_MAX * cap);
	sc->imglen = MemoryContextAlloc(cxt, sizeof(int) * cap);
	sc->hash = MemoryContextAlloc(cxt, sizeof(uint64) * cap);
	sc->next_dup = MemoryContextAlloc(cxt, sizeof(int) * cap);
	sc->miss = MemoryContextAlloc(cxt, sizeof(int) * cap);
	sc->probes = MemoryContextAlloc(cxt, sizeof(FsCacheProbe) * cap);
	sc->bufs = MemoryContextAlloc(cxt, (Size) MAXALIGN(FS_CACHE_DATA) * cap);
	return sc;
}

void
fs_read_rows(FsReadState *st, FsOnlineView *ov, int n, const Datum *keys, const bool *knull,
			 FsOnlineRow *rows, FsReadScratch *sc)
{
	FsView	   *v = ov->view;
	int			nk = v->entity.nkeys;
	int			slot;
	char	   *imgs = sc->imgs;
	int		   *imglen = sc->imglen;
	uint64	   *hash = sc->hash;
	int		   *next_dup = sc->next_dup;
	uint64		tag = 0;
	int			nmiss = 0;
	int		   *miss = sc->miss;

	Assert(n <= sc->cap);
	memset(rows, 0, sizeof(FsOnlineRow) * n);
	if (v->is_agg)
	{
		slot = lookup_slot(ov);
		for (int i = 0; i < n; i++)
			if (!knull[i])
				fs_agg_read_row(ov, (Datum *) &keys[i * nk], &rows[i], slot);
		return;
	}
	if (!OidIsValid(ov->online_relid) || n == 0)
		return;
	slot = lookup_slot(ov);
	for (int i = 0; i < n; i++)
	{
		imglen[i] = knull[i] ? -2 : fs_read_key_image(ov, &keys[i * nk], imgs + i * FS_CACHE_KEY_MAX);
		if (imglen[i] >= 0)
			hash[i] = key_hash(ov, imgs + i * FS_CACHE_KEY_MAX, imglen[i]);
	}

	if (slot >= 0)
	{
		FsCacheProbe *pr = sc->probes;
		char	   *bufs = sc->bufs;

		for (int i = 0; i < n; i++)
		{
			pr[i].hash = hash[i];
			pr[i].key = imgs + i * FS_CACHE_KEY_MAX;
			pr[i].keylen = imglen[i] >= 0 ? imglen[i] : -1;
			pr[i].buf = bufs + i * MAXALIGN(FS_CACHE_DATA);
		}
		/* the fill tag before any snapshot of this call (protocol) */
		tag = fs_cache_fill_tag();
		fs_cache_get_many(slot, v->view_id, pr, n);
		for (int i = 0; i < n; i++)
		{
			if (imglen[i] == -2)
				continue;
			/* a whole jsonb stays in the scratch buffer: no second copy */
			if (pr[i].len < 0 || !fs_payload_decode(ov, pr[i].buf, pr[i].len, &rows[i], false))
			{
				memset(&rows[i], 0, sizeof(FsOnlineRow));
				miss[nmiss++] = i;
			}
		}
	}
	else
		for (int i = 0; i < n; i++)
			if (imglen[i] != -2)
				miss[nmiss++] = i;
	if (nmiss == 0)
		goto out;

	{
		/* distinct missing keys in a small hash table; keys too long for an image one by one */
		int			tsize = 16;
		int		   *table;
		MissKey    *mk = palloc(sizeof(MissKey) * nmiss);
		int			nmk = 0;
		Datum	   *arr[FS_MAX_KEYS];
		Datum		params[FS_MAX_KEYS];
		Snapshot	snap;
		MemoryContext cxt = CurrentMemoryContext;
		int			rc;

		while (tsize < 2 * nmiss)
			tsize *= 2;
		table = palloc(sizeof(int) * tsize);
		for (int t = 0; t < tsize; t++)
			table[t] = -1;
		for (int k = 0; k < nk; k++)
			arr[k] = palloc(sizeof(Datum) * nmiss);
		snap = durable_snapshot();
		for (int m = 0; m < nmiss; m++)
		{
			int			i = miss[m];
			int			t;
			int			j;

			next_dup[i] = -1;
			if (imglen[i] < 0)
			{
				/* a key too long to image: its own keyed read under the same snapshot */
				read_durable(st, ov, (Datum *) &keys[i * nk], snap, &rows[i]);
				continue;
			}
			t = (int) (hash[i] & (tsize - 1));
			for (j = table[t]; j >= 0; j = mk[j].next)
			{
				int			f = mk[j].first;

				if (mk[j].hash == hash[i] && imglen[f] == imglen[i] &&
					memcmp(imgs + f * FS_CACHE_KEY_MAX, imgs + i * FS_CACHE_KEY_MAX, imglen[i]) == 0)
					break;
			}
			if (j >= 0)
			{
				/* a duplicate: chained behind the first element with the key */
				next_dup[i] = next_dup[mk[j].first];
				next_dup[mk[j].first] = i;
				continue;
			}
			mk[nmk].hash = hash[i];
			mk[nmk].first = i;
			mk[nmk].next = table[t];
			table[t] = nmk;
			for (int k = 0; k < nk; k++)
				arr[k][nmk] = keys[i * nk + k];
			nmk++;
		}
		if (nmk > 0)
		{
			open_spi(st);
			for (int k = 0; k < nk; k++)
				params[k] = PointerGetDatum(construct_array(arr[k], nmk, v->entity.key_types[k],
															ov->key_len[k], ov->key_byval[k], ov->key_align[k]));
			rc = SPI_execute_snapshot(batch_plan(ov), params, NULL, snap, InvalidSnapshot, true, false, 0);
			if (rc != SPI_OK_SELECT)
				elog(ERROR, "online batch read failed: %s", SPI_result_code_string(rc));
			MemoryContextSwitchTo(cxt);
			for (uint64 r = 0; r < SPI_processed; r++)
			{
				HeapTuple	tup = SPI_tuptable->vals[r];
				TupleDesc	d = SPI_tuptable->tupdesc;
				Datum		rk[FS_MAX_KEYS];
				bool		isnull;
				char		img[FS_CACHE_KEY_MAX];
				int			il;
				uint64		h;
				int			j;
				FsOnlineRow row;

				for (int k = 0; k < nk; k++)
					rk[k] = SPI_getbinval(tup, d, k + 1, &isnull);
				il = fs_read_key_image(ov, rk, img);
				if (il < 0)
					continue;
				h = key_hash(ov, img, il);
				for (j = table[h & (tsize - 1)]; j >= 0; j = mk[j].next)
				{
					int			f = mk[j].first;

					if (mk[j].hash == h && imglen[f] == il && memcmp(imgs + f * FS_CACHE_KEY_MAX, img, il) == 0)
						break;
				}
				if (j < 0)
					continue;	/* cannot happen: the query only returns the given keys */
				row.found = true;
				row.event_ts = DatumGetTimestampTz(SPI_getbinval(tup, d, nk + 1, &isnull));
				row.created_ts = DatumGetTimestampTz(SPI_getbinval(tup, d, nk + 2, &row.created_null));
				row.features = DatumGetJsonbPCopy(SPI_getbinval(tup, d, nk + 3, &isnull));
				for (int i = mk[j].first; i >= 0; i = next_dup[i])
					rows[i] = row;
			}
			SPI_freetuptable(SPI_tuptable);
			MemoryContextSwitchTo(cxt);
		}
		UnregisterSnapshot(snap);
		if (slot >= 0)
			for (int j = 0; j < nmk; j++)
			{
				int			f = mk[j].first;

				fs_cache_count(slot, FS_CTR_READ_THROUGHS);
				fill(ov, slot, mk[j].hash, imgs + f * FS_CACHE_KEY_MAX, imglen[f], tag, &rows[f]);
			}
	}
out:
	return;
}

/*
 * Worker: every row of the view into the cache, tagged with the fill tag C the caller read
 * before this transaction's snapshot was taken. Streams through a cursor, 1000 rows at a time.
 */
uint64
fs_read_load_view(FsOnlineView *ov, int slot, uint64 tag)
{
	FsView	   *v = ov->view;
	StringInfoData sql;
	Portal		portal;
	uint64		total = 0;
	int			nk = v->entity.nkeys;
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "feature_store load", ALLOCSET_DEFAULT_SIZES);

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int k = 0; k < nk; k++)
		appendStringInfo(&sql, "o.%s, ", quote_identifier(v->entity.keys[k]));
	appendStringInfo(&sql, "o.%s, o.%s, ", quote_identifier(FS_ONLINE_EVENT_COL), quote_identifier(FS_ONLINE_CREATED_COL));
	append_features_jsonb(&sql, v);
	appendStringInfo(&sql, " FROM %s o", fs_online_table_qualname(v->view_id));
	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			Datum		keys[FS_MAX_KEYS];
			bool		isnull;
			char		img[FS_CACHE_KEY_MAX];
			int			imglen;
			FsOnlineRow row;
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			for (int k = 0; k < nk; k++)
				keys[k] = SPI_getbinval(t, d, k + 1, &isnull);
			imglen = fs_read_key_image(ov, keys, img);
			if (imglen >= 0)
			{
				union
				{
					char		data[FS_CACHE_DATA];
					int64		align;
				}			buf;
				int			len;

				row.found = true;
				row.event_ts = DatumGetTimestampTz(SPI_getbinval(t, d, nk + 1, &isnull));
				row.created_ts = DatumGetTimestampTz(SPI_getbinval(t, d, nk + 2, &row.created_null));
				row.features = DatumGetJsonbP(SPI_getbinval(t, d, nk + 3, &isnull));
				len = fs_payload_encode(ov, &row, buf.data);
				fs_cache_put(slot, v->view_id,
							 hash_bytes_extended((const unsigned char *) img, imglen, (uint64) v->view_id),
							 img, imglen, tag, buf.data, len);
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
			total++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(rowcxt);
	return total;
}
