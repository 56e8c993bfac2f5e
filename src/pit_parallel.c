/*
 * pit_parallel.c — the point-in-time join on several cores.
 *
 * The spine's rows are cut into one part per parallel worker by the hash of their first view's
 * entity key (pit_spine.c row_part), so that the workers' batches hold disjoint sets of keys:
 * each worker plans the same join (the leader's resolved feature versions, under the leader's
 * snapshot and user, which PostgreSQL's ParallelContext restores) and runs the serial join over
 * its part, reading the whole history but probing, keeping and emitting only its keys. Every
 * output row goes to the leader through the worker's shm_mq, tagged with its spine ordinal; each
 * worker emits its rows in spine order, so the leader merges the streams by ordinal and emits the
 * rows in spine order, exactly as the serial join would. Errors in a worker are raised in the
 * leader by the parallel context.
 *
 * Only where a worker can read what the leader reads: a spine table that is not temporary (a
 * spine query runs once, in the leader), sources read through the table AM (no SPI: views and
 * row-level security stay in the leader), latest-value views. The number of workers is
 * max_parallel_workers_per_gather, for spines of at least feature_store.parallel_join_min_rows,
 * when feature_store.parallel_join is on. It is off by default: every worker reads the whole
 * spine (twice) and the whole history, and only the key probes, winners and emitted rows are
 * split, so on this project's 2-core machine the parallel join is slower than the serial one.
 * A split of the history by block range needs the batch's slots in shared memory: not done.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
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
#define PIT_PAR_QUEUE_SIZE	((Size) 1024 * 1024)

static bool parallel_join = false;
static int	parallel_min_rows = 100000;

typedef struct PitParHeader
{
	Oid			spine_relid;
	bool		full_names;
	bool		as_of_created;
	char		spine_time[NAMEDATALEN];
	pg_atomic_uint32 nparts;	/* 0 until the leader knows how many workers started */
} PitParHeader;

PGDLLEXPORT void pit_parallel_main(dsm_segment *seg, shm_toc *toc);

void
pit_parallel_init(void)
{
	DefineCustomBoolVariable("feature_store.parallel_join",
							 "Lets the point-in-time join split large spines across parallel workers.",
							 "Off by default: each worker reads the whole spine and history, so on few cores the "
							 "parallel join is slower than the serial one (see docs/benchmarks.md).",
							 &parallel_join, false,
							 PGC_USERSET, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("feature_store.parallel_join_min_rows",
							"Smallest spine the point-in-time join splits across parallel workers.",
							"Up to max_parallel_workers_per_gather workers join disjoint key-hash parts of the spine.",
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
	if (tuples < parallel_min_rows)
		return 0;
	return max_parallel_workers_per_gather;
}

/* ---------------------------------------------------------------------------------------
 * Worker
 * --------------------------------------------------------------------------------------- */

typedef struct PitSender
{
	PitPlan    *p;
	shm_mq_handle *mqh;
} PitSender;

/* Sends one output row, with its spine ordinal in front. */
static void
send_row(void *arg, Datum *vals, bool *nulls)
{
	PitSender  *s = arg;
	MinimalTuple tup = heap_form_minimal_tuple(s->p->desc, vals, nulls);
	uint64		ordinal = s->p->emit_ordinal;
	shm_mq_iovec iov[2] = {{(const char *) &ordinal, sizeof(ordinal)}, {(const char *) tup, tup->t_len}};

	if (shm_mq_sendv(s->mqh, iov, 2, false, false) != SHM_MQ_SUCCESS)
		elog(ERROR, "the point-in-time join's leader stopped reading");
	pfree(tup);
}

/* A parallel worker's entry point (by name, from CreateParallelContext). */
void
pit_parallel_main(dsm_segment *seg, shm_toc *toc)
{
	PitParHeader *h = shm_toc_lookup(toc, PIT_PAR_HEADER, false);
	char	   *features = shm_toc_lookup(toc, PIT_PAR_FEATURES, false);
	char	   *queues = shm_toc_lookup(toc, PIT_PAR_QUEUES, false);
	shm_mq	   *mq = (shm_mq *) (queues + (Size) ParallelWorkerNumber * PIT_PAR_QUEUE_SIZE);
	PitSender	s;
	ArrayType  *arr;
	int			nparts;

	shm_mq_set_sender(mq, MyProc);
	s.mqh = shm_mq_attach(mq, seg, NULL);
	/* the parts are as many as the workers that started, known to the leader after launching */
	while ((nparts = (int) pg_atomic_read_u32(&h->nparts)) == 0)
	{
		CHECK_FOR_INTERRUPTS();
		pg_usleep(100L);
	}
	if (ParallelWorkerNumber >= nparts)
		return;
	arr = palloc(VARSIZE(features));
	memcpy(arr, features, VARSIZE(features));
	s.p = pit_plan_create(h->spine_relid, NULL, arr, h->spine_time, h->full_names, h->as_of_created);
	s.p->part_n = nparts;
	s.p->part_i = ParallelWorkerNumber;
	pit_execute_part(s.p, send_row, &s);
	((PitStats *) shm_toc_lookup(toc, PIT_PAR_STATS, false))[ParallelWorkerNumber] = pit_last_stats;
	shm_mq_detach(s.mqh);
}

/* ---------------------------------------------------------------------------------------
 * Leader
 * --------------------------------------------------------------------------------------- */

typedef struct PitStream
{
	shm_mq_handle *mqh;
	bool		done;
	uint64		ordinal;
	MinimalTuple tup;			/* valid until the next receive from this stream */
} PitStream;

/* The stream's next row, or done. */
static void
stream_next(PitStream *st)
{
	Size		n;
	void	   *data;
	shm_mq_result r = shm_mq_receive(st->mqh, &n, &data, false);

	if (r == SHM_MQ_DETACHED)
	{
		st->done = true;
		return;
	}
	if (r != SHM_MQ_SUCCESS || n < sizeof(uint64) + MINIMAL_TUPLE_DATA_OFFSET)
		elog(ERROR, "unexpected message from a point-in-time join worker");
	memcpy(&st->ordinal, data, sizeof(uint64));
	st->tup = (MinimalTuple) ((char *) data + sizeof(uint64));
}

/* A worker's figures into the join's: counts, memory and phase times summed, batch size the largest. */
static void
add_worker_stats(const PitStats *w)
{
	PitStats   *t = &pit_last_stats;

	t->batch_rows = Max(t->batch_rows, w->batch_rows);
	t->batches += w->batches;
	t->source_rows += w->source_rows;
	t->peak_bytes += w->peak_bytes;
	for (int i = 0; i < (int) lengthof(t->phase_ms); i++)
		t->phase_ms[i] += w->phase_ms[i];
	t->winners_ms += w->winners_ms;
	t->scanned_leaves += w->scanned_leaves;
	t->probed_leaves += w->probed_leaves;
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

/* See pit_join_int.h. */
uint64
pit_parallel_execute(PitPlan *p, int nworkers, PitEmitFn emit, void *arg)
{
	ArrayType  *features = resolved_features(p);
	ParallelContext *pcxt;
	PitParHeader *h;
	char	   *queues;
	char	   *fcopy;
	PitStats   *wstats;
	PitStream  *st;
	TupleTableSlot *slot;
	MemoryContext rowcxt;
	int			n;
	uint64		total = 0;

	memset(&pit_last_stats, 0, sizeof(pit_last_stats));
	EnterParallelMode();
	pcxt = CreateParallelContext("feature_store", "pit_parallel_main", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(PitParHeader));
	shm_toc_estimate_chunk(&pcxt->estimator, VARSIZE(features));
	shm_toc_estimate_chunk(&pcxt->estimator, PIT_PAR_QUEUE_SIZE * nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(PitStats) * nworkers);
	shm_toc_estimate_keys(&pcxt->estimator, 4);
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		/* no dynamic shared memory: serially */
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return pit_execute_part(p, emit, arg);
	}
	h = shm_toc_allocate(pcxt->toc, sizeof(PitParHeader));
	h->spine_relid = p->spine_relid;
	h->full_names = p->full_names;
	h->as_of_created = p->as_of_created;
	strlcpy(h->spine_time, NameStr(TupleDescAttr(p->spine_desc, p->spine_ts)->attname), NAMEDATALEN);
	pg_atomic_init_u32(&h->nparts, 0);
	shm_toc_insert(pcxt->toc, PIT_PAR_HEADER, h);
	fcopy = shm_toc_allocate(pcxt->toc, VARSIZE(features));
	memcpy(fcopy, features, VARSIZE(features));
	shm_toc_insert(pcxt->toc, PIT_PAR_FEATURES, fcopy);
	wstats = shm_toc_allocate(pcxt->toc, sizeof(PitStats) * nworkers);
	memset(wstats, 0, sizeof(PitStats) * nworkers);
	shm_toc_insert(pcxt->toc, PIT_PAR_STATS, wstats);
	queues = shm_toc_allocate(pcxt->toc, PIT_PAR_QUEUE_SIZE * nworkers);
	shm_toc_insert(pcxt->toc, PIT_PAR_QUEUES, queues);
	st = palloc0(sizeof(PitStream) * nworkers);
	for (int i = 0; i < nworkers; i++)
	{
		shm_mq	   *mq = shm_mq_create(queues + (Size) i * PIT_PAR_QUEUE_SIZE, PIT_PAR_QUEUE_SIZE);

		shm_mq_set_receiver(mq, MyProc);
	}
	LaunchParallelWorkers(pcxt);
	n = pcxt->nworkers_launched;
	if (n == 0)
	{
		/* no worker slot free: serially */
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return pit_execute_part(p, emit, arg);
	}
	for (int i = 0; i < n; i++)
		st[i].mqh = shm_mq_attach((shm_mq *) (queues + (Size) i * PIT_PAR_QUEUE_SIZE), pcxt->seg,
								  pcxt->worker[i].bgwhandle);
	pg_atomic_write_u32(&h->nparts, (uint32) n);

	/* merge the workers' streams by spine ordinal */
	slot = MakeSingleTupleTableSlot(p->desc, &TTSOpsMinimalTuple);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "pit join parallel row", ALLOCSET_SMALL_SIZES);
	for (int i = 0; i < n; i++)
		stream_next(&st[i]);
	for (;;)
	{
		int			best = -1;

		for (int i = 0; i < n; i++)
			if (!st[i].done && (best < 0 || st[i].ordinal < st[best].ordinal))
				best = i;
		if (best < 0)
			break;
		ExecStoreMinimalTuple(st[best].tup, slot, false);
		slot_getallattrs(slot);
		if (p->checksum_on)
		{
			MemoryContext o = MemoryContextSwitchTo(rowcxt);

			p->checksum += pit_spine_row_hash(p, slot->tts_values, slot->tts_isnull);
			MemoryContextSwitchTo(o);
			MemoryContextReset(rowcxt);
		}
		emit(arg, slot->tts_values, slot->tts_isnull);
		ExecClearTuple(slot);
		total++;
		stream_next(&st[best]);
	}
	WaitForParallelWorkersToFinish(pcxt);
	for (int i = 0; i < n; i++)
		add_worker_stats(&wstats[i]);
	DestroyParallelContext(pcxt);
	ExitParallelMode();
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(rowcxt);
	pit_last_stats.spine_rows = total;
	pit_last_stats.workers = n;
	return total;
}
