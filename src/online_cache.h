/*
 * online_cache.h — the shared-memory cache of online rows (see the protocol at the top of
 * online_cache.c) and its GUCs, statistics and worker state.
 */
#ifndef FS_ONLINE_CACHE_H
#define FS_ONLINE_CACHE_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#define FS_CACHE_KEY_MAX	64		/* bytes of key image an entry can hold */
#define FS_CACHE_DATA		1024	/* key image + payload bytes an entry can hold (documented limit) */
#define FS_CACHE_MAX_VIEWS	256		/* view slots (statistics + generation), all databases */
#define FS_CACHE_MAX_DBS	64		/* databases the cache can serve at once */

extern int	fs_cache_size_kb;
extern char *fs_cache_database;	/* deprecated: one database, when feature_store.databases is empty */
extern char *fs_cache_databases;	/* '*' (every database with the extension) or a list of names */
extern bool fs_reload_after_commit;

/* Statistics counters of a view slot. */
typedef enum FsCacheCounter
{
	FS_CTR_HITS,
	FS_CTR_MISSES,
	FS_CTR_READ_THROUGHS,
	FS_CTR_EVICTIONS,
	FS_CTR_DECLINED,
	FS_CTR_FILLS,
	FS_NCOUNTERS
} FsCacheCounter;

/* Worker states shown by fs_stat_online. */
typedef enum FsWorkerState
{
	FS_WORKER_NOT_RUNNING,
	FS_WORKER_STARTING,
	FS_WORKER_LOADING,
	FS_WORKER_IDLE,
	FS_WORKER_BACKOFF,
	FS_WORKER_WAITING_EXTENSION,
	FS_WORKER_CONNECTING,		/* a worker that exits in this state could not connect */
	FS_WORKER_CONNECT_FAILED,	/* the last start could not connect; the next one retries */
	FS_WORKER_RECONNECTING,		/* retrying; exiting in this state means: wait for the database */
	FS_WORKER_WAITING_DATABASE	/* a listed database does not exist (yet) */
} FsWorkerState;

extern void fs_cache_init(void);			/* from _PG_init: GUCs, hooks */
extern bool fs_cache_preloaded(void);
/*
 * Whether the cache serves this backend's database now (false without preloading): the
 * protocol's per-database switch, read from shared memory without a lock. Readers ask it before
 * their W (and use the cache only if true); committing writers ask it after their commit became
 * visible (and publish generations only if true). No catalog access: callable at commit.
 */
extern bool fs_cache_db_served(void);
/* The effective list of databases to serve: NULL = every database that has the extension. */
extern List *fs_cache_database_list(void);


/* View slots: find (or create) the slot of a view; -1 when none/full. */
extern int	fs_cache_view_slot(int32 view_id, bool create);
extern bool fs_cache_slot_is(int slot, int32 view_id);
extern uint64 fs_cache_view_gen(int slot);
/* Reader: W = max(view generation, key generation), the smallest live tag of the key. */
extern uint64 fs_cache_want(int slot, uint64 hash);
/* Reader: the tag of fills, read after W and before the snapshot of the durable read. */
extern uint64 fs_cache_fill_tag(void);
extern void fs_cache_count(int slot, FsCacheCounter c);

/*
 * Lookup: on a hit copies the payload (at most FS_CACHE_DATA bytes) into buf and returns its
 * length; -1 on a miss. Only entries tagged at least `want` (fs_cache_want, read by the
 * caller first) count.
 */
extern int	fs_cache_get(int slot, int32 view_id, uint64 hash, const char *key, int keylen,
						 uint64 want, char *buf);

/* One key of a batch probe: inputs hash, key, keylen (< 0: skip), buf; output len. */
typedef struct FsCacheProbe
{
	uint64		hash;
	const char *key;
	int			keylen;
	uint64		want;			/* W, read by fs_cache_get_many */
	char	   *buf;			/* FS_CACHE_DATA bytes, MAXALIGNed */
	int			len;			/* payload length on a hit, -1 on a miss */
} FsCacheProbe;

/*
 * Batch lookup of n keys of a view: reads each key's W, then probes with each bucket lock
 * taken once per chunk; counts hits and misses.
 */
extern void fs_cache_get_many(int slot, int32 view_id, FsCacheProbe *p, int n);

/* Fill: stores payload unless the view's or the key's generation moved past tag (protocol). */
extern void fs_cache_put(int slot, int32 view_id, uint64 hash, const char *key, int keylen,
						 uint64 tag, const char *payload, int len);

/* Commit side: a new generation for the view (all its entries become stale); free = drop slot. */
extern void fs_cache_bump(int32 view_id, bool free_slot);
/*
 * Aggregation views (online_agg_cache.c): a new view generation unless the slot's guard is
 * already `guard`, which it becomes (the writers' triggers changed: entries cached before
 * may have missed writes).
 */
extern void fs_cache_view_guard(int slot, int32 view_id, uint64 guard);
/* Commit side of per-key invalidation: only these keys (by cache hash) become stale. */
extern void fs_cache_bump_keys(const uint64 *hashes, int n);
extern void fs_cache_bump_in(Oid dboid, int32 view_id, bool free_slot);

/* Worker bookkeeping. */
extern bool fs_cache_view_needs_load(int slot, uint64 *gen);
extern void fs_cache_view_loaded(int slot, uint64 gen);
/*
 * The database entry (index into the cache's database table) whose worker this process is;
 * -1 in the launcher. fs_cache_set_worker and fs_cache_set_worker_latch act on it.
 */
extern int	fs_cache_my_db;
extern void fs_cache_set_worker(int pid, FsWorkerState state, const char *error);
extern void fs_cache_wake_worker(void);
extern void fs_cache_wake_db_worker(Oid dboid);
extern void fs_cache_set_worker_latch(void *latch);

/* The database table (online_cache_worker.c), used by the launcher and the workers. */
extern int	fs_cache_db_lookup(Oid dboid);
extern int	fs_cache_db_add(Oid dboid);
extern void fs_cache_db_release(int idx);
extern void fs_cache_db_serve(int idx, bool on);
extern bool fs_cache_db_claim(int idx, Oid dboid);
extern void fs_cache_db_flags(int idx, Oid *dboid, bool *need_probe, bool *ext_absent, int *pid);
extern void fs_cache_db_set_flags(int idx, int need_probe, int ext_absent, int stop);
extern bool fs_cache_db_stop_requested(int idx);
extern void fs_cache_db_request_probe(Oid dboid);
extern void fs_cache_wake_launcher(void);

/* Statistics snapshot for fs_stat_online. */
typedef struct FsCacheViewStats
{
	Oid			dboid;			/* database of the view: view ids repeat across databases */
	int32		view_id;
	int64		entries;
	int64		bytes;
	uint64		counters[FS_NCOUNTERS];
} FsCacheViewStats;

typedef struct FsCacheStats
{
	int64		capacity_bytes;
	int			nviews;
	FsCacheViewStats views[FS_CACHE_MAX_VIEWS];
	int			worker_pid;
	FsWorkerState worker_state;
	char		last_error[256];
	TimestampTz last_error_at;
	int64		worker_errors;
} FsCacheStats;

extern void fs_cache_stats(FsCacheStats *out);
extern FsWorkerState fs_cache_worker_state(void);

#endif
