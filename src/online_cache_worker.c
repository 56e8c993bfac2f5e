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

int			fs_cache_my_db = -1;

/*
 * Worker state for fs_stat_online; error != NULL records the last error and its time. In a
 * database's worker (fs_cache_my_db >= 0) its database entry's, in the launcher the launcher's.
 */
void
fs_cache_set_worker(int pid, FsWorkerState state, const char *error)
{
	int		   *p_pid;
	FsWorkerState *p_state;
	char	   *p_err;
	TimestampTz *p_at;
	int64	   *p_n;

	if (fs_cache_ctl == NULL)
		return;
	SpinLockAcquire(&fs_cache_ctl->mutex);
	if (fs_cache_my_db >= 0)
	{
		FsCacheDb  *d = &fs_cache_ctl->dbs[fs_cache_my_db];

		p_pid = &d->worker_pid, p_state = &d->worker_state, p_err = d->last_error;
		p_at = &d->last_error_at, p_n = &d->worker_errors;
	}
	else
	{
		p_pid = &fs_cache_ctl->worker_pid, p_state = &fs_cache_ctl->worker_state;
		p_err = fs_cache_ctl->last_error, p_at = &fs_cache_ctl->last_error_at;
		p_n = &fs_cache_ctl->worker_errors;
	}
	*p_pid = pid;
	*p_state = state;
	if (error)
	{
		strlcpy(p_err, error, sizeof(fs_cache_ctl->last_error));
		*p_at = GetCurrentTimestamp();
		(*p_n)++;
	}
	SpinLockRelease(&fs_cache_ctl->mutex);
}

/* The latch committers (worker) or CREATE EXTENSION (launcher) set to wake this process. */
void
fs_cache_set_worker_latch(void *latch)
{
	SpinLockAcquire(&fs_cache_ctl->mutex);
	if (fs_cache_my_db >= 0)
		fs_cache_ctl->dbs[fs_cache_my_db].worker_latch = (Latch *) latch;
	else
		fs_cache_ctl->worker_latch = (Latch *) latch;
	SpinLockRelease(&fs_cache_ctl->mutex);
}

/*
 * Called at commit by writers: wake the worker of this database (never blocks, never errors,
 * reads no catalog).
 */
void
fs_cache_wake_worker(void)
{
	Latch	   *l = NULL;

	if (fs_cache_ctl == NULL)
		return;
	SpinLockAcquire(&fs_cache_ctl->mutex);
	for (int i = 0; i < FS_CACHE_MAX_DBS; i++)
		if (fs_cache_ctl->dbs[i].dboid == MyDatabaseId && OidIsValid(MyDatabaseId))
			l = fs_cache_ctl->dbs[i].worker_latch;
	SpinLockRelease(&fs_cache_ctl->mutex);
	if (l)
		SetLatch(l);
}

/* Wakes the cache worker of database dboid, or of every database (InvalidOid): reload. */
void
fs_cache_wake_db_worker(Oid dboid)
{
	Latch	   *l[FS_CACHE_MAX_DBS];
	int			n = 0;

	if (fs_cache_ctl == NULL)
		return;
	SpinLockAcquire(&fs_cache_ctl->mutex);
	for (int i = 0; i < FS_CACHE_MAX_DBS; i++)
		if (OidIsValid(fs_cache_ctl->dbs[i].dboid) && fs_cache_ctl->dbs[i].worker_latch &&
			(!OidIsValid(dboid) || fs_cache_ctl->dbs[i].dboid == dboid))
			l[n++] = fs_cache_ctl->dbs[i].worker_latch;
	SpinLockRelease(&fs_cache_ctl->mutex);
	for (int i = 0; i < n; i++)
		SetLatch(l[i]);
}

/* Wakes the launcher (a database gained the extension, or a worker is to be stopped). */
void
fs_cache_wake_launcher(void)
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

/* The entry of a database in the table, -1 when it has none. */
int
fs_cache_db_lookup(Oid dboid)
{
	int			idx = -1;

	SpinLockAcquire(&fs_cache_ctl->mutex);
	for (int i = 0; i < FS_CACHE_MAX_DBS && idx < 0; i++)
		if (fs_cache_ctl->dbs[i].dboid == dboid)
			idx = i;
	SpinLockRelease(&fs_cache_ctl->mutex);
	return idx;
}

/*
 * Launcher, or a backend of a database to serve that has no entry yet: the database's entry,
 * new (not served yet, extension unknown) unless it has one; -1 when the table is full.
 */
int
fs_cache_db_add(Oid dboid)
{
	int			idx = -1;

	SpinLockAcquire(&fs_cache_ctl->mutex);
	for (int i = 0; i < FS_CACHE_MAX_DBS && idx < 0; i++)
		if (fs_cache_ctl->dbs[i].dboid == dboid)
			idx = i;
	for (int i = 0; i < FS_CACHE_MAX_DBS && idx < 0; i++)
		if (fs_cache_ctl->dbs[i].dboid == InvalidOid)
		{
			FsCacheDb  *d = &fs_cache_ctl->dbs[i];

			idx = i;
			d->dboid = dboid;
			d->need_probe = false;
			d->ext_absent = false;
			d->stop = false;
			d->worker_pid = 0;
			d->worker_state = FS_WORKER_NOT_RUNNING;
			d->worker_latch = NULL;
			d->last_error[0] = '\0';
			d->last_error_at = 0;
			d->worker_errors = 0;
		}
	SpinLockRelease(&fs_cache_ctl->mutex);
	return idx;
}

/*
 * Frees every view slot of a database and clears its entries from the cache, viewlock held
 * exclusive by the caller for the slots; the sweep happens after the caller releases it.
 */
static void
free_db_slots(Oid dboid, int32 *freed_views, int *freed_slots, int *nfreed)
{
	*nfreed = 0;
	for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
	{
		FsViewSlot *s = &fs_cache_ctl->views[i];

		if (s->view_id != 0 && s->dboid == dboid)
		{
			freed_views[*nfreed] = s->view_id;
			freed_slots[*nfreed] = i;
			(*nfreed)++;
			s->view_id = 0;
		}
	}
}

/*
 * Worker (on: the extension is there; off: it is gone) or launcher (off: the database is gone
 * or no longer listed): switches the cache on or off for the database. Either way every view
 * slot of the database is freed first, under the same exclusive viewlock, so that no entry
 * written while the switch was off (when writers published nothing) can ever be served after
 * it is on again; then the freed views' entries are cleared, so their memory is free at once.
 */
void
fs_cache_db_serve(int idx, bool on)
{
	FsCacheDb  *d = &fs_cache_ctl->dbs[idx];
	int32		views[FS_CACHE_MAX_VIEWS];
	int			slots[FS_CACHE_MAX_VIEWS];
	int			n;
	bool		was;

	LWLockAcquire(fs_cache_ctl->viewlock, LW_EXCLUSIVE);
	was = pg_atomic_read_u32(&d->served) != 0;
	if (was == on)
	{
		LWLockRelease(fs_cache_ctl->viewlock);
		return;
	}
	free_db_slots(d->dboid, views, slots, &n);
	pg_atomic_write_u32(&d->served, on ? 1 : 0);
	fs_cache_ctl->nserved += on ? 1 : -1;
	LWLockRelease(fs_cache_ctl->viewlock);
	for (int i = 0; i < n; i++)
		fs_cache_sweep_view(slots[i], views[i]);
}

/* Launcher: the database is gone or no longer served; its entry becomes free. */
void
fs_cache_db_release(int idx)
{
	fs_cache_db_serve(idx, false);
	SpinLockAcquire(&fs_cache_ctl->mutex);
	fs_cache_ctl->dbs[idx].dboid = InvalidOid;
	fs_cache_ctl->dbs[idx].worker_latch = NULL;
	SpinLockRelease(&fs_cache_ctl->mutex);
}

/*
 * Worker, at start: takes the entry for this process if it still names the database and no
 * other worker holds it (a worker started twice exits at once).
 */
bool
fs_cache_db_claim(int idx, Oid dboid)
{
	bool		ok;

	SpinLockAcquire(&fs_cache_ctl->mutex);
	ok = fs_cache_ctl->dbs[idx].dboid == dboid && fs_cache_ctl->dbs[idx].worker_pid == 0;
	if (ok)
	{
		fs_cache_ctl->dbs[idx].worker_pid = MyProcPid;
		fs_cache_ctl->dbs[idx].stop = false;
	}
	SpinLockRelease(&fs_cache_ctl->mutex);
	return ok;
}

/* Launcher: a copy of an entry's flags. */
void
fs_cache_db_flags(int idx, Oid *dboid, bool *need_probe, bool *ext_absent, int *pid)
{
	SpinLockAcquire(&fs_cache_ctl->mutex);
	*dboid = fs_cache_ctl->dbs[idx].dboid;
	*need_probe = fs_cache_ctl->dbs[idx].need_probe;
	*ext_absent = fs_cache_ctl->dbs[idx].ext_absent;
	*pid = fs_cache_ctl->dbs[idx].worker_pid;
	SpinLockRelease(&fs_cache_ctl->mutex);
}

/* Sets an entry's flags (-1: leave it); a stop request also wakes the worker. */
void
fs_cache_db_set_flags(int idx, int need_probe, int ext_absent, int stop)
{
	Latch	   *l = NULL;

	SpinLockAcquire(&fs_cache_ctl->mutex);
	if (need_probe >= 0)
		fs_cache_ctl->dbs[idx].need_probe = need_probe;
	if (ext_absent >= 0)
		fs_cache_ctl->dbs[idx].ext_absent = ext_absent;
	if (stop >= 0)
	{
		fs_cache_ctl->dbs[idx].stop = stop;
		l = fs_cache_ctl->dbs[idx].worker_latch;
	}
	SpinLockRelease(&fs_cache_ctl->mutex);
	if (stop > 0 && l)
		SetLatch(l);
}

bool
fs_cache_db_stop_requested(int idx)
{
	bool		stop;

	SpinLockAcquire(&fs_cache_ctl->mutex);
	stop = fs_cache_ctl->dbs[idx].stop;
	SpinLockRelease(&fs_cache_ctl->mutex);
	return stop;
}

/*
 * At the commit of a CREATE EXTENSION feature_store: the launcher (re)starts the database's
 * worker, which finds the extension and serves the database. Never errors (commit callback).
 */
void
fs_cache_db_request_probe(Oid dboid)
{
	bool		found = false;

	if (fs_cache_ctl == NULL)
		return;
	SpinLockAcquire(&fs_cache_ctl->mutex);
	for (int i = 0; i < FS_CACHE_MAX_DBS; i++)
		if (fs_cache_ctl->dbs[i].dboid == dboid)
		{
			fs_cache_ctl->dbs[i].need_probe = true;
			found = true;
		}
	if (!found)
		fs_cache_ctl->rescan = true;
	SpinLockRelease(&fs_cache_ctl->mutex);
	fs_cache_wake_launcher();
}

/* A consistent-enough copy of counters and a count of live entries per view (page by page). */
void
fs_cache_stats(FsCacheStats *out)
{
	memset(out, 0, sizeof(*out));
	if (fs_cache_ctl == NULL)
		return;
	out->capacity_bytes = fs_cache_ctl->npages * FS_PAGE;
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
	/*
	 * Bytes in use: each live entry's units plus its slot's share of its page's index (header
	 * line and slot arrays: FS_PAGE_INDEX / FS_PAGE_SLOTS). Dead entries, free space and free
	 * slots are capacity, not use.
	 */
	for (int64 p = 0; p < fs_cache_ctl->npages; p++)
	{
		FsPage	   *pg = &fs_cache_pages[p];

		/* shared: a compaction moving entries must not be seen half done */
		LWLockAcquire(fs_page_lock(p), LW_SHARED);
		for (int i = 0; i < FS_PAGE_SLOTS; i++)
		{
			FsEntry    *e;

			if (!fs_cache_entry_is_live(pg, i))
				continue;
			e = fs_page_entry(pg, i);
			out->views[e->slot].entries++;
			out->views[e->slot].bytes += fs_entry_units(e) * FS_UNIT;
		}
		LWLockRelease(fs_page_lock(p));
	}
	/* the index shares, rounded once per view */
	for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
		out->views[i].bytes += (out->views[i].entries * FS_PAGE_INDEX + FS_PAGE_SLOTS / 2) / FS_PAGE_SLOTS;
	/* this database's worker; in a database without one, the launcher */
	SpinLockAcquire(&fs_cache_ctl->mutex);
	out->worker_pid = fs_cache_ctl->worker_pid;
	out->worker_state = fs_cache_ctl->worker_state;
	strlcpy(out->last_error, fs_cache_ctl->last_error, sizeof(out->last_error));
	out->last_error_at = fs_cache_ctl->last_error_at;
	out->worker_errors = fs_cache_ctl->worker_errors;
	for (int i = 0; i < FS_CACHE_MAX_DBS; i++)
	{
		FsCacheDb  *d = &fs_cache_ctl->dbs[i];

		if (d->dboid != MyDatabaseId || !OidIsValid(MyDatabaseId))
			continue;
		out->worker_pid = d->worker_pid;
		out->worker_state = d->ext_absent && d->worker_pid == 0 ? FS_WORKER_WAITING_EXTENSION :
			d->worker_pid == 0 && d->worker_state != FS_WORKER_BACKOFF ? FS_WORKER_STARTING : d->worker_state;
		strlcpy(out->last_error, d->last_error, sizeof(out->last_error));
		out->last_error_at = d->last_error_at;
		out->worker_errors = d->worker_errors;
	}
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
	s = fs_cache_my_db >= 0 ? fs_cache_ctl->dbs[fs_cache_my_db].worker_state : fs_cache_ctl->worker_state;
	SpinLockRelease(&fs_cache_ctl->mutex);
	return s;
}
