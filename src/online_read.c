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
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "online_cache.h"
#include "online_read.h"
#include "online_table.h"
#include "security.h"

/* Cache payload: header then the jsonb (at a MAXALIGNed offset). */
typedef struct FsPayloadHdr
{
	int64		event_ts;
	int64		created_ts;
	int32		flags;
} FsPayloadHdr;

#define PAYLOAD_FOUND		1
#define PAYLOAD_CREATED_NULL 2
#define PAYLOAD_JSONB_OFF	MAXALIGN(sizeof(FsPayloadHdr))

static FsOwnerContext octx;
static bool notice_given = false;
static Oid	cache_db = InvalidOid;
static bool cache_db_known = false;

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
 * Key image: what identifies an entity within a view in the cache. Fixed-length keys by
 * value or bytes; text-like keys as a 2-byte length and the bytes. -1 when too long to cache.
 */
int
fs_read_key_image(FsOnlineView *ov, const Datum *keys, char *img)
{
	int			off = 0;

	for (int k = 0; k < ov->view->entity.nkeys; k++)
	{
		if (ov->key_byval[k])
		{
			if (off + (int) sizeof(Datum) > FS_CACHE_KEY_MAX)
				return -1;
			memcpy(img + off, &keys[k], sizeof(Datum));
			off += sizeof(Datum);
		}
		else if (ov->key_len[k] > 0)
		{
			if (off + ov->key_len[k] > FS_CACHE_KEY_MAX)
				return -1;
			memcpy(img + off, DatumGetPointer(keys[k]), ov->key_len[k]);
			off += ov->key_len[k];
		}
		else
		{
			struct varlena *t = PG_DETOAST_DATUM_PACKED(keys[k]);
			size_t		len = VARSIZE_ANY_EXHDR(t);
			uint16		len16;

			/* check before narrowing: a long key must never alias a short one */
			if (off + 2 + len > FS_CACHE_KEY_MAX)
				return -1;
			len16 = (uint16) len;
			memcpy(img + off, &len16, 2);
			memcpy(img + off + 2, VARDATA_ANY(t), len);
			off += 2 + (int) len;
		}
	}
	return off;
}

/* Payload = header (found, times) + the served jsonb; returns its length. */
static int
encode_payload(const FsOnlineRow *row, char *buf)
{
	FsPayloadHdr h = {0};
	int			len = PAYLOAD_JSONB_OFF;

	h.flags = row->found ? PAYLOAD_FOUND : 0;
	if (row->found)
	{
		h.event_ts = row->event_ts;
		h.created_ts = row->created_ts;
		if (row->created_null)
			h.flags |= PAYLOAD_CREATED_NULL;
		if (len + VARSIZE(row->features) > FS_CACHE_DATA)
			return len + VARSIZE(row->features);	/* caller's put declines it */
		memcpy(buf + len, row->features, VARSIZE(row->features));
		len += VARSIZE(row->features);
	}
	memcpy(buf, &h, sizeof(h));
	return len;
}

/* Inverse of encode_payload, copying the jsonb so it outlives the bucket lock. */
static void
decode_payload(const char *buf, int len, FsOnlineRow *row)
{
	FsPayloadHdr h;

	memcpy(&h, buf, sizeof(h));
	row->found = (h.flags & PAYLOAD_FOUND) != 0;
	if (!row->found)
		return;
	row->event_ts = h.event_ts;
	row->created_ts = h.created_ts;
	row->created_null = (h.flags & PAYLOAD_CREATED_NULL) != 0;
	row->features = palloc(len - PAYLOAD_JSONB_OFF);
	memcpy(row->features, buf + PAYLOAD_JSONB_OFF, len - PAYLOAD_JSONB_OFF);
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

/* Cache in this backend at all? Says once per session why not, when it is not preloaded. */
static bool
cache_on(void)
{
	if (!fs_cache_preloaded())
	{
		if (!notice_given)
		{
			notice_given = true;
			ereport(NOTICE,
					(errmsg("feature_store online cache is not active; features are read from the online tables"),
					 errhint("Add feature_store to shared_preload_libraries and set feature_store.database to enable the shared-memory cache.")));
		}
		return false;
	}
	if (!cache_db_known)
	{
		cache_db = get_database_oid(fs_cache_database, true);
		cache_db_known = true;
	}
	return cache_db == MyDatabaseId && !RecoveryInProgress() && !IsolationUsesXactSnapshot();
}

/*
 * The read path: cache probe under the generation read first, else durable read with a new
 * snapshot and a fill tagged with that generation (protocol in online_cache.c).
 */
bool
fs_read_row(FsReadState *st, FsOnlineView *ov, FsEntityVal *e, FsOnlineRow *row)
{
	const char *ktext[FS_MAX_KEYS];
	Datum		keys[FS_MAX_KEYS];
	char		img[FS_CACHE_KEY_MAX];
	int			imglen = -1;
	uint64		hash = 0;
	int			slot = -1;
	uint64		gen = 0;
	bool		fill = false;
	Snapshot	snap;
	FsView	   *v = ov->view;

	memset(row, 0, sizeof(*row));
	if (!OidIsValid(ov->online_relid))
		return false;
	if (e->nkeys != v->entity.nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("entity \"%s\" has %d key columns, but %d keys were given",
						v->entity.name, v->entity.nkeys, e->nkeys)));
	fs_entity_val_keys(e, ktext);
	for (int k = 0; k < e->nkeys; k++)
		keys[k] = InputFunctionCall(&ov->key_in[k], (char *) ktext[k], ov->key_ioparam[k], -1);

	if (cache_on() && !fs_online_written_in_xact(v->view_id))
	{
		imglen = fs_read_key_image(ov, keys, img);
		if (imglen >= 0)
		{
			if (!fs_cache_slot_is(ov->cache_slot, v->view_id))
				ov->cache_slot = fs_cache_view_slot(v->view_id, true);
			slot = ov->cache_slot;
		}
		if (slot >= 0)
		{
			union
			{
				char		data[FS_CACHE_DATA];
				int64		align;
			}			buf;
			int			len;

			hash = hash_bytes_extended((const unsigned char *) img, imglen, (uint64) v->view_id);
			gen = fs_cache_view_gen(slot);
			len = fs_cache_get(slot, v->view_id, hash, img, imglen, gen, buf.data);
			if (len >= 0)
			{
				fs_cache_count(slot, FS_CTR_HITS);
				decode_payload(buf.data, len, row);
				return row->found;
			}
			fs_cache_count(slot, FS_CTR_MISSES);
			fill = true;
		}
	}

	/* miss, bypass or no cache: the durable table under a snapshot taken after gen was read */
	snap = RegisterSnapshot(IsolationUsesXactSnapshot() ? GetTransactionSnapshot() : GetLatestSnapshot());
	/* on error, the resource owner releases the snapshot */
	read_durable(st, ov, keys, snap, row);
	UnregisterSnapshot(snap);
	if (slot >= 0)
		fs_cache_count(slot, FS_CTR_READ_THROUGHS);
	if (fill)
	{
		union
		{
			char		data[FS_CACHE_DATA + 1024];
			int64		align;
		}			buf;
		int			len = row->found && VARSIZE(row->features) > 1024 ? FS_CACHE_DATA + 1 : encode_payload(row, buf.data);

		fs_cache_put(slot, v->view_id, hash, img, imglen, gen, buf.data, len);
	}
	return row->found;
}

/*
 * Worker: every row of the view into the cache, tagged gen (read by the caller before this
 * transaction's snapshot was taken). Streams through a cursor, 1000 rows at a time.
 */
uint64
fs_read_load_view(FsOnlineView *ov, int slot, uint64 gen)
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
					char		data[FS_CACHE_DATA + 1024];
					int64		align;
				}			buf;
				int			len;

				row.found = true;
				row.event_ts = DatumGetTimestampTz(SPI_getbinval(t, d, nk + 1, &isnull));
				row.created_ts = DatumGetTimestampTz(SPI_getbinval(t, d, nk + 2, &row.created_null));
				row.features = DatumGetJsonbP(SPI_getbinval(t, d, nk + 3, &isnull));
				len = VARSIZE(row.features) > 1024 ? FS_CACHE_DATA + 1 : encode_payload(&row, buf.data);
				fs_cache_put(slot, v->view_id,
							 hash_bytes_extended((const unsigned char *) img, imglen, (uint64) v->view_id),
							 img, imglen, gen, buf.data, len);
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
