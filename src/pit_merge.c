/*
 * pit_merge.c — the order of history rows (docs/semantics.md, point-in-time join, rules 3 and 4) and the as-of
 * merge: comparing rows (event time, created time, then the features as tie-break), keeping a
 * slot's best row in batch memory, and per key walking the slots in time order with a running
 * maximum, checking the TTL bound on the winner. Separate because this is where the join's
 * semantics live: what a spine row gets, independent of how the rows were read. (Placing a row
 * into its slot is inline in pit_join_int.h, on the readers' per-row path.)
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pit_join.h"
#include "pit_join_int.h"

/* ---------------------------------------------------------------------------------------
 * Row order: which of two history rows of a slot is the better one.
 * --------------------------------------------------------------------------------------- */

/*
 * The tie-break of rule 4 (docs/semantics.md) once (event_ts, created_ts) are equal: the row whose
 * feature values are smaller (in view feature order, each by its type's default btree order
 * and collation, NULLs last) wins; types without a btree order are skipped. Returns < 0 when
 * the first row wins, > 0 when the second does, 0 when they are equal on every orderable feature.
 */
int
pit_features_cmp(PitView *v, const Datum *va, const bool *na, const Datum *vb, const bool *nb)
{
	for (int f = 0; f < v->nfeat; f++)
	{
		int32		r;

		if (v->feat_cmp[f] == NULL || (na[f] && nb[f]))
			continue;
		if (na[f])
			return 1;
		if (nb[f])
			return -1;
		r = DatumGetInt32(FunctionCall2Coll(v->feat_cmp[f], v->feat_coll[f], va[f], vb[f]));
		if (r != 0)
			return r;
	}
	return 0;
}

/*
 * The total order of rule 4 (docs/semantics.md): greater (event_ts, created_ts) wins, a NULL created
 * time being older than any; then pit_features_cmp. True when (e, c, vals) beats cur.
 */
static bool
row_beats(PitView *v, int64 e, int64 c, bool c_null, const Datum *vals, const bool *nulls,
		  const PitRow *cur)
{
	if (e != cur->e)
		return e > cur->e;
	if (c_null != cur->c_null)
		return !c_null;
	if (!c_null && c != cur->c)
		return c > cur->c;
	return pit_features_cmp(v, vals, nulls, cur->vals, cur->nulls) < 0;
}

/* See pit_join_int.h. */
void *
pit_bump_alloc(PitView *v, Size size, MemoryContext bcxt)
{
	void	   *r;

	if (v->bump_ptr == NULL || v->bump_ptr + size > v->bump_end)
	{
		Size		chunk = Max(size, 8 * 1024 * 1024);
		MemoryContext old = MemoryContextSwitchTo(bcxt);

		v->bump_ptr = pit_alloc_big(chunk);
		v->bump_end = v->bump_ptr + chunk;
		MemoryContextSwitchTo(old);
	}
	r = v->bump_ptr;
	v->bump_ptr += MAXALIGN(size);
	return r;
}

/*
 * Makes (e, c, features) the slot's best row, copying the features into batch memory (from the
 * bump allocator when final, else a palloc'd row freed when it is replaced).
 */
void
pit_store_row(PitView *v, PitSlot *s, int64 e, int64 c, bool c_null, const Datum *fvals, const bool *fnulls,
			  MemoryContext bcxt, bool final)
{
	Size		size = MAXALIGN(sizeof(PitRow) + (sizeof(Datum) + sizeof(bool)) * v->nfeat);
	Datum		vals[FS_PIT_MAX_FEAT_STACK];
	Datum	   *dv = v->nfeat <= FS_PIT_MAX_FEAT_STACK ? vals : palloc(sizeof(Datum) * v->nfeat);
	PitRow	   *r;
	char	   *data;

	/* one allocation per row, by-reference values inline: the emit pass touches one place */
	for (int f = 0; f < v->nfeat; f++)
	{
		dv[f] = fvals[f];
		if (fnulls[f] || v->feat_byval[f])
			continue;
		/* short (1-byte header) values are copied as they are */
		if (v->feat_len[f] == -1 &&
			(VARATT_IS_EXTERNAL(DatumGetPointer(fvals[f])) || VARATT_IS_COMPRESSED(DatumGetPointer(fvals[f]))))
			dv[f] = PointerGetDatum(PG_DETOAST_DATUM(fvals[f]));
		size += MAXALIGN(datumGetSize(dv[f], false, v->feat_len[f]));
	}
	if (s->best != NULL && !final)
		pfree(s->best);
	r = final ? pit_bump_alloc(v, size, bcxt) : MemoryContextAlloc(bcxt, size);
	r->vals = (Datum *) (r + 1);
	r->nulls = (bool *) (r->vals + v->nfeat);
	data = (char *) r + MAXALIGN(sizeof(PitRow) + (sizeof(Datum) + sizeof(bool)) * v->nfeat);
	s->best = r;
	r->e = e;
	r->e_dom = pit_to_dom(e, v->event_type, v->dom_tz_event);
	r->c = c;
	r->c_null = c_null;
	s->has_best = true;
	s->best_e = e;
	s->best_c = c;
	s->best_cnull = c_null;
	for (int f = 0; f < v->nfeat; f++)
	{
		r->nulls[f] = fnulls[f];
		if (fnulls[f])
			r->vals[f] = (Datum) 0;
		else if (v->feat_byval[f])
			r->vals[f] = fvals[f];
		else
		{
			Size		len = datumGetSize(dv[f], false, v->feat_len[f]);

			memcpy(data, DatumGetPointer(dv[f]), len);
			r->vals[f] = PointerGetDatum(data);
			data += MAXALIGN(len);
		}
	}
	if (dv != vals)
		pfree(dv);
}

/*
 * Rule 3: is event time e_dom (event-time domain) >= spine time - TTL? The bound is computed
 * exactly as SQL's "ts - ttl" (calendar and time zone aware) but only when e_dom is within two
 * days per TTL month plus two days of the naive bound; elsewhere the answer is certain.
 */
bool
pit_within_ttl(PitPlan *p, PitView *v, const PitSlot *s, int64 e_dom)
{
	const Interval *ttl = &v->fv->ttl;
	int64		naive,
				band = ((int64) Abs(ttl->month) * 2 + 2) * USECS_PER_DAY;
	Datum		lb;

	if (!pg_mul_s64_overflow((int64) ttl->month * DAYS_PER_MONTH + ttl->day, USECS_PER_DAY, &naive) &&
		!pg_add_s64_overflow(naive, ttl->time, &naive) &&
		!pg_sub_s64_overflow(s->te, naive, &naive) &&
		s->te != PG_INT64_MAX && s->te != PG_INT64_MIN &&
		naive > PG_INT64_MIN + band && naive < PG_INT64_MAX - band)
	{
		if (e_dom >= naive + band)
			return true;
		if (e_dom < naive - band)
			return false;
	}
	lb = DirectFunctionCall2(p->spine_ts_type == TIMESTAMPTZOID ? timestamptz_mi_interval : timestamp_mi_interval,
							 Int64GetDatum(s->ts), IntervalPGetDatum(ttl));
	return e_dom >= pit_to_dom(DatumGetInt64(lb), p->spine_ts_type, v->dom_tz_event);
}

/*
 * As-of merge: per key, a running maximum over its slots in time order gives each spine row
 * the best row starting at or before its time; the TTL bound is checked on that row.
 */
void
pit_merge_batch(PitPlan *p, PitView *v)
{
	for (uint32 i = 0; i <= v->mask; i++)
	{
		PitEntry   *e = PIT_ENTRY_AT(v, i);
		PitRow	   *run = NULL;

		if (e->count <= 0)
			continue;
		/* the key's slots are contiguous and in time order */
		for (int j = e->start; j < e->start + e->count; j++)
		{
			PitSlot    *s = &v->slots[j];
			PitRow	   *b = s->best;

			if (b != NULL &&
				(run == NULL || row_beats(v, b->e, b->c, b->c_null, b->vals, b->nulls, run)))
				run = b;
			if (run != NULL && (!v->fv->has_ttl || pit_within_ttl(p, v, s, run->e_dom)))
				v->winner[s->row] = run;
		}
	}
}
