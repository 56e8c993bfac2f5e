/*
 * agg.h — aggregation views' windowed aggregates (docs/semantics.md, "Aggregation views"): the
 * declaration of one aggregate (agg_spec.c parses and validates it at registration) and the one
 * evaluator that both the training path (pit_agg.c) and the serving path (online_agg.c) run,
 * so that the two cannot disagree: the same events, in the same order, through the same code.
 *
 * value(k, t) = fn(arg) over the key's events with t - W <= event_ts < t (lifetime: no lower
 * bound), FILTER (filter) applied, NULL inputs skipped; with a hop, t is first rounded down to a
 * multiple of the hop since the Unix epoch (date_bin(hop, t, 'epoch')).
 */
#ifndef FS_AGG_H
#define FS_AGG_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/array.h"

typedef enum FsAggFn
{
	FS_AGG_COUNT,
	FS_AGG_SUM,
	FS_AGG_AVG,
	FS_AGG_MIN,
	FS_AGG_MAX,
	FS_AGG_FIRST,
	FS_AGG_LAST
} FsAggFn;

/* One declared aggregate: 'fn(arg) [over W] [as name]'. */
typedef struct FsAggSpec
{
	FsAggFn		fn;
	char	   *arg;			/* source column; NULL for count(*) */
	bool		lifetime;		/* no window: every event before t */
	int64		window_us;		/* W in microseconds (a day is 86,400 s) */
	Interval	window;			/* W as given (for the registry) */
	char	   *name;			/* output feature name */
	Oid			arg_type;		/* InvalidOid for count(*) */
	Oid			result_type;
} FsAggSpec;

/* agg_spec.c: the function's name ("count", ...) and back (-1 when unknown). */
extern const char *fs_agg_fn_name(FsAggFn fn);
extern int	fs_agg_fn_from_name(const char *name);

/*
 * agg_spec.c: parses one declaration; errors (invalid_parameter_value, syntax_error) name the
 * text. arg_type/result_type are left for fs_agg_resolve_types.
 */
extern void fs_agg_parse(const char *text, FsAggSpec *spec);

/* agg_spec.c: the result type of fn over arg type t; errors with datatype_mismatch if none. */
extern Oid	fs_agg_result_type(FsAggFn fn, const char *arg, Oid t, const char *spec_name);

/*
 * agg_spec.c: a fixed, positive interval in microseconds (no months; a day is 86,400 s);
 * errors naming `what` (a window, the hop).
 */
extern int64 fs_agg_interval_us(const Interval *iv, const char *what);

/*
 * agg_spec.c: validates a filter, a boolean SQL expression over the source's columns (no
 * subqueries, aggregates, set-returning or volatile functions), and returns it deparsed with
 * every name qualified, to run later under a pinned search_path.
 */
extern char *fs_agg_check_filter(Oid relid, const char *filter);

/* agg_spec.c: a stored filter checked again at use (the source may have changed since). */
extern void fs_agg_recheck_filter(Oid relid, const char *view, const char *filter);

/*
 * agg_spec.c: a registered aggregation view's specs checked against its source as it is now,
 * with their argument types (*specs) and collations (*colls, per spec), and its filter checked
 * again; errors say to register the view again.
 */
struct FsView;
extern void fs_agg_resolve_view(struct FsView *v, Oid relid, FsAggSpec **specs, Oid **colls);

/* The aggregation part of a view's registration, validated against its source. */
typedef struct FsAggDecl
{
	int			n;
	FsAggSpec  *specs;
	char	   *filter;			/* deparsed, NULL when none */
	bool		has_hop;
	Interval	hop;
	int64		hop_us;
} FsAggDecl;

/*
 * agg_spec.c: parses and validates aggregations (text[]), filter and hop over source relid:
 * columns exist, types suit the functions, names are valid and distinct. Errors name the
 * offending declaration; nothing is changed.
 */
extern void fs_agg_declare(Oid relid, ArrayType *aggs, const char *filter, Interval *hop, FsAggDecl *out);

/* agg_spec.c: a NOTICE with the CREATE INDEX to run when serving would scan the whole source. */
extern void fs_agg_index_notice(Oid relid, char *const *keys, int nkeys, const char *event_time);

/* ---------------------------------------------------------------------------------------
 * The evaluator (agg_eval.c).
 * --------------------------------------------------------------------------------------- */

/*
 * One key's events, read from the source: times in the timestamptz domain, the filter's
 * verdict, and the view's distinct argument columns (vals[i * nargs + a]).
 */
typedef struct FsAggEvents
{
	int			n;
	int			cap;
	int			nargs;
	int64	   *e;				/* event time */
	int64	   *c;				/* created time (when !c_null) */
	bool	   *c_null;
	bool	   *pass;			/* the filter held (true without a filter) */
	Datum	   *vals;
	bool	   *nulls;
} FsAggEvents;

/* What the evaluator needs per view: the aggregates and how to compare argument values. */
typedef struct FsAggEval
{
	int			nspecs;
	FsAggSpec  *specs;
	int		   *spec_arg;		/* per spec: index of its argument column, -1 for count(*) */
	int			nargs;
	char	  **arg_name;		/* the source column of each argument */
	Oid		   *arg_type;
	Oid		   *arg_coll;
	int16	   *arg_len;
	bool	   *arg_byval;
	FmgrInfo   *arg_cmp;		/* btree order (fn_oid InvalidOid: none) */
	bool		has_hop;
	int64		hop_us;
	bool		as_of_created;	/* also created_ts <= t, a NULL created time never counts */
	int			max_events;		/* feature_store.aggregate_max_events: bounds one key's events */
} FsAggEval;

/* Sets up ev for a view's specs (arguments in first-use order); memory in the current context. */
extern void fs_agg_eval_init(FsAggEval *ev, FsAggSpec *specs, int nspecs, Oid *arg_coll,
							 bool has_hop, int64 hop_us);

extern void fs_agg_events_reset(FsAggEvents *evs, int nargs);
/* Room for cap events (in the current context), so that a read of known size never grows. */
extern void fs_agg_events_reserve(FsAggEvents *evs, int cap);
/* Appends an event (args copied into the current context). */
extern void fs_agg_events_add(FsAggEval *ev, FsAggEvents *evs, int64 e, int64 c, bool c_null, bool pass,
							  const Datum *args, const bool *argnulls);

/*
 * Sorts one key's events into the evaluation order: (event_ts, created_ts with NULL first,
 * filter verdict, argument values). Ties are thus ordered by content, not by the order a scan
 * met them, so that float sums come out bit for bit the same on both paths.
 */
extern void fs_agg_events_sort(FsAggEval *ev, FsAggEvents *evs);

/*
 * Evaluates every spec at time t (microseconds, timestamptz domain) over sorted events;
 * out/outnull[nspecs]. Values are allocated in the current context.
 */
extern void fs_agg_eval_at(FsAggEval *ev, FsAggEvents *evs, int64 t, Datum *out, bool *outnull);

/*
 * The same for many times of one key, ascending (ts[0..nt)), results row by row
 * (out[i * nspecs + s]): windows slide with two pointers; an aggregate is re-accumulated only
 * when its window's start moves, so every result equals fs_agg_eval_at's, bit for bit.
 */
extern void fs_agg_eval_many(FsAggEval *ev, FsAggEvents *evs, const int64 *ts, const int64 *tcs, int nt,
							 Datum *out, bool *outnull);

/* The hop rounding: date_bin(hop, t, '1970-01-01'). */
extern int64 fs_agg_hop(int64 t, int64 hop_us);

#endif
