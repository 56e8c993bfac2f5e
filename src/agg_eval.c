/*
 * agg_eval.c — the one evaluator of aggregation views (see agg.h), run by training
 * (pit_agg.c, many times per key) and by serving (online_agg.c, once per key at now()).
 *
 * Results are PostgreSQL's own: count is int8; sum of smallint/integer is int8 and of bigint
 * numeric, exact (128-bit); avg of integers and numeric is numeric_div(sum, count) as avg()
 * computes it; float sums add in event order with float8pl's overflow error; min and max use
 * the type's btree order and the column's collation. first/last take the value of the oldest /
 * newest event by (event_ts, created_ts, NULL created oldest), ties broken by the value itself
 * (first the smallest, last the greatest), NULL values skipped.
 *
 * Bit-for-bit agreement of the two paths rests on two rules: events are sorted by content
 * (fs_agg_events_sort), and an aggregate is always the left-to-right accumulation over its
 * window's events in that order — the sliding form only extends an accumulation to the right
 * and starts afresh whenever the window's start moves.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/typcache.h"

#include "agg.h"
#include "huge_alloc.h"

#ifndef HAVE_INT128
#error "feature_store's aggregation views need a 128-bit integer type"
#endif

/* See agg.h. */
void
fs_agg_eval_init(FsAggEval *ev, FsAggSpec *specs, int nspecs, Oid *arg_coll, bool has_hop, int64 hop_us)
{
	char	  **names = palloc(sizeof(char *) * Max(nspecs, 1));

	memset(ev, 0, sizeof(*ev));
	ev->arg_name = names;
	ev->nspecs = nspecs;
	ev->specs = specs;
	ev->spec_arg = palloc(sizeof(int) * Max(nspecs, 1));
	ev->arg_type = palloc(sizeof(Oid) * Max(nspecs, 1));
	ev->arg_coll = palloc(sizeof(Oid) * Max(nspecs, 1));
	ev->arg_len = palloc(sizeof(int16) * Max(nspecs, 1));
	ev->arg_byval = palloc(sizeof(bool) * Max(nspecs, 1));
	ev->arg_cmp = palloc0(sizeof(FmgrInfo) * Max(nspecs, 1));
	for (int s = 0; s < nspecs; s++)
	{
		int			a;

		ev->spec_arg[s] = -1;
		if (specs[s].arg == NULL)
			continue;
		for (a = 0; a < ev->nargs; a++)
			if (strcmp(names[a], specs[s].arg) == 0)
				break;
		if (a == ev->nargs)
		{
			TypeCacheEntry *tc = lookup_type_cache(specs[s].arg_type, TYPECACHE_CMP_PROC_FINFO);

			names[a] = specs[s].arg;
			ev->arg_type[a] = specs[s].arg_type;
			ev->arg_coll[a] = arg_coll[s];
			get_typlenbyval(specs[s].arg_type, &ev->arg_len[a], &ev->arg_byval[a]);
			if (OidIsValid(tc->cmp_proc))
				fmgr_info_copy(&ev->arg_cmp[a], &tc->cmp_proc_finfo, CurrentMemoryContext);
			ev->nargs++;
		}
		ev->spec_arg[s] = a;
	}
	ev->has_hop = has_hop;
	ev->hop_us = hop_us;
}

/* See agg.h. */
void
fs_agg_events_reset(FsAggEvents *evs, int nargs)
{
	evs->n = 0;
	evs->nargs = nargs;
}

/*
 * Moves the arrays to room for cap events. Large arrays go on huge pages (first touches and
 * copies of growing arrays dominated a training set's reading time); they are never repalloc'd
 * (fs_alloc_huge may return the inside of a chunk), so a move copies into new arrays and the old
 * ones live until the context is reset.
 */
static void
events_grow(FsAggEvents *evs, int cap)
{
	int			na = Max(evs->nargs, 1);
	int64	   *e = fs_alloc_huge(CurrentMemoryContext, sizeof(int64) * cap, 4 * FS_HUGE_PAGE, false, NULL);
	int64	   *c = fs_alloc_huge(CurrentMemoryContext, sizeof(int64) * cap, 4 * FS_HUGE_PAGE, false, NULL);
	bool	   *c_null = fs_alloc_huge(CurrentMemoryContext, sizeof(bool) * cap, 4 * FS_HUGE_PAGE, false, NULL);
	bool	   *pass = fs_alloc_huge(CurrentMemoryContext, sizeof(bool) * cap, 4 * FS_HUGE_PAGE, false, NULL);
	Datum	   *vals = fs_alloc_huge(CurrentMemoryContext, sizeof(Datum) * na * cap, 4 * FS_HUGE_PAGE, false, NULL);
	bool	   *nulls = fs_alloc_huge(CurrentMemoryContext, sizeof(bool) * na * cap, 4 * FS_HUGE_PAGE, false, NULL);

	if (evs->n > 0)
	{
		memcpy(e, evs->e, sizeof(int64) * evs->n);
		memcpy(c, evs->c, sizeof(int64) * evs->n);
		memcpy(c_null, evs->c_null, sizeof(bool) * evs->n);
		memcpy(pass, evs->pass, sizeof(bool) * evs->n);
		memcpy(vals, evs->vals, sizeof(Datum) * na * evs->n);
		memcpy(nulls, evs->nulls, sizeof(bool) * na * evs->n);
	}
	evs->e = e;
	evs->c = c;
	evs->c_null = c_null;
	evs->pass = pass;
	evs->vals = vals;
	evs->nulls = nulls;
	evs->cap = cap;
}

/* See agg.h. */
void
fs_agg_events_reserve(FsAggEvents *evs, int cap)
{
	if (cap > evs->cap)
		events_grow(evs, cap);
}

/* See agg.h. */
void
fs_agg_events_add(FsAggEval *ev, FsAggEvents *evs, int64 e, int64 c, bool c_null, bool pass,
				  const Datum *args, const bool *argnulls)
{
	int			na = evs->nargs;

	if (evs->n == evs->cap)
		events_grow(evs, Max(evs->cap * 2, 64));
	evs->e[evs->n] = e;
	evs->c[evs->n] = c_null ? 0 : c;
	evs->c_null[evs->n] = c_null;
	evs->pass[evs->n] = pass;
	for (int a = 0; a < na; a++)
	{
		evs->nulls[evs->n * na + a] = argnulls[a];
		/* detoasted: the values are compared and added many times, maybe after the scan */
		evs->vals[evs->n * na + a] = argnulls[a] ? (Datum) 0 :
			ev->arg_len[a] == -1 ? PointerGetDatum(PG_DETOAST_DATUM_COPY(args[a])) :
			datumCopy(args[a], ev->arg_byval[a], ev->arg_len[a]);
	}
	evs->n++;
}

static inline int
cmp_arg(FsAggEval *ev, int a, Datum x, Datum y)
{
	return DatumGetInt32(FunctionCall2Coll(&ev->arg_cmp[a], ev->arg_coll[a], x, y));
}

typedef struct SortCtx
{
	FsAggEval  *ev;
	FsAggEvents *evs;
} SortCtx;

static int
event_cmp(const void *pa, const void *pb, void *arg)
{
	SortCtx    *sc = arg;
	FsAggEvents *evs = sc->evs;
	int			i = *(const int *) pa,
				j = *(const int *) pb;
	int			na = evs->nargs;

	if (evs->e[i] != evs->e[j])
		return evs->e[i] < evs->e[j] ? -1 : 1;
	if (evs->c_null[i] != evs->c_null[j])
		return evs->c_null[i] ? -1 : 1;
	if (evs->c[i] != evs->c[j])
		return evs->c[i] < evs->c[j] ? -1 : 1;
	if (evs->pass[i] != evs->pass[j])
		return evs->pass[i] ? 1 : -1;
	for (int a = 0; a < na; a++)
	{
		bool		ni = evs->nulls[i * na + a],
					nj = evs->nulls[j * na + a];
		int			r;

		if (ni != nj)
			return ni ? -1 : 1;
		if (ni || !OidIsValid(sc->ev->arg_cmp[a].fn_oid))
			continue;
		r = cmp_arg(sc->ev, a, evs->vals[i * na + a], evs->vals[j * na + a]);
		if (r != 0)
			return r;
	}
	return 0;
}

/* See agg.h. */
void
fs_agg_events_sort(FsAggEval *ev, FsAggEvents *evs)
{
	int			n = evs->n;
	int			na = evs->nargs;
	bool		sorted = true;
	SortCtx		sc = {ev, evs};
	int		   *perm;
	int64	   *e2,
			   *c2;
	bool	   *cn2,
			   *p2,
			   *n2;
	Datum	   *v2;

	for (int i = 1; i < n && sorted; i++)
	{
		int			a = i - 1,
					b = i;

		sorted = event_cmp(&a, &b, &sc) <= 0;
	}
	if (sorted)
		return;
	perm = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
		perm[i] = i;
	qsort_arg(perm, n, sizeof(int), event_cmp, &sc);
	e2 = palloc(sizeof(int64) * n);
	c2 = palloc(sizeof(int64) * n);
	cn2 = palloc(sizeof(bool) * n);
	p2 = palloc(sizeof(bool) * n);
	v2 = palloc(sizeof(Datum) * Max(na, 1) * n);
	n2 = palloc(sizeof(bool) * Max(na, 1) * n);
	for (int i = 0; i < n; i++)
	{
		int			k = perm[i];

		e2[i] = evs->e[k];
		c2[i] = evs->c[k];
		cn2[i] = evs->c_null[k];
		p2[i] = evs->pass[k];
		for (int a = 0; a < na; a++)
		{
			v2[i * na + a] = evs->vals[k * na + a];
			n2[i * na + a] = evs->nulls[k * na + a];
		}
	}
	memcpy(evs->e, e2, sizeof(int64) * n);
	memcpy(evs->c, c2, sizeof(int64) * n);
	memcpy(evs->c_null, cn2, sizeof(bool) * n);
	memcpy(evs->pass, p2, sizeof(bool) * n);
	memcpy(evs->vals, v2, sizeof(Datum) * na * n);
	memcpy(evs->nulls, n2, sizeof(bool) * na * n);
	pfree(perm);
	pfree(e2);
	pfree(c2);
	pfree(cn2);
	pfree(p2);
	pfree(v2);
	pfree(n2);
}

/* See agg.h: floor division, as date_bin rounds down before its origin too. */
int64
fs_agg_hop(int64 t, int64 hop_us)
{
	/* 1970-01-01 00:00:00+00 in PostgreSQL's microseconds since 2000-01-01 */
	const int64 epoch = -INT64CONST(946684800000000);
	int128		d = (int128) t - epoch;
	int128		r;

	/* -infinity and infinity stay what they are, as date_bin leaves them */
	if (TIMESTAMP_NOT_FINITE(t))
		return t;
	r = d % hop_us;
	if (r < 0)
		r += hop_us;
	return (int64) ((int128) t - r);
}

/* The accumulation of one aggregate over a run of events. */
typedef struct Acc
{
	int64		n;				/* inputs accumulated */
	int128		isum;			/* integer sums */
	double		dsum;			/* float8 sums, avg of floats */
	float4		fsum;			/* sum(real) */
	Datum		nsum;			/* numeric sum */
	bool		has;			/* min/max/first/last: a value is held */
	Datum		best;
	int64		best_e;
	int64		best_c;
	bool		best_cnull;
} Acc;

static void
acc_reset(Acc *a)
{
	memset(a, 0, sizeof(*a));
}

/* (e, c) of event i against the held value's: NULL created times are the oldest. */
static inline int
event_time_cmp(FsAggEvents *evs, int i, Acc *a)
{
	if (evs->e[i] != a->best_e)
		return evs->e[i] < a->best_e ? -1 : 1;
	if (evs->c_null[i] != a->best_cnull)
		return evs->c_null[i] ? -1 : 1;
	if (!evs->c_null[i] && evs->c[i] != a->best_c)
		return evs->c[i] < a->best_c ? -1 : 1;
	return 0;
}

static void
acc_add(FsAggEval *ev, int s, Acc *a, FsAggEvents *evs, int i)
{
	FsAggSpec  *sp = &ev->specs[s];
	int			ai = ev->spec_arg[s];
	Datum		x;
	bool		take;

	if (ai < 0)
	{
		a->n++;					/* count(*) */
		return;
	}
	if (evs->nulls[i * evs->nargs + ai])
		return;
	x = evs->vals[i * evs->nargs + ai];
	switch (sp->fn)
	{
		case FS_AGG_COUNT:
			break;
		case FS_AGG_SUM:
		case FS_AGG_AVG:
			switch (ev->arg_type[ai])
			{
				case INT2OID:
					a->isum += DatumGetInt16(x);
					break;
				case INT4OID:
					a->isum += DatumGetInt32(x);
					break;
				case INT8OID:
					a->isum += DatumGetInt64(x);
					break;
				case FLOAT4OID:
					if (sp->fn == FS_AGG_SUM)
					{
						float4		r = a->fsum + DatumGetFloat4(x);

						if (unlikely(isinf(r)) && !isinf(a->fsum) && !isinf(DatumGetFloat4(x)))
							float_overflow_error();
						a->fsum = r;
						break;
					}
					/* avg(real) accumulates in float8, as float4_accum does */
					{
						double		r = a->dsum + (double) DatumGetFloat4(x);

						if (unlikely(isinf(r)) && !isinf(a->dsum) && !isinf(DatumGetFloat4(x)))
							float_overflow_error();
						a->dsum = r;
					}
					break;
				case FLOAT8OID:
					{
						double		r = a->dsum + DatumGetFloat8(x);

						if (unlikely(isinf(r)) && !isinf(a->dsum) && !isinf(DatumGetFloat8(x)))
							float_overflow_error();
						a->dsum = r;
					}
					break;
				case NUMERICOID:
					a->nsum = a->n == 0 ? x : DirectFunctionCall2(numeric_add, a->nsum, x);
					break;
			}
			break;
		case FS_AGG_MIN:
		case FS_AGG_MAX:
			if (!a->has)
				take = true;
			else
			{
				int			r = cmp_arg(ev, ai, x, a->best);

				take = sp->fn == FS_AGG_MIN ? r < 0 : r > 0;
			}
			if (take)
			{
				a->best = x;
				a->has = true;
			}
			break;
		case FS_AGG_FIRST:
		case FS_AGG_LAST:
			if (!a->has)
				take = true;
			else
			{
				int			t = event_time_cmp(evs, i, a);

				if (t != 0)
					take = sp->fn == FS_AGG_LAST ? t > 0 : t < 0;
				else
				{
					int			r = cmp_arg(ev, ai, x, a->best);

					take = sp->fn == FS_AGG_LAST ? r > 0 : r < 0;
				}
			}
			if (take)
			{
				a->best = x;
				a->has = true;
				a->best_e = evs->e[i];
				a->best_c = evs->c[i];
				a->best_cnull = evs->c_null[i];
			}
			break;
	}
	a->n++;
}

/* A 128-bit integer as numeric (exact). */
static Datum
int128_numeric(int128 v)
{
	char		buf[48];
	char	   *p = buf + sizeof(buf) - 1;
	bool		neg = v < 0;
	uint128		u = neg ? -(uint128) v : (uint128) v;

	if (v >= PG_INT64_MIN && v <= PG_INT64_MAX)
		return NumericGetDatum(int64_to_numeric((int64) v));
	*p = '\0';
	do
	{
		*--p = '0' + (int) (u % 10);
		u /= 10;
	} while (u > 0);
	if (neg)
		*--p = '-';
	return DirectFunctionCall3(numeric_in, CStringGetDatum(p), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

static void
acc_final(FsAggEval *ev, int s, Acc *a, Datum *out, bool *isnull)
{
	FsAggSpec  *sp = &ev->specs[s];
	int			ai = ev->spec_arg[s];

	*isnull = false;
	if (sp->fn == FS_AGG_COUNT)
	{
		*out = Int64GetDatum(a->n);
		return;
	}
	if (a->n == 0)
	{
		*isnull = true;
		*out = (Datum) 0;
		return;
	}
	switch (sp->fn)
	{
		case FS_AGG_SUM:
			switch (ev->arg_type[ai])
			{
				case INT2OID:
				case INT4OID:
					if (a->isum < PG_INT64_MIN || a->isum > PG_INT64_MAX)
						ereport(ERROR,
								(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
								 errmsg("bigint out of range")));
					*out = Int64GetDatum((int64) a->isum);
					return;
				case INT8OID:
					*out = int128_numeric(a->isum);
					return;
				case FLOAT4OID:
					*out = Float4GetDatum(a->fsum);
					return;
				case FLOAT8OID:
					*out = Float8GetDatum(a->dsum);
					return;
				default:
					*out = datumCopy(a->nsum, false, -1);
					return;
			}
		case FS_AGG_AVG:
			switch (ev->arg_type[ai])
			{
				case FLOAT4OID:
				case FLOAT8OID:
					*out = Float8GetDatum(a->dsum / (double) a->n);
					return;
				case NUMERICOID:
					*out = DirectFunctionCall2(numeric_div, a->nsum, NumericGetDatum(int64_to_numeric(a->n)));
					return;
				default:
					*out = DirectFunctionCall2(numeric_div, int128_numeric(a->isum),
											   NumericGetDatum(int64_to_numeric(a->n)));
					return;
			}
		default:
			*out = datumCopy(a->best, ev->arg_byval[ai], ev->arg_len[ai]);
			return;
	}
}

/* First index in [from, n) whose event time is >= t (events sorted by time). */
static inline int
first_at_or_after(FsAggEvents *evs, int from, int64 t)
{
	int			lo = from,
				hi = evs->n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (evs->e[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The window's start for t: t - W, saturating; lifetime windows start at the first event. */
static inline int64
window_start(FsAggSpec *sp, int64 t)
{
	int64		r;

	if (sp->lifetime || pg_sub_s64_overflow(t, sp->window_us, &r))
		return PG_INT64_MIN;
	return r;
}

/* Accumulates events [lo, hi) into a (filter verdict and as_of_created bound applied). */
static void
acc_range(FsAggEval *ev, int s, Acc *a, FsAggEvents *evs, int lo, int hi, int64 tc)
{
	for (int i = lo; i < hi; i++)
	{
		if (!evs->pass[i])
			continue;
		if (ev->as_of_created && (evs->c_null[i] || evs->c[i] > tc))
			continue;
		acc_add(ev, s, a, evs, i);
	}
}

/* See agg.h. */
void
fs_agg_eval_at(FsAggEval *ev, FsAggEvents *evs, int64 t, Datum *out, bool *outnull)
{
	fs_agg_eval_many(ev, evs, &t, &t, 1, out, outnull);
}

/* See agg.h. */
void
fs_agg_eval_many(FsAggEval *ev, FsAggEvents *evs, const int64 *ts, const int64 *tcs, int nt,
				 Datum *out, bool *outnull)
{
	int			ns = ev->nspecs;
	Acc		   *acc = palloc(sizeof(Acc) * Max(ns, 1));
	int		   *lo = palloc(sizeof(int) * Max(ns, 1));
	int			hi = 0;

	for (int s = 0; s < ns; s++)
	{
		acc_reset(&acc[s]);
		lo[s] = 0;
	}
	for (int r = 0; r < nt; r++)
	{
		int64		t = ev->has_hop ? fs_agg_hop(ts[r], ev->hop_us) : ts[r];
		int64		tc = ev->has_hop ? fs_agg_hop(tcs[r], ev->hop_us) : tcs[r];
		int			new_hi = first_at_or_after(evs, hi, t);

		for (int s = 0; s < ns; s++)
		{
			FsAggSpec  *sp = &ev->specs[s];
			int			new_lo = sp->lifetime ? 0 : first_at_or_after(evs, lo[s], window_start(sp, t));

			if (ev->as_of_created || new_lo != lo[s] || r == 0)
			{
				acc_reset(&acc[s]);
				acc_range(ev, s, &acc[s], evs, new_lo, new_hi, tc);
			}
			else
				acc_range(ev, s, &acc[s], evs, hi, new_hi, tc);
			lo[s] = new_lo;
			acc_final(ev, s, &acc[s], &out[r * ns + s], &outnull[r * ns + s]);
		}
		hi = new_hi;
	}
	pfree(acc);
	pfree(lo);
}
