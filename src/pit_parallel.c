/*
 * pit_parallel.c — the point-in-time join on several cores.
 *
 * Every worker builds the same batches (the whole spine, the same slots in the same order: the
 * build is deterministic) and then shares the work of a batch three ways:
 *   - the history: the blocks of every plain heap leaf are claimed in ranges of
 *     PIT_PAR_CHUNK_BLOCKS from a shared counter (so a worker slowed down by other processes
 *     simply claims fewer), each block read by exactly one worker; leaves probed through a key
 *     index are probed by the worker owning the key's hash range; other table AMs are read by
 *     the first worker;
 *   - the best rows: each worker publishes its best row per slot (times and TID, 32 bytes) in a
 *     DSA array; after a barrier each worker combines every worker's bests (the same total order
 *     as the serial join: event time, created time, features, then the first row in scan order)
 *     and runs the as-of merge with the TTL bound over them, keeping the winners of its own rows;
 *   - the output: spine rows in chunks of PIT_PAR_CHUNK_ROWS, chunk c emitted by worker
 *     c mod workers, which reads only its rows' winners' features and forms only its rows. Each
 *     row goes to the leader through the worker's shm_mq, tagged with its spine ordinal; the
 *     leader reads the owner of the next ordinal only (so a worker waiting at a barrier never
 *     waits for a leader waiting for it), and emits the rows in spine order.
 * Each worker plans the same join (the leader's resolved feature versions, under the leader's
 * snapshot and user, which PostgreSQL's ParallelContext restores). Errors in a worker are raised
 * in the leader by the parallel context, which then ends the other workers.
 *
 * Only where a worker can read what the leader reads: a spine table that is not temporary (a
 * spine query runs once, in the leader), sources read through the table AM (no SPI: views and
 * row-level security stay in the leader), latest-value views. The workers are
 * max_parallel_workers_per_gather (at least two: the leader only forwards rows), for spines of
 * at least feature_store.parallel_join_min_rows, when feature_store.parallel_join is on. The
 * duplicated work is the spine read and batch build (once per worker) and the merge of the
 * bests; each worker takes the join's memory (like a parallel hash join's work_mem per worker).
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "port/atomics.h"
#include "storage/barrier.h"
#include "storage/lwlock.h"
#include "utils/dsa.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "pit_join.h"
#include "pit_join_int.h"

#define PIT_PAR_HEADER		UINT64CONST(0xFE57A001)
#define PIT_PAR_FEATURES	UINT64CONST(0xFE57A002)
#define PIT_PAR_QUEUES		UINT64CONST(0xFE57A003)
#define PIT_PAR_STATS		UINT64CONST(0xFE57A004)
#define PIT_PAR_DSA			UINT64CONST(0xFE57A005)
#define PIT_PAR_BESTS		UINT64CONST(0xFE57A006)
#define PIT_PAR_BLOCKS		UINT64CONST(0xFE57A007)
#define PIT_PAR_QUEUE_SIZE	((Size) 1024 * 1024)
#define PIT_PAR_CHUNK_BLOCKS 32	/* blocks a worker claims at a time (256 kB) */
#define PIT_PAR_QUIT		PG_UINT32_MAX	/* nparts telling the workers to leave at once */
#define PIT_PAR_END			PG_UINT64_MAX	/* ordinal of a worker's last message */

static bool parallel_join = false;
static int	parallel_min_rows = 100000;

typedef struct PitParHeader
{
	Oid			spine_relid;
	bool		full_names;
	bool		as_of_created;
	bool		checksum_on;
	char		spine_time[NAMEDATALEN];
	int			nleaves;		/* leaves over all views: one block counter each */
	Barrier		barrier;		/* the workers, around the exchange of best rows */
	pg_atomic_uint32 nparts;	/* 0 until the leader knows how many workers started */
} PitParHeader;

/* What a worker reports when done. */
typedef struct PitParOut
{
	PitStats	stats;
	uint64		checksum;		/* of the spine rows it emitted */
} PitParOut;

/* A worker's best row of one slot, as published to the others. */
typedef struct PitBest
{
	int64		e;
	int64		c;
	ItemPointerData tid;
	int16		leaf;
	bool		has;
	bool		cnull;
} PitBest;

/* A worker's view of the shared state (PitPlan.par). */
typedef struct PitParShared
{
	PitParHeader *h;
	dsa_area   *area;
	dsa_pointer *bests;			/* per worker: its PitBest array of the view being combined */
	pg_atomic_uint64 *next_block;	/* per leaf: the next block to claim */
	int		   *leaf_base;		/* per view: its first leaf's counter */
	double		wait_ms;		/* at the barriers */
	double		combine_ms;
} PitParShared;

PGDLLEXPORT void pit_parallel_main(dsm_segment *seg, shm_toc *toc);

void
pit_parallel_init(void)
{
	DefineCustomBoolVariable("feature_store.parallel_join",
							 "Lets the point-in-time join split large spines across parallel workers.",
							 "The workers share the history scan by block ranges and the output by spine row "
							 "ranges (see docs/scaling.md).",
							 &parallel_join, false,
							 PGC_USERSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("feature_store.parallel_join_min_rows",
							"Smallest spine the point-in-time join splits across parallel workers.",
							"max_parallel_workers_per_gather workers (at least two) share the join.",
							&parallel_min_rows, 100000, 0, INT_MAX,
							PGC_USERSET, GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
}

/* See pit_join_int.h. */
int
pit_parallel_workers(PitPlan *p)
{
	Relation	rel;
	int32	   *widths;
	BlockNumber pages;
	double		tuples,
				allvis;

	if (!parallel_join || max_parallel_workers_per_gather <= 0 || IsInParallelMode() || p->spine_spi || p->spine_temp ||
		p->nviews == 0 || !OidIsValid(p->spine_relid))
		return 0;
	for (int i = 0; i < p->nviews; i++)
		if (p->views[i]->use_spi || p->views[i]->agg != NULL)
			return 0;
	rel = table_open(p->spine_relid, AccessShareLock);
	widths = palloc0(sizeof(int32) * (RelationGetNumberOfAttributes(rel) + 1));
	estimate_rel_size(rel, widths, &pages, &tuples, &allvis);
	table_close(rel, AccessShareLock);
	if (tuples < parallel_min_rows || max_parallel_workers_per_gather < 2)
		return 0;				/* one worker would do the serial join's work plus forwarding */
	return max_parallel_workers_per_gather;
}

/* ---------------------------------------------------------------------------------------
 * Worker: sharing the history scan
 * --------------------------------------------------------------------------------------- */

static int
view_index(PitPlan *p, PitView *v)
{
	for (int i = 0; i < p->nviews; i++)
		if (p->views[i] == v)
			return i;
	elog(ERROR, "view not in the point-in-time join's plan");
	return -1;					/* keep compiler quiet */
}

/* See pit_join_int.h: the next range [lo, hi) of leaf li's blocks, false when none is left. */
bool
pit_par_next_blocks(PitPlan *p, PitView *v, int li, BlockNumber nblocks, BlockNumber *lo, BlockNumber *hi)
{
	PitParShared *par = p->par;
	uint64		b = pg_atomic_fetch_add_u64(&par->next_block[par->leaf_base[view_index(p, v)] + li],
											PIT_PAR_CHUNK_BLOCKS);

	if (b >= nblocks)
		return false;
	*lo = (BlockNumber) b;
	*hi = (BlockNumber) Min(b + PIT_PAR_CHUNK_BLOCKS, (uint64) nblocks);
	return true;
}

/*
 * Whether best row a beats b (rule 4 of docs/semantics.md: event time, created time with NULL
 * oldest, then the features); on equal features first_wins decides: true within one slot, where
 * the serial join keeps the row it met first (the lower leaf and TID, in its scan order), false
 * between the slots of a key, where its merge keeps the earlier slot's row.
 */
static bool
best_beats(PitView *v, const PitBest *a, const PitBest *b, bool first_wins, PitFetchFn fetch, void *farg,
		   Datum *va, bool *na, Datum *vb, bool *nb)
{
	int			cmp;

	if (a->e != b->e)
		return a->e > b->e;
	if (a->cnull != b->cnull)
		return !a->cnull;
	if (!a->cnull && a->c != b->c)
		return a->c > b->c;
	if (a->leaf == b->leaf && ItemPointerEquals((ItemPointer) &a->tid, (ItemPointer) &b->tid))
		return false;			/* the same row */
	fetch(farg, a->leaf, (ItemPointer) &a->tid, false, va, na);
	fetch(farg, b->leaf, (ItemPointer) &b->tid, true, vb, nb);
	cmp = pit_features_cmp(v, va, na, vb, nb);
	if (cmp != 0 || !first_wins)
		return cmp < 0;
	if (a->leaf != b->leaf)
		return a->leaf < b->leaf;
	return ItemPointerCompare((ItemPointer) &a->tid, (ItemPointer) &b->tid) < 0;
}

/*
 * See pit_join_int.h. Publishes this worker's best row per slot, waits for the others', then per
 * key walks its slots in time order: each slot's best over all workers, the running maximum of
 * those (the as-of merge), the TTL bound; a slot of this worker's rows keeps its winner's times
 * and TID (read by the caller), the others none.
 */
void
pit_par_combine(PitPlan *p, PitView *v, PitFetchFn fetch, void *farg)
{
	PitParShared *par = p->par;
	int			n = p->part_n;
	dsa_pointer mine = dsa_allocate_extended(par->area, sizeof(PitBest) * Max(v->nslots, 1), DSA_ALLOC_HUGE);
	PitBest    *own = dsa_get_address(par->area, mine);
	PitBest   **all = palloc(sizeof(PitBest *) * n);
	Datum	   *va = palloc(sizeof(Datum) * Max(v->nfeat, 1));
	Datum	   *vb = palloc(sizeof(Datum) * Max(v->nfeat, 1));
	bool	   *na = palloc(sizeof(bool) * Max(v->nfeat, 1));
	bool	   *nb = palloc(sizeof(bool) * Max(v->nfeat, 1));
	instr_time	t0,
				t1;
	bool		elected;

	for (int k = 0; k < v->nslots; k++)
	{
		PitSlot    *s = &v->slots[k];
		PitBest    *b = &own[k];

		b->has = s->has_best;
		b->e = s->best_e;
		b->c = s->best_c;
		b->cnull = s->best_cnull;
		b->tid = s->best_tid;
		b->leaf = s->best_leaf;
	}
	par->bests[p->part_i] = mine;
	INSTR_TIME_SET_CURRENT(t0);
	elected = BarrierArriveAndWait(&par->h->barrier, PG_WAIT_EXTENSION);
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	par->wait_ms += INSTR_TIME_GET_MILLISEC(t1);
	INSTR_TIME_SET_CURRENT(t0);
	if (elected)
	{
		/* every worker has scanned this view's leaves: the next batch claims blocks afresh */
		int			base = par->leaf_base[view_index(p, v)];

		for (int li = 0; li < list_length(v->leaves); li++)
			pg_atomic_write_u64(&par->next_block[base + li], 0);
	}
	for (int w = 0; w < n; w++)
		all[w] = dsa_get_address(par->area, par->bests[w]);

	for (uint32 i = 0; i <= v->mask; i++)
	{
		PitEntry   *e = PIT_ENTRY_AT(v, i);
		PitBest		run;

		if (e->count <= 0)
			continue;
		run.has = false;
		for (int j = e->start; j < e->start + e->count; j++)
		{
			PitSlot    *s = &v->slots[j];
			PitBest		cb = all[0][j];

			for (int w = 1; w < n; w++)
				if (all[w][j].has && (!cb.has || best_beats(v, &all[w][j], &cb, true, fetch, farg, va, na, vb, nb)))
					cb = all[w][j];
			if (cb.has && (!run.has || best_beats(v, &cb, &run, false, fetch, farg, va, na, vb, nb)))
				run = cb;
			s->best = NULL;
			s->has_best = run.has && pit_par_row_mine(p, p->batch_start + (uint64) s->row) &&
				(!v->fv->has_ttl || pit_within_ttl(p, v, s, pit_to_dom(run.e, v->event_type, v->dom_tz_event)));
			if (s->has_best)
			{
				s->best_e = run.e;
				s->best_c = run.c;
				s->best_cnull = run.cnull;
				s->best_tid = run.tid;
				s->best_leaf = run.leaf;
			}
		}
	}
	/* the others may still be reading this worker's bests */
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	par->combine_ms += INSTR_TIME_GET_MILLISEC(t1);
	INSTR_TIME_SET_CURRENT(t0);
	BarrierArriveAndWait(&par->h->barrier, PG_WAIT_EXTENSION);
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	par->wait_ms += INSTR_TIME_GET_MILLISEC(t1);
	dsa_free(par->area, mine);
	pfree(all);
	pfree(va);
	pfree(vb);
	pfree(na);
	pfree(nb);
}

/* ---------------------------------------------------------------------------------------
 * Worker: entry point and output
 * --------------------------------------------------------------------------------------- */

/*
 * A worker's output: rows of one chunk (consecutive spine ordinals) packed into messages of
 * up to PIT_PAR_MSG_BYTES, each the first row's ordinal, then the rows as minimal tuples, each
 * at a MAXALIGNed offset; a message of the ordinal PIT_PAR_END alone ends the worker's output.
 */
#define PIT_PAR_MSG_BYTES 32768

typedef struct PitSender
{
	PitPlan    *p;
	shm_mq_handle *mqh;
	char	   *buf;
	Size		cap;
	Size		len;			/* 0: no row buffered */
	uint64		next;			/* the ordinal the next buffered row must have */
} PitSender;

static void
flush_rows(PitSender *s)
{
	if (s->len == 0)
		return;
	if (shm_mq_send(s->mqh, s->len, s->buf, false, false) != SHM_MQ_SUCCESS)
		elog(ERROR, "the point-in-time join's leader stopped reading");
	s->len = 0;
}

/* Buffers one output row (formed in place), sending the message when its chunk or room ends. */
static void
send_row(void *arg, Datum *vals, bool *nulls)
{
	PitSender  *s = arg;
	uint64		ordinal = s->p->emit_ordinal;
	MinimalTuple tup = heap_form_minimal_tuple(s->p->desc, vals, nulls);
	Size		need = MAXALIGN(tup->t_len);

	if (s->len > 0 && (ordinal != s->next || s->len + need > s->cap))
		flush_rows(s);
	if (s->len == 0)
	{
		if (MAXALIGN(sizeof(uint64)) + need > s->cap)
		{
			s->cap = MAXALIGN(sizeof(uint64)) + need;
			s->buf = repalloc(s->buf, s->cap);
		}
		memcpy(s->buf, &ordinal, sizeof(uint64));
		s->len = MAXALIGN(sizeof(uint64));
	}
	memcpy(s->buf + s->len, tup, tup->t_len);
	s->len += need;
	s->next = ordinal + 1;
	pfree(tup);
	if (s->next % PIT_PAR_CHUNK_ROWS == 0)
		flush_rows(s);			/* the chunk's last row: the leader wants it now */
}

static void
send_end(PitSender *s)
{
	uint64		end = PIT_PAR_END;

	flush_rows(s);
	if (shm_mq_send(s->mqh, sizeof(end), &end, false, true) != SHM_MQ_SUCCESS)
		elog(ERROR, "the point-in-time join's leader stopped reading");
}

/* A parallel worker's entry point (by name, from CreateParallelContext). */
void
pit_parallel_main(dsm_segment *seg, shm_toc *toc)
{
	PitParHeader *h = shm_toc_lookup(toc, PIT_PAR_HEADER, false);
	char	   *features = shm_toc_lookup(toc, PIT_PAR_FEATURES, false);
	char	   *queues = shm_toc_lookup(toc, PIT_PAR_QUEUES, false);
	shm_mq	   *mq = (shm_mq *) (queues + (Size) ParallelWorkerNumber * PIT_PAR_QUEUE_SIZE);
	PitParShared par;
	PitSender	s;
	PitParOut  *out;
	ArrayType  *arr;
	uint32		nparts;
	int			nleaves = 0;

	shm_mq_set_sender(mq, MyProc);
	s.mqh = shm_mq_attach(mq, seg, NULL);
	/* the workers are as many as started, known to the leader after launching */
	while ((nparts = pg_atomic_read_u32(&h->nparts)) == 0)
	{
		CHECK_FOR_INTERRUPTS();
		pg_usleep(100L);
	}
	pg_read_barrier();
	if (nparts == PIT_PAR_QUIT || ParallelWorkerNumber >= (int) nparts)
	{
		shm_mq_detach(s.mqh);
		return;
	}
	arr = palloc(VARSIZE(features));
	memcpy(arr, features, VARSIZE(features));
	s.p = pit_plan_create(h->spine_relid, NULL, arr, h->spine_time, h->full_names, h->as_of_created);
	s.p->part_n = (int) nparts;
	s.p->part_i = ParallelWorkerNumber;
	s.p->checksum_on = h->checksum_on;
	s.p->checksum = 0;
	s.cap = PIT_PAR_MSG_BYTES;
	s.buf = palloc(s.cap);
	s.len = 0;
	par.h = h;
	par.area = dsa_attach_in_place(shm_toc_lookup(toc, PIT_PAR_DSA, false), seg);
	par.bests = shm_toc_lookup(toc, PIT_PAR_BESTS, false);
	par.next_block = shm_toc_lookup(toc, PIT_PAR_BLOCKS, false);
	par.leaf_base = palloc(sizeof(int) * Max(s.p->nviews, 1));
	par.wait_ms = par.combine_ms = 0;
	for (int i = 0; i < s.p->nviews; i++)
	{
		par.leaf_base[i] = nleaves;
		nleaves += list_length(s.p->views[i]->leaves);
	}
	if (nleaves != h->nleaves)
		elog(ERROR, "a point-in-time join worker found %d source relations, the leader %d", nleaves, h->nleaves);
	s.p->par = &par;
	pit_execute_part(s.p, send_row, &s);
	elog(DEBUG1, "point-in-time join worker %d: build %.0f ms, read sources %.0f ms (barriers %.0f ms, combine %.0f ms, winners %.0f ms), emit %.0f ms",
		 ParallelWorkerNumber, pit_last_stats.phase_ms[1], pit_last_stats.phase_ms[2], par.wait_ms, par.combine_ms,
		 pit_last_stats.winners_ms, pit_last_stats.phase_ms[4]);
	out = &((PitParOut *) shm_toc_lookup(toc, PIT_PAR_STATS, false))[ParallelWorkerNumber];
	out->stats = pit_last_stats;
	out->checksum = s.p->checksum;
	send_end(&s);
	shm_mq_detach(s.mqh);
	dsa_detach(par.area);
}

/* ---------------------------------------------------------------------------------------
 * Leader
 * --------------------------------------------------------------------------------------- */

/* A worker's next message: its first row's ordinal (PIT_PAR_END at the end) and its rows. */
static uint64
receive(shm_mq_handle *mqh, char **rows, Size *len)
{
	Size		n;
	void	   *data;
	uint64		ordinal;
	shm_mq_result r = shm_mq_receive(mqh, &n, &data, false);

	if (r == SHM_MQ_DETACHED)
		elog(ERROR, "a point-in-time join worker ended before sending all its rows");
	if (r != SHM_MQ_SUCCESS || n < sizeof(uint64))
		elog(ERROR, "unexpected message from a point-in-time join worker");
	memcpy(&ordinal, data, sizeof(uint64));
	if (ordinal != PIT_PAR_END && n < MAXALIGN(sizeof(uint64)) + MINIMAL_TUPLE_DATA_OFFSET)
		elog(ERROR, "unexpected message from a point-in-time join worker");
	*rows = (char *) data + MAXALIGN(sizeof(uint64));
	*len = ordinal == PIT_PAR_END ? 0 : n - MAXALIGN(sizeof(uint64));
	return ordinal;
}

/* A worker's figures into the join's: counts, memory and phase times summed, batch size the largest. */
static void
add_worker_stats(const PitStats *w)
{
	PitStats   *t = &pit_last_stats;

	t->batch_rows = Max(t->batch_rows, w->batch_rows);
	t->batches = Max(t->batches, w->batches);
	t->source_rows += w->source_rows;
	t->peak_bytes += w->peak_bytes;
	for (int i = 0; i < (int) lengthof(t->phase_ms); i++)
		t->phase_ms[i] += w->phase_ms[i];
	t->winners_ms += w->winners_ms;
	t->scanned_leaves = Max(t->scanned_leaves, w->scanned_leaves);
	t->probed_leaves = Max(t->probed_leaves, w->probed_leaves);
	t->partitions = Max(t->partitions, w->partitions);
	t->flushes += w->flushes;
	t->agg_splits += w->agg_splits;
	t->agg_partial += w->agg_partial;
}

/* The resolved references as a text[]: what every worker plans, whatever the registry holds. */
static ArrayType *
resolved_features(PitPlan *p)
{
	List	   *refs = pit_plan_feature_refs(p);
	Datum	   *d = palloc(sizeof(Datum) * Max(list_length(refs), 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, refs)
		d[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return construct_array(d, i, TEXTOID, -1, false, TYPALIGN_INT);
}

/* Ends the parallel context (workers told to leave when quit) and runs the join serially. */
static uint64
run_serially(PitPlan *p, ParallelContext *pcxt, PitParHeader *h, PitEmitFn emit, void *arg)
{
	if (h != NULL)
	{
		pg_memory_barrier();
		pg_atomic_write_u32(&h->nparts, PIT_PAR_QUIT);
		WaitForParallelWorkersToFinish(pcxt);
	}
	DestroyParallelContext(pcxt);
	ExitParallelMode();
	return pit_execute_part(p, emit, arg);
}

/* See pit_join_int.h. */
uint64
pit_parallel_execute(PitPlan *p, int nworkers, PitEmitFn emit, void *arg)
{
	ArrayType  *features = resolved_features(p);
	ParallelContext *pcxt;
	PitParHeader *h;
	char	   *queues;
	char	   *fcopy;
	PitParOut  *wout;
	shm_mq_handle **mqh;
	TupleTableSlot *slot;
	dsa_area   *area;
	void	   *area_space;
	dsa_pointer *bests;
	pg_atomic_uint64 *blocks;
	int			nleaves = 0;
	int			n;
	uint64		total = 0;

	for (int i = 0; i < p->nviews; i++)
		nleaves += list_length(p->views[i]->leaves);
	memset(&pit_last_stats, 0, sizeof(pit_last_stats));
	EnterParallelMode();
	pcxt = CreateParallelContext("feature_store", "pit_parallel_main", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(PitParHeader));
	shm_toc_estimate_chunk(&pcxt->estimator, VARSIZE(features));
	shm_toc_estimate_chunk(&pcxt->estimator, PIT_PAR_QUEUE_SIZE * nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(PitParOut) * nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, dsa_minimum_size());
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(dsa_pointer) * nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(pg_atomic_uint64) * Max(nleaves, 1));
	shm_toc_estimate_keys(&pcxt->estimator, 7);
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
		return run_serially(p, pcxt, NULL, emit, arg);	/* no dynamic shared memory */
	h = shm_toc_allocate(pcxt->toc, sizeof(PitParHeader));
	h->spine_relid = p->spine_relid;
	h->full_names = p->full_names;
	h->as_of_created = p->as_of_created;
	h->checksum_on = p->checksum_on;
	h->nleaves = nleaves;
	strlcpy(h->spine_time, NameStr(TupleDescAttr(p->spine_desc, p->spine_ts)->attname), NAMEDATALEN);
	pg_atomic_init_u32(&h->nparts, 0);
	shm_toc_insert(pcxt->toc, PIT_PAR_HEADER, h);
	fcopy = shm_toc_allocate(pcxt->toc, VARSIZE(features));
	memcpy(fcopy, features, VARSIZE(features));
	shm_toc_insert(pcxt->toc, PIT_PAR_FEATURES, fcopy);
	wout = shm_toc_allocate(pcxt->toc, sizeof(PitParOut) * nworkers);
	memset(wout, 0, sizeof(PitParOut) * nworkers);
	shm_toc_insert(pcxt->toc, PIT_PAR_STATS, wout);
	area_space = shm_toc_allocate(pcxt->toc, dsa_minimum_size());
	shm_toc_insert(pcxt->toc, PIT_PAR_DSA, area_space);
	area = dsa_create_in_place(area_space, dsa_minimum_size(), LWTRANCHE_PARALLEL_QUERY_DSA, pcxt->seg);
	bests = shm_toc_allocate(pcxt->toc, sizeof(dsa_pointer) * nworkers);
	shm_toc_insert(pcxt->toc, PIT_PAR_BESTS, bests);
	blocks = shm_toc_allocate(pcxt->toc, sizeof(pg_atomic_uint64) * Max(nleaves, 1));
	for (int i = 0; i < nleaves; i++)
		pg_atomic_init_u64(&blocks[i], 0);
	shm_toc_insert(pcxt->toc, PIT_PAR_BLOCKS, blocks);
	queues = shm_toc_allocate(pcxt->toc, PIT_PAR_QUEUE_SIZE * nworkers);
	shm_toc_insert(pcxt->toc, PIT_PAR_QUEUES, queues);
	mqh = palloc0(sizeof(shm_mq_handle *) * nworkers);
	for (int i = 0; i < nworkers; i++)
	{
		shm_mq	   *mq = shm_mq_create(queues + (Size) i * PIT_PAR_QUEUE_SIZE, PIT_PAR_QUEUE_SIZE);

		shm_mq_set_receiver(mq, MyProc);
	}
	LaunchParallelWorkers(pcxt);
	n = pcxt->nworkers_launched;
	if (n < 2)
	{
		/* fewer than two worker slots free: serially */
		dsa_detach(area);
		return run_serially(p, pcxt, n > 0 ? h : NULL, emit, arg);
	}
	for (int i = 0; i < n; i++)
		mqh[i] = shm_mq_attach((shm_mq *) (queues + (Size) i * PIT_PAR_QUEUE_SIZE), pcxt->seg,
							   pcxt->worker[i].bgwhandle);
	BarrierInit(&h->barrier, n);
	pg_memory_barrier();
	pg_atomic_write_u32(&h->nparts, (uint32) n);

	/*
	 * Rows in spine order: each from the worker that owns its chunk, which sends its rows in
	 * spine order; a worker's PIT_PAR_END where a row is due means the spine has ended.
	 */
	slot = MakeSingleTupleTableSlot(p->desc, &TTSOpsMinimalTuple);
	for (;;)
	{
		int			w = (int) ((total / PIT_PAR_CHUNK_ROWS) % (uint64) n);
		char	   *rows;
		Size		len;
		uint64		ordinal = receive(mqh[w], &rows, &len);

		if (ordinal == PIT_PAR_END)
		{
			for (int i = 0; i < n; i++)
				if (i != w && receive(mqh[i], &rows, &len) != PIT_PAR_END)
					elog(ERROR, "a point-in-time join worker sent a row after the spine's end");
			break;
		}
		if (ordinal != total)
			elog(ERROR, "a point-in-time join worker sent spine row %llu where row %llu was due",
				 (unsigned long long) ordinal, (unsigned long long) total);
		for (Size off = 0; off < len;)
		{
			MinimalTuple tup = (MinimalTuple) (rows + off);

			if (len - off < MINIMAL_TUPLE_DATA_OFFSET || tup->t_len > len - off)
				elog(ERROR, "unexpected message from a point-in-time join worker");
			off += MAXALIGN(tup->t_len);
			ExecStoreMinimalTuple(tup, slot, false);
			if (p->emit_slot != NULL)
				p->emit_slot(arg, slot);
			else
			{
				slot_getallattrs(slot);
				emit(arg, slot->tts_values, slot->tts_isnull);
			}
			ExecClearTuple(slot);
			total++;
		}
	}
	WaitForParallelWorkersToFinish(pcxt);
	for (int i = 0; i < n; i++)
	{
		add_worker_stats(&wout[i].stats);
		p->checksum += wout[i].checksum;
	}
	dsa_detach(area);
	DestroyParallelContext(pcxt);
	ExitParallelMode();
	ExecDropSingleTupleTableSlot(slot);
	pit_last_stats.spine_rows = total;
	pit_last_stats.workers = n;
	return total;
}
