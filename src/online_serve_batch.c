/*
 * online_serve_batch.c — the batch serving calls: fs_online_batch(entities), and
 * fs_online_batch_keys / fs_online_batch_vector over an array of typed keys: the keys read in
 * chunks, each with one cache pass and at most one query for its misses, the answers shaped as
 * online_serve.c's single-entity calls shape them.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/tuplestore.h"

#include "entity_type.h"
#include "online_cache.h"
#include "online_meta.h"
#include "online_read.h"
#include "online_serve.h"
#include "transform.h"
#include "sql_args.h"

PG_FUNCTION_INFO_V1(fs_online_batch);
PG_FUNCTION_INFO_V1(fs_online_batch_keys);
PG_FUNCTION_INFO_V1(fs_online_batch_vector);

/*
 * Elements of a keys array per chunk: one cache pass and at most one query per chunk. Small
 * enough that a chunk's scratch (about 90 kB) stays in the CPU cache when many backends share
 * a core; large enough that each bucket lock is taken for several keys.
 */
#define KEYS_CHUNK 256

/* Batch read scratch kept by the backend, one per target view; busy while a call uses it. */
static FsReadScratch **scratch_pool = NULL;
static int	scratch_n = 0;
static bool scratch_busy = false;

/*
 * Scratch for ntargets views: the backend's pool (grown as needed), or, for a nested call (a
 * key type's input function calling back into a batch form), scratch of the call's own.
 */
static FsReadScratch **
scratch_get(int ntargets, bool own)
{
	FsReadScratch **sc;

	if (own)
		sc = palloc0(sizeof(FsReadScratch *) * Max(ntargets, 1));
	else
	{
		if (ntargets > scratch_n)
		{
			FsReadScratch **grown = MemoryContextAllocZero(TopMemoryContext, sizeof(FsReadScratch *) * ntargets);

			if (scratch_n > 0)
				memcpy(grown, scratch_pool, sizeof(FsReadScratch *) * scratch_n);
			scratch_pool = grown;
			scratch_n = ntargets;
		}
		sc = scratch_pool;
	}
	for (int t = 0; t < ntargets; t++)
		if (sc[t] == NULL)
			sc[t] = fs_read_scratch(own ? CurrentMemoryContext : TopMemoryContext, KEYS_CHUNK);
	return sc;
}

/* How the elements of a keys array become the entity's typed keys. */
typedef struct KeyConv
{
	FsOnlineView *ov;			/* any target: all share the entity, hence key types */
	int			nkeys;
	Oid			elemtype;
	bool		composite;		/* elements are rows, one field per key */
	Oid			from[FS_MAX_KEYS];	/* last source type converted per key, and its output */
	FmgrInfo	out[FS_MAX_KEYS];
	MemoryContext cxt;			/* the call's: where the output functions live */
} KeyConv;

/* A value of type `from` as key k: as is when the types match, else through text I/O. */
static Datum
conv_key(KeyConv *kc, int k, Datum d, Oid from)
{
	FsOnlineView *ov = kc->ov;

	if (from == ov->view->entity.key_types[k])
		return d;
	if (kc->from[k] != from)
	{
		Oid			outfn;
		bool		isvarlena;

		getTypeOutputInfo(from, &outfn, &isvarlena);
		fmgr_info_cxt(outfn, &kc->out[k], kc->cxt);
		kc->from[k] = from;
	}
	return InputFunctionCall(&ov->key_in[k], OutputFunctionCall(&kc->out[k], d), ov->key_ioparam[k], -1);
}

/* Element -> keys; false when the element gives no key (a NULL field never matches). */
static bool
elem_keys(KeyConv *kc, Datum elem, Datum *keys)
{
	if (!kc->composite)
	{
		keys[0] = conv_key(kc, 0, elem, kc->elemtype);
		return true;
	}
	{
		HeapTupleHeader td = DatumGetHeapTupleHeader(elem);
		TupleDesc	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(td), HeapTupleHeaderGetTypMod(td));
		HeapTupleData tup;
		bool		ok = true;
		int			natts = 0;

		for (int a = 0; a < desc->natts; a++)
			natts += !TupleDescAttr(desc, a)->attisdropped;
		if (natts != kc->nkeys)
		{
			ReleaseTupleDesc(desc);
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("entity \"%s\" has %d key columns, but a key row has %d fields",
							kc->ov->view->entity.name, kc->nkeys, natts),
					 errhint("Pass one row per entity with its keys in the entity's key order, such as ARRAY[ROW(42, 7)].")));
		}
		tup.t_len = HeapTupleHeaderGetDatumLength(td);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = InvalidOid;
		tup.t_data = td;
		for (int a = 0, k = 0; a < desc->natts && ok; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);
			bool		isnull;
			Datum		d;

			if (att->attisdropped)
				continue;
			d = heap_getattr(&tup, a + 1, desc, &isnull);
			if (isnull)
				ok = false;
			else
				keys[k] = conv_key(kc, k, d, att->atttypid);
			k++;
		}
		ReleaseTupleDesc(desc);
		return ok;
	}
}

/*
 * The plan of a keys-array call: the view or service names the entity (a service whose
 * features span several entities cannot take one key array). Privileges are checked here,
 * once per call.
 */
static void
make_keys_plan(ServePlan *p, const char *name, Oid elemtype, KeyConv *kc)
{
	FsOnlineView *ov;
	const char *entity = NULL;

	fs_meta_ensure();
	ov = fs_meta_find_view(name);
	if (ov)
		entity = ov->view->entity.name;
	else
	{
		FsService  *s = fs_meta_find_service(name);

		if (s != NULL)
			for (int i = 0; i < s->nfeatures; i++)
			{
				const char *en = s->features[i].ov->view->entity.name;

				if (entity == NULL)
					entity = en;
				else if (strcmp(entity, en) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("feature service \"%s\" has features of entities \"%s\" and \"%s\"", name, entity, en),
							 errhint("Serve it with fs_online_batch(fs_entity[], '%s'), or call the keys form once per view.", name)));
			}
	}
	/* unknown names, offline views and privileges are reported here */
	fs_serve_make_plan(p, entity ? entity : "", name);
	if (p->service != NULL && p->service->ntransforms > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("feature service \"%s\" has transforms, which the keys forms do not serve", name),
				 errhint("Serve it with fs_online_batch(fs_entity[], '%s', requests) or fs_online_vector(entity, '%s', request).",
						 name, name)));
	memset(kc, 0, sizeof(*kc));
	kc->ov = p->targets[0].ov;
	kc->nkeys = kc->ov->view->entity.nkeys;
	kc->elemtype = elemtype;
	kc->composite = type_is_rowtype(elemtype);
	kc->cxt = CurrentMemoryContext;
	if (!kc->composite && kc->nkeys != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("entity \"%s\" has %d key columns, but the keys are of the scalar type %s",
						entity, kc->nkeys, format_type_be(elemtype)),
				 errhint("Pass an array of rows with the keys in order, such as ARRAY[ROW(42, 7), ROW(43, 9)].")));
}

/*
 * The output rows of a chunk, one per element in array order: (element, answer), the answer
 * NULL for elements without keys (knull) or without any feature; a vector with vs.
 */
static void
emit_chunk(ReturnSetInfo *rsi, ServePlan *p, VecSpec *vs, Datum *elems, bool *enulls,
		   bool *knull, FsOnlineRow **rows, int m)
{
	FsOnlineRow *erow = palloc(sizeof(FsOnlineRow) * Max(p->ntargets, 1));

	for (int i = 0; i < m; i++)
	{
		Datum		out[2];
		bool		onull[2] = {enulls[i], true};

		out[0] = elems[i];
		if (!knull[i])
		{
			for (int t = 0; t < p->ntargets; t++)
				erow[t] = rows[t][i];
			if (vs)
			{
				ArrayType  *v = fs_serve_build_vector(p, vs, erow);

				if (v)
					out[1] = PointerGetDatum(v), onull[1] = false;
			}
			else
			{
				Jsonb	   *j = fs_serve_assemble(p, erow);

				if (j)
					out[1] = JsonbPGetDatum(j), onull[1] = false;
			}
		}
		tuplestore_putvalues(rsi->setResult, rsi->setDesc, out, onull);
	}
}

/*
 * The keys forms' chunk loop: per chunk of elements, one batched read per target view (sc[t]
 * its scratch), then one output row per element (key, answer) in array order.
 */
static void
serve_chunks(ReturnSetInfo *rsi, ServePlan *p, KeyConv *kc, VecSpec *vs, Datum *elems,
			 bool *enulls, int n, FsReadScratch **sc)
{
	FsReadState rs;
	MemoryContext chunkcxt,
				old;

	fs_read_begin(&rs);
	/* per-chunk garbage (rows, keys, answers) goes away once the chunk's rows are stored */
	chunkcxt = AllocSetContextCreate(CurrentMemoryContext, "fs_online_batch_keys chunk", ALLOCSET_DEFAULT_SIZES);
	for (int c0 = 0; c0 < n; c0 += KEYS_CHUNK)
	{
		int			m = Min(KEYS_CHUNK, n - c0);
		Datum	   *keys;
		bool	   *knull;
		FsOnlineRow **rows;

		old = MemoryContextSwitchTo(chunkcxt);
		keys = palloc(sizeof(Datum) * m * kc->nkeys);
		knull = palloc(sizeof(bool) * m);
		for (int i = 0; i < m; i++)
			knull[i] = enulls[c0 + i] || !elem_keys(kc, elems[c0 + i], &keys[i * kc->nkeys]);
		rows = palloc(sizeof(FsOnlineRow *) * p->ntargets);
		for (int t = 0; t < p->ntargets; t++)
		{
			rows[t] = palloc(sizeof(FsOnlineRow) * m);
			fs_read_rows(&rs, p->targets[t].ov, m, keys, knull, rows[t], sc[t]);
		}
		emit_chunk(rsi, p, vs, &elems[c0], &enulls[c0], knull, rows, m);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunkcxt);
	}
	fs_read_end(&rs);
	MemoryContextDelete(chunkcxt);
}

/*
 * The keys forms: plan (privileges once), elements, then the chunk loop with the backend's
 * scratch memory (kept from call to call: allocating it per call costs page faults that rival
 * the cache probes; a nested call, e.g. from a key type's input function, gets its own).
 */
static void
serve_keys(FunctionCallInfo fcinfo, bool vector)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	ArrayType  *arr;
	Oid			elemtype;
	int16		typlen;
	bool		byval;
	char		align;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	ServePlan  *p = palloc(sizeof(ServePlan));
	KeyConv		kc;
	VecSpec		vs;
	FsReadScratch **sc;
	bool		own_scratch;

	InitMaterializedSRF(fcinfo, 0);
	name = fs_text_arg(fcinfo, 0, "feature view or service name");
	if (PG_ARGISNULL(1))
		return;
	arr = PG_GETARG_ARRAYTYPE_P(1);
	elemtype = ARR_ELEMTYPE(arr);
	make_keys_plan(p, name, elemtype, &kc);
	if (vector)
		fs_serve_vec_spec(p, name, &vs);
	get_typlenbyvalalign(elemtype, &typlen, &byval, &align);
	deconstruct_array(arr, elemtype, typlen, byval, align, &elems, &enulls, &n);
	own_scratch = scratch_busy;
	sc = scratch_get(p->ntargets, own_scratch);
	if (own_scratch)
	{
		serve_chunks(rsi, p, &kc, vector ? &vs : NULL, elems, enulls, n, sc);
		return;
	}
	scratch_busy = true;
	PG_TRY();
	{
		serve_chunks(rsi, p, &kc, vector ? &vs : NULL, elems, enulls, n, sc);
	}
	PG_FINALLY();
	{
		scratch_busy = false;
	}
	PG_END_TRY();
}

/*
 * fs_online_batch's loop: a run of consecutive elements of one entity (at most a chunk; NULL
 * elements ride along) is read like a chunk of the keys forms, one batched read per target
 * view, then one output row per element in array order.
 */
static void
serve_entities(ReturnSetInfo *rsi, const char *name, Datum *elems, bool *enulls, int n, bool own)
{
	ServePlan  *p = palloc0(sizeof(ServePlan));	/* no targets until an element names the entity */
	char	   *plan_entity = NULL;
	FsReadState rs;
	MemoryContext chunkcxt,
				old;

	fs_read_begin(&rs);
	/* per-chunk garbage (keys, rows, answers) goes away once the chunk's rows are stored */
	chunkcxt = AllocSetContextCreate(CurrentMemoryContext, "fs_online_batch chunk", ALLOCSET_DEFAULT_SIZES);
	for (int c0 = 0; c0 < n;)
	{
		int			m = 0;
		const char *ename = NULL;
		FsOnlineRow **rows = NULL;

		while (c0 + m < n && m < KEYS_CHUNK)
		{
			if (!enulls[c0 + m])
			{
				const char *en = fs_entity_val_name(DatumGetFsEntityP(elems[c0 + m]));

				if (ename == NULL)
					ename = en;
				else if (strcmp(ename, en) != 0)
					break;
			}
			m++;
		}
		if (ename && (plan_entity == NULL || strcmp(plan_entity, ename) != 0))
		{
			plan_entity = pstrdup(ename);
			fs_serve_make_plan(p, plan_entity, name);
		}
		old = MemoryContextSwitchTo(chunkcxt);
		if (ename)
		{
			FsReadScratch **sc = scratch_get(p->ntargets, own);

			rows = palloc(sizeof(FsOnlineRow *) * Max(p->ntargets, 1));
			for (int t = 0; t < p->ntargets; t++)
			{
				FsOnlineView *ov = p->targets[t].ov;
				int			nk = ov->view->entity.nkeys;
				Datum	   *keys = palloc(sizeof(Datum) * m * nk);
				bool	   *knull = palloc(sizeof(bool) * m);
				bool		readable = true;

				/* every element's keys are converted (a malformed one is an error) */
				for (int i = 0; i < m; i++)
				{
					knull[i] = enulls[c0 + i];
					if (!knull[i] &&
						!fs_read_entity_keys(ov, DatumGetFsEntityP(elems[c0 + i]), &keys[i * nk]))
						readable = false;
				}
				rows[t] = palloc0(sizeof(FsOnlineRow) * m);
				if (readable)
					fs_read_rows(&rs, ov, m, keys, knull, rows[t], sc[t]);
			}
		}
		emit_chunk(rsi, p, NULL, &elems[c0], &enulls[c0], &enulls[c0], rows, m);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunkcxt);
		c0 += m;
	}
	fs_read_end(&rs);
	MemoryContextDelete(chunkcxt);
}

/*
 * fs_online_batch(entities fs_entity[], view_or_service text) -> (entity, features) per
 * element, in array order; one plan per run of one entity, and the keys forms' batched reads.
 */
Datum
fs_online_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	char	   *name = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int16		typlen;
	bool		byval;
	char		align;

	/* a service with transforms: its requests (NULL here) decide */
	if (name != NULL)
	{
		FsService  *svc;

		fs_meta_ensure();
		svc = fs_meta_find_view(name) ? NULL : fs_meta_find_service(name);
		if (svc != NULL && svc->ntransforms > 0)
			return fs_online_batch_request(fcinfo);
	}
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	arr = PG_GETARG_ARRAYTYPE_P(0);
	get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &byval, &align);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, byval, align, &elems, &enulls, &n);
	if (scratch_busy)
	{
		/* a nested call (from something this call evaluates) keeps its own scratch */
		serve_entities(rsi, name, elems, enulls, n, true);
		return (Datum) 0;
	}
	scratch_busy = true;
	PG_TRY();
	{
		serve_entities(rsi, name, elems, enulls, n, false);
	}
	PG_FINALLY();
	{
		scratch_busy = false;
	}
	PG_END_TRY();
	return (Datum) 0;
}

/*
 * fs_online_batch_keys(view_or_service text, keys anyarray) -> (key, features jsonb) per element,
 * in array order: the fast batch form. Keys are the entity's key values themselves (an array
 * of the key type, or of rows for composite keys), no fs_entity to build or parse; privileges
 * are checked once, each cache lock is taken once per chunk, misses are read in one query.
 */
Datum
fs_online_batch_keys(PG_FUNCTION_ARGS)
{
	serve_keys(fcinfo, false);
	return (Datum) 0;
}

/* fs_online_batch_vector(service, keys anyarray) -> (key, features float8[]) per element. */
Datum
fs_online_batch_vector(PG_FUNCTION_ARGS)
{
	serve_keys(fcinfo, true);
	return (Datum) 0;
}
