/*
 * online_wal.c — the online cache on hot standbys: invalidations travel in WAL.
 *
 * On a primary, a writer publishes new cache generations in its commit callback, after its
 * commit became visible (online_cache.c). A standby runs no commit callbacks: its commits become
 * visible when the startup process replays their commit records. So each writer also logs, just
 * before its commit record, one record of this extension's resource manager (RegisterCustomRmgr,
 * PostgreSQL 15's custom WAL resource managers: the one way to have the startup process run our
 * code in WAL order, with nothing but WAL between primary and standby) naming its transaction
 * and what it changed: whole views, or the cache hashes of keys.
 *
 * THE STANDBY PROTOCOL
 *  Redo:    the record's keys and views become PENDING (counters in shared memory, indexed by
 *           key hash and by view) and the record joins a ring of pending transactions. It comes
 *           before the commit record in WAL, hence is replayed before the commit is visible.
 *  Reader:  reads the pending counters of its key, its view and its database BEFORE its W
 *           (online_cache.c, fs_cache_want): anything pending, and W is "infinite": no entry
 *           matches, the lookup reads the table with its own snapshot (a fill is still allowed:
 *           below).
 *  Resolve: the launcher (online_worker.c) polls the ring: a transaction no longer in progress
 *           on the standby (its commit or abort replayed, or forgotten after a primary crash by
 *           the next running-transactions record) is resolved: new generations for its keys and
 *           views first (fs_cache_bump_keys / fs_cache_bump_in, exactly the primary's bumps,
 *           now after the commit is visible), then its pending counters are decremented.
 *  Why it is safe: a reader that found nothing pending either read before the record was
 *           replayed (then the commit was not visible yet: what it serves was true at that
 *           instant), or after the resolution, whose bump it then sees in its W (the counters
 *           are decremented after the bump): it accepts only entries whose fill snapshot saw the
 *           commit, as on a primary. A fill taken while pending is tagged with a C older than the
 *           resolution's bump unless its snapshot came after the commit was visible; the bump
 *           kills it. A lost commit (primary crash before the commit record) is resolved as an
 *           abort: a bump too many, never one too few.
 *  Start:   a standby's shared memory is new, but WAL replay started at a restart point: a
 *           record replayed before this server started (not in the ring) may belong to a
 *           transaction that commits after. So a standby's cache is not TRUSTED at first: its
 *           lookups read the tables, until every transaction that was in progress when the
 *           launcher began waiting has ended; then every view gets a new generation (entries
 *           loaded meanwhile die) and the cache is trusted. A promoted standby that never became
 *           trusted does the same. A server started as a primary is trusted from the start.
 *  Bounds:  FS_WAL_XACTS pending transactions of at most FS_WAL_KEYS keys and FS_WAL_VIEWS
 *           views each. A record with more keys or views is pending for its whole database; a
 *           record that finds the ring full sets the overflow mark: every lookup bypasses the
 *           cache until every transaction up to the newest overflowed one has ended, and then
 *           every view gets a new generation. Lookups stay correct, only slower.
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "access/xlogrecord.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/snapmgr.h"

#include <unistd.h>

#include "online_cache.h"
#include "online_wal.h"

/*
 * The resource manager's id. PostgreSQL reserves 128 (RM_EXPERIMENTAL_ID) for development and
 * lists the ids of published extensions on its wiki; this one is taken from the free range
 * there. A standby must load feature_store (shared_preload_libraries) to replay it.
 */
#define FS_RMGR_ID		139
#define FS_RMGR_NAME	"feature_store"

#define XLOG_FS_CHANGES	0x00

#define FS_WAL_XACTS	256
#define FS_WAL_KEYS		64
#define FS_WAL_VIEWS	8
#define FS_WAL_KPARTS	4096
#define FS_WAL_VPARTS	1024

/* The record: a header, nviews FsWalRecView, then every view's hashes in that order. */
typedef struct FsWalRecHeader
{
	Oid			dboid;
	int32		nviews;
} FsWalRecHeader;

typedef struct FsWalRecView
{
	int32		view_id;
	uint8		whole;
	uint8		free_slot;
	int32		nhashes;
} FsWalRecView;

typedef struct FsWalXact
{
	TransactionId xid;			/* InvalidTransactionId = free */
	bool		resolving;		/* claimed by a resolver */
	bool		dbwide;			/* too many keys or views: pending for the whole database */
	Oid			dboid;
	int			nviews;
	int			nkeys;
	int32		view_id[FS_WAL_VIEWS];
	bool		free_slot[FS_WAL_VIEWS];
	uint64		keys[FS_WAL_KEYS];
} FsWalXact;

struct FsWalCtl
{
	slock_t		mutex;			/* guards ring[], overflow_xid, trust_xid */
	pg_atomic_uint32 npending;	/* ring entries in use, plus 1 while overflowed */
	pg_atomic_uint32 overflow;	/* 1: every lookup bypasses the cache */
	pg_atomic_uint32 trusted;
	TransactionId overflow_xid; /* newest transaction that did not fit */
	TransactionId trust_xid;	/* a standby trusts its cache once all before it ended */
	Latch	   *launcher_latch;
	pg_atomic_uint32 kpend[FS_WAL_KPARTS];
	pg_atomic_uint32 vpend[FS_WAL_VPARTS];
	FsWalXact	ring[FS_WAL_XACTS];
};

FsWalCtl   *fs_wal_ctl = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static inline int
kpart(uint64 hash)
{
	return (int) (hash % FS_WAL_KPARTS);
}

/* A view's counter; view_id 0 is its database's. */
static inline int
vpart(Oid dboid, int32 view_id)
{
	return (int) (hash_combine(murmurhash32(dboid), murmurhash32((uint32) view_id)) % FS_WAL_VPARTS);
}

bool
fs_wal_any_pending(void)
{
	return fs_wal_ctl != NULL && pg_atomic_read_u32(&fs_wal_ctl->npending) != 0;
}

bool
fs_wal_pending(Oid dboid, int32 view_id, uint64 hash)
{
	FsWalCtl   *c = fs_wal_ctl;

	if (c == NULL || pg_atomic_read_u32(&c->npending) == 0)
		return false;
	return pg_atomic_read_u32(&c->overflow) != 0 ||
		pg_atomic_read_u32(&c->kpend[kpart(hash)]) != 0 ||
		pg_atomic_read_u32(&c->vpend[vpart(dboid, view_id)]) != 0 ||
		pg_atomic_read_u32(&c->vpend[vpart(dboid, 0)]) != 0;
}

bool
fs_wal_cache_trusted(void)
{
	bool		t = fs_wal_ctl != NULL && pg_atomic_read_u32(&fs_wal_ctl->trusted) != 0;

	/* read before the reader's W, as the pending counters */
	pg_read_barrier();
	return t;
}

/* ---------------------------------------------------------------------------------------- */
/* Writer */

void
fs_wal_log_changes(const FsWalView *views, int nviews)
{
	FsWalRecHeader h;
	FsWalRecView *rv;

	if (fs_wal_ctl == NULL || nviews == 0 || !XLogStandbyInfoActive() ||
		!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;
	h.dboid = MyDatabaseId;
	h.nviews = nviews;
	rv = palloc(sizeof(FsWalRecView) * nviews);
	XLogBeginInsert();
	XLogRegisterData((char *) &h, sizeof(h));
	for (int i = 0; i < nviews; i++)
	{
		rv[i].view_id = views[i].view_id;
		rv[i].whole = views[i].whole;
		rv[i].free_slot = views[i].free_slot;
		rv[i].nhashes = views[i].whole ? 0 : views[i].nhashes;
	}
	XLogRegisterData((char *) rv, sizeof(FsWalRecView) * nviews);
	for (int i = 0; i < nviews; i++)
		if (rv[i].nhashes > 0)
			XLogRegisterData((char *) views[i].hashes, sizeof(uint64) * rv[i].nhashes);
	(void) XLogInsert(FS_RMGR_ID, XLOG_FS_CHANGES);
	pfree(rv);
}

/* ---------------------------------------------------------------------------------------- */
/* Redo (the startup process) */

static void
wake_launcher(void)
{
	Latch	   *l;

	SpinLockAcquire(&fs_wal_ctl->mutex);
	l = fs_wal_ctl->launcher_latch;
	SpinLockRelease(&fs_wal_ctl->mutex);
	if (l)
		SetLatch(l);
}

/* The counters of a ring entry: +1 when it becomes pending, -1 when resolved. */
static void
count_entry(FsWalXact *x, int d)
{
	FsWalCtl   *c = fs_wal_ctl;

	if (x->dbwide)
		pg_atomic_fetch_add_u32(&c->vpend[vpart(x->dboid, 0)], d);
	else
	{
		for (int i = 0; i < x->nviews; i++)
			pg_atomic_fetch_add_u32(&c->vpend[vpart(x->dboid, x->view_id[i])], d);
		for (int i = 0; i < x->nkeys; i++)
			pg_atomic_fetch_add_u32(&c->kpend[kpart(x->keys[i])], d);
	}
}

static void
fs_wal_redo(XLogReaderState *record)
{
	FsWalCtl   *c = fs_wal_ctl;
	TransactionId xid = XLogRecGetXid(record);
	char	   *data = XLogRecGetData(record);
	FsWalRecHeader h;
	FsWalRecView *rv;
	const uint64 *hashes;
	FsWalXact  *x = NULL;
	int			nkeys = 0,
				nviews = 0;

	if ((XLogRecGetInfo(record) & ~XLR_INFO_MASK) != XLOG_FS_CHANGES)
		elog(PANIC, "feature_store redo: unknown op code %u", XLogRecGetInfo(record) & ~XLR_INFO_MASK);
	if (c == NULL || !TransactionIdIsValid(xid))
		return;
	memcpy(&h, data, sizeof(h));
	rv = (FsWalRecView *) (data + sizeof(h));
	hashes = (const uint64 *) (rv + h.nviews);

	SpinLockAcquire(&c->mutex);
	for (int i = 0; i < FS_WAL_XACTS && x == NULL; i++)
		if (!TransactionIdIsValid(c->ring[i].xid))
			x = &c->ring[i];
	if (x == NULL)
	{
		/* the ring is full: every lookup bypasses the cache until this transaction ended */
		if (pg_atomic_read_u32(&c->overflow) == 0)
		{
			pg_atomic_fetch_add_u32(&c->npending, 1);
			pg_atomic_write_u32(&c->overflow, 1);
		}
		if (!TransactionIdIsValid(c->overflow_xid) || TransactionIdFollows(xid, c->overflow_xid))
			c->overflow_xid = xid;
		SpinLockRelease(&c->mutex);
		wake_launcher();
		return;
	}
	x->xid = xid;
	x->resolving = false;
	x->dboid = h.dboid;
	x->dbwide = h.nviews > FS_WAL_VIEWS;
	for (int i = 0; i < h.nviews && !x->dbwide; i++)
	{
		if (rv[i].whole)
		{
			x->view_id[nviews] = rv[i].view_id;
			x->free_slot[nviews++] = rv[i].free_slot != 0;
		}
		else if (nkeys + rv[i].nhashes > FS_WAL_KEYS)
			x->dbwide = true;
		else
		{
			memcpy(&x->keys[nkeys], hashes, sizeof(uint64) * rv[i].nhashes);
			nkeys += rv[i].nhashes;
		}
		hashes += rv[i].nhashes;
	}
	x->nviews = nviews;
	x->nkeys = nkeys;
	/* the counters before npending: a reader that sees npending sees them */
	count_entry(x, 1);
	pg_write_barrier();
	pg_atomic_fetch_add_u32(&c->npending, 1);
	SpinLockRelease(&c->mutex);
	wake_launcher();
}

static void
fs_wal_desc(StringInfo buf, XLogReaderState *record)
{
	FsWalRecHeader h;

	memcpy(&h, XLogRecGetData(record), sizeof(h));
	appendStringInfo(buf, "database %u, %d views", h.dboid, h.nviews);
}

static const char *
fs_wal_identify(uint8 info)
{
	return (info & ~XLR_INFO_MASK) == XLOG_FS_CHANGES ? "ONLINE_CHANGES" : NULL;
}

static RmgrData fs_rmgr = {
	.rm_name = FS_RMGR_NAME,
	.rm_redo = fs_wal_redo,
	.rm_desc = fs_wal_desc,
	.rm_identify = fs_wal_identify,
};

/* ---------------------------------------------------------------------------------------- */
/* The launcher: resolution and trust */

/* True when every transaction before xid has ended, as a new snapshot sees it. */
static bool
all_ended_before(TransactionId xid)
{
	Snapshot	s;
	bool		ended;

	StartTransactionCommand();
	s = GetLatestSnapshot();
	ended = TransactionIdFollowsOrEquals(s->xmin, xid);
	CommitTransactionCommand();
	return ended;
}

/* One pending transaction ended: its bumps, then its counters. */
static void
resolve(FsWalXact *x)
{
	if (x->dbwide)
		fs_cache_bump_in(x->dboid, 0, false);
	else
	{
		for (int i = 0; i < x->nviews; i++)
			fs_cache_bump_in(x->dboid, x->view_id[i], x->free_slot[i]);
		fs_cache_bump_keys(x->keys, x->nkeys);
	}
	if (x->dbwide || x->nviews > 0)
		fs_cache_wake_db_worker(x->dboid);	/* whole views: the worker reloads them */
	pg_memory_barrier();
	count_entry(x, -1);
	pg_write_barrier();
	SpinLockAcquire(&fs_wal_ctl->mutex);
	x->xid = InvalidTransactionId;
	x->resolving = false;
	pg_atomic_fetch_sub_u32(&fs_wal_ctl->npending, 1);
	SpinLockRelease(&fs_wal_ctl->mutex);
}

int
fs_wal_launcher_work(void)
{
	FsWalCtl   *c = fs_wal_ctl;
	int			wait = 0;

	if (c == NULL)
		return 0;
	if (c->launcher_latch != MyLatch)
	{
		SpinLockAcquire(&c->mutex);
		c->launcher_latch = MyLatch;
		SpinLockRelease(&c->mutex);
	}

	/* the ring: entries are claimed under the mutex, free ones skipped without it */
	for (int i = 0; i < FS_WAL_XACTS && pg_atomic_read_u32(&c->npending) != 0; i++)
	{
		FsWalXact  *x = &c->ring[i];
		TransactionId xid = x->xid;
		bool		mine;

		if (!TransactionIdIsValid(xid))
			continue;
		if (TransactionIdIsInProgress(xid))
		{
			wait = 1;
			continue;
		}
		SpinLockAcquire(&c->mutex);
		mine = x->xid == xid && !x->resolving;
		x->resolving |= mine;
		SpinLockRelease(&c->mutex);
		if (mine)
			resolve(x);
	}

	/* overflow and trust wait for old transactions to end: polled less often (a transaction each) */
	if (pg_atomic_read_u32(&c->overflow) != 0)
	{
		TransactionId ox;

		SpinLockAcquire(&c->mutex);
		ox = c->overflow_xid;
		SpinLockRelease(&c->mutex);
		if (all_ended_before(ox + 1 < FirstNormalTransactionId ? FirstNormalTransactionId : ox + 1))
		{
			fs_cache_bump_in(InvalidOid, 0, false);
			fs_cache_wake_db_worker(InvalidOid);
			pg_memory_barrier();
			SpinLockAcquire(&c->mutex);
			if (c->overflow_xid == ox)
			{
				c->overflow_xid = InvalidTransactionId;
				pg_atomic_write_u32(&c->overflow, 0);
				pg_atomic_fetch_sub_u32(&c->npending, 1);
			}
			SpinLockRelease(&c->mutex);
		}
		else if (wait == 0)
			wait = 10;
	}

	if (pg_atomic_read_u32(&c->trusted) == 0)
	{
		if (!TransactionIdIsValid(c->trust_xid))
			c->trust_xid = XidFromFullTransactionId(ReadNextFullTransactionId());
		if (all_ended_before(c->trust_xid))
		{
			/* entries loaded before now may miss a commit whose record came before our start */
			fs_cache_bump_in(InvalidOid, 0, false);
			fs_cache_wake_db_worker(InvalidOid);
			pg_memory_barrier();
			pg_atomic_write_u32(&c->trusted, 1);
			ereport(LOG,
					(errmsg("feature_store online cache is serving on this %s", RecoveryInProgress() ? "standby" : "server"),
					 errdetail("Every transaction in progress when the cache started has ended.")));
		}
		else if (wait == 0)
			wait = 10;
	}
	return wait;
}

/* ---------------------------------------------------------------------------------------- */
/* Setup */

static void
fs_wal_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(FsWalCtl)));
}

static void
fs_wal_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	fs_wal_ctl = ShmemInitStruct("feature_store online cache WAL", sizeof(FsWalCtl), &found);
	if (!found)
	{
		memset(fs_wal_ctl, 0, sizeof(FsWalCtl));
		SpinLockInit(&fs_wal_ctl->mutex);
		pg_atomic_init_u32(&fs_wal_ctl->npending, 0);
		pg_atomic_init_u32(&fs_wal_ctl->overflow, 0);
		/* a server that starts as a standby (or in archive recovery) trusts its cache once caught up */
		pg_atomic_init_u32(&fs_wal_ctl->trusted,
						   access(STANDBY_SIGNAL_FILE, F_OK) == 0 || access(RECOVERY_SIGNAL_FILE, F_OK) == 0 ? 0 : 1);
		for (int i = 0; i < FS_WAL_KPARTS; i++)
			pg_atomic_init_u32(&fs_wal_ctl->kpend[i], 0);
		for (int i = 0; i < FS_WAL_VPARTS; i++)
			pg_atomic_init_u32(&fs_wal_ctl->vpend[i], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
fs_wal_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	RegisterCustomRmgr(FS_RMGR_ID, &fs_rmgr);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = fs_wal_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = fs_wal_shmem_startup;
}
