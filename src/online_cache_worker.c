/*
 * online_cache_worker.c — what the online cache keeps for its background worker
 * (online_worker.c): which views need a load, the worker's state and latch, and the figures of
 * fs_stat_online. The layout is in online_cache_int.h.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "online_cache.h"
#include "online_cache_int.h"

/*
 * Worker: has a commit changed the view since its last complete load (and should the worker
 * reload it: always the first time, later only with reload_after_commit)? Returns the generation.
 */
bool
fs_cache_view_needs_load(int slot, uint64 *gen)
{
	bool		needs;

	LWLockAcquire(fs_cache_ctl->viewlock, LW_SHARED);
	*gen = pg_atomic_read_u64(&fs_cache_ctl->views[slot].gen);
	needs = fs_cache_ctl->views[slot].loaded_gen != *gen &&
		(fs_reload_after_commit || fs_cache_ctl->views[slot].loaded_gen == 0);
	LWLockRelease(fs_cache_ctl->viewlock);
	pg_memory_barrier();
	return needs;
}

/* Worker: records a complete load under generation gen. */
void
fs_cache_view_loaded(int slot, uint64 gen)
{
	LWLockAcquire(fs_cache_ctl->viewlock, LW_EXCLUSIVE);
	fs_cache_ctl->views[slot].loaded_gen = gen;
	LWLockRelease(fs_cache_ctl->viewlock);
}

/* Worker state for fs_stat_online; error != NULL records the last error and its time. */
void
fs_cache_set_worker(int pid, FsWorkerState state, const char *error)
{
	if (fs_cache_ctl == NULL)
		return;
	SpinLockAcquire(&fs_cache_ctl->mutex);
	fs_cache_ctl->worker_pid = pid;
	fs_cache_ctl->worker_state = state;
	if (pid == MyProcPid && OidIsValid(MyDatabaseId))
		fs_cache_ctl->dboid = MyDatabaseId;
	if (error)
	{
		strlcpy(fs_cache_ctl->last_error, error, sizeof(fs_cache_ctl->last_error));
		fs_cache_ctl->last_error_at = GetCurrentTimestamp();
		fs_cache_ctl->worker_errors++;
	}
	SpinLockRelease(&fs_cache_ctl->mutex);
}

/* The latch committers set so that the worker reloads right after a commit. */
void
fs_cache_set_worker_latch(void *latch)
{
	SpinLockAcquire(&fs_cache_ctl->mutex);
	fs_cache_ctl->worker_latch = (Latch *) latch;
	SpinLockRelease(&fs_cache_ctl->mutex);
}

/* Called at commit by writers: wake the worker (never blocks, never errors). */
void
fs_cache_wake_worker(void)
{
	Latch	   *l;

	if (fs_cache_ctl == NULL)
		return;
	SpinLockAcquire(&fs_cache_ctl->mutex);
	l = fs_cache_ctl->worker_latch;
	SpinLockRelease(&fs_cache_ctl->mutex);
	if (l)
		SetLatch(l);
}

/* A consistent-enough copy of counters and a count of live entries per view (unlocked scan). */
void
fs_cache_stats(FsCacheStats *out)
{
	memset(out, 0, sizeof(*out));
	if (fs_cache_ctl == NULL)
		return;
	out->capacity_entries = fs_cache_ctl->nentries;
	/* an entry's memory includes its share of the bucket header */
	out->entry_bytes = sizeof(FsEntry) + sizeof(FsBucket) / FS_CACHE_WAYS;
	out->capacity_bytes = fs_cache_ctl->nentries * out->entry_bytes;
	LWLockAcquire(fs_cache_ctl->viewlock, LW_SHARED);
	for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
	{
		FsCacheViewStats *v = &out->views[i];

		v->dboid = fs_cache_ctl->views[i].dboid;
		v->view_id = fs_cache_ctl->views[i].view_id;
		for (int c = 0; c < FS_NCOUNTERS; c++)
			v->counters[c] = pg_atomic_read_u64(&fs_cache_ctl->views[i].ctr[c]);
	}
	LWLockRelease(fs_cache_ctl->viewlock);
	out->nviews = FS_CACHE_MAX_VIEWS;
	for (int64 i = 0; i < fs_cache_ctl->nentries; i++)
	{
		FsEntry    *e = &fs_cache_entries[i];

		if (fs_cache_entry_is_live(e))
		{
			out->views[e->slot].entries++;
			out->views[e->slot].bytes += out->entry_bytes;
		}
	}
	SpinLockAcquire(&fs_cache_ctl->mutex);
	out->worker_pid = fs_cache_ctl->worker_pid;
	out->worker_state = fs_cache_ctl->worker_state;
	strlcpy(out->last_error, fs_cache_ctl->last_error, sizeof(out->last_error));
	out->last_error_at = fs_cache_ctl->last_error_at;
	out->worker_errors = fs_cache_ctl->worker_errors;
	SpinLockRelease(&fs_cache_ctl->mutex);
}

/* The worker's last recorded state (NOT_RUNNING without the cache). */
FsWorkerState
fs_cache_worker_state(void)
{
	FsWorkerState s;

	if (fs_cache_ctl == NULL)
		return FS_WORKER_NOT_RUNNING;
	SpinLockAcquire(&fs_cache_ctl->mutex);
	s = fs_cache_ctl->worker_state;
	SpinLockRelease(&fs_cache_ctl->mutex);
	return s;
}
