/*
 * online_cache.c — shared-memory cache of online rows, bounded by feature_store.cache_size.
 *
 * CACHE PROTOCOL (why a lookup never returns an aborted or a stale value)
 *
 * The durable online table is the truth; the cache holds copies tagged with a generation.
 * Generations come from one cluster-wide counter (fetch-and-add), so a number handed out once
 * is never handed out again (no ABA) and a later number is always greater. Two kinds of
 * generation say when a cached copy may have become stale:
 *  - the view generation V (one per view slot): a commit that changed the view wholesale
 *    (batch materialization, TRUNCATE, mode changes, reload) gives it a new number;
 *  - the key generation K (six per cache page, each shared by the keys of the page with its tag):
 *    a commit that changed only a few keys (streaming micro-batches, small upserts) raises the
 *    K of each changed key to a new number, leaving every other key's copy valid.
 * An entry carries one tag T, and is live while V <= T and K(its key) <= T.
 *
 *  Writer:  statements that change a view's online table record, in the backend, either the
 *           changed keys (per-key triggers with transition tables, online_table.c, up to
 *           FS_KEY_INVAL_MAX keys per view and transaction) or the whole view. In the
 *           XACT_EVENT_COMMIT callback, which runs after ProcArrayEndTransaction made the
 *           transaction visible and before COMMIT returns to the client, the writer takes ONE
 *           new number g and raises V (whole view: fs_cache_bump) or each changed key's K to at
 *           least g (fs_cache_bump_keys; atomic max, so K never goes backwards). Aborted
 *           transactions never bump and their rows are never seen by any snapshot.
 *  Reader:  reads W = max(V, K(key)) and the counter's current value C, in that order, before
 *           anything else; a hit is an entry with T >= W. On a miss it takes a NEW snapshot
 *           (GetLatestSnapshot) after those reads, reads the durable row, and stores it tagged
 *           C, under the page lock, only if still V <= C and K(key) <= C.
 *  Why it is safe: every number <= C was handed out before C was read, hence before the
 *           snapshot; a writer takes its number after its commit became visible, so the
 *           snapshot saw every commit whose number is <= C. A commit the snapshot did not see
 *           takes its number after C was read, so it is > C: the fill is refused (bump before
 *           the fill) or the entry dies (bump after it). A lookup that starts after a writer's
 *           COMMIT returned reads W >= that writer's number, so it only accepts entries whose
 *           snapshot saw the writer. The worker's full load is a reader with one C for all rows.
 *  Memory ordering: V, K and C are atomic reads followed by a barrier, and snapshots are taken
 *           under ProcArrayLock, so "read, then snapshot" holds; bumps are atomic writes (V under
 *           the view lock, K by compare-and-swap) after the commit became visible.
 *  Where the cache is bypassed: transactions that wrote the view themselves (they must see
 *           their own rows), REPEATABLE READ / SERIALIZABLE transactions (their snapshot is
 *           older than the generations they read), standbys until they trust their cache
 *           (online_wal.c: there, invalidations arrive in WAL, pending until their transaction ended there),
 *           databases the cache does not serve. Those lookups read the durable table; the
 *           writers of those databases publish nothing (no copy of their views exists, and view
 *           slots are per database), so they never make a served database's entries stale.
 *  Several databases: an entry belongs to its view slot, and a slot to one database (view ids
 *           repeat across databases), so a probe matches the slot as well as the view id. Each
 *           database has a switch, `served` (online_cache_int.h), read by readers BEFORE their
 *           W and by writers AFTER their commit became visible (at commit, from shared memory):
 *           a reader that saw it on is followed by every writer whose commit its snapshot
 *           missed, and those writers see it on and publish. It is turned on and off only under
 *           the exclusive view lock together with freeing every slot of the database (entries
 *           then die: a slot made again starts from a new generation), so nothing written
 *           while it was off, when writers published nothing, is ever served after it is on.
 *
 * LAYOUT AND LOCKING
 * The cache is an array of 4 kB pages (online_cache_int.h), each a small hash table of its own:
 * a header line (the change counter and six key generations K), an index of 48 slots (16-bit
 * hash tags, entry offsets, CLOCK reference bytes: four more lines) and the entries, packed in
 * 8-byte units from the end of the page downwards (online_cache_page.c allocates them). A key
 * lives in one page, chosen by its hash, and its K is one of that page's six (chosen by its
 * tag): a probe reads the header line, the tag and offset lines and the entry's lines, all in
 * one 4 kB page, so it takes at most one TLB miss (a 4 kB-page TLB miss under load costs as much
 * as the probe itself; the 256-byte fixed entries of earlier versions spread a probe over two
 * pages). An entry holds a 12-byte header (tag T, view slot, lengths), the key image and the
 * payload: its size is the row's (up to FS_CACHE_DATA bytes of key image + payload).
 * FS_CACHE_NLOCKS LWLocks each guard every FS_CACHE_NLOCKS-th page against other writers: a fill
 * takes its page's lock exclusive.
 * Readers take no lock (a shared LWLock acquisition writes the lock's cache line, which bounces
 * between CPUs under concurrency): the page's change counter works like PostgreSQL's
 * st_changecount (pgstat_begin_write_activity). A writer, holding the exclusive lock, makes it
 * odd before changing any slot or entry of the page (a fill, an eviction, a compaction that
 * moves entries) and even again after; a reader reads it, probes and copies, and reads it
 * again: equal and even, the copy is consistent; otherwise it probes again under the shared
 * lock, which waits for the writer (never spinning on a writer that lost its CPU). Offsets and
 * lengths read during a write are bounded to the page and to the caller's buffer, so a torn
 * copy never reads or writes out of bounds before it is thrown away.
 * A full page first drops its dead entries (older generation or freed view), then evicts live
 * ones by CLOCK (reference bytes set by readers without a lock — a benign race), each counted
 * as an eviction, then compacts. Rows too large for an entry are declined (counted) and always
 * read through. View slots (generation, loaded generation, counters) are guarded by one
 * LWLock; counters and key generations are atomics.
 * Entries carry no view id: an entry of view slot s tagged T is only ever returned for W >= V(s),
 * and a view that takes over a slot starts it at a new V greater than every tag read before
 * (fills of the former view check, under the page lock, that the slot is still theirs; one that
 * checked before the takeover read its tag before the takeover's V, so its entry is dead).
 */
#include "postgres.h"

#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "online_cache.h"
#include "online_cache_int.h"
#include "online_wal.h"


/* A generation never handed out before (cluster-wide counter): no ABA between incarnations. */
static uint64
new_gen(void)
{
	return pg_atomic_fetch_add_u64(&fs_cache_ctl->global_gen, 1) + 1;
}

/* Is slot s the one of view_id in this backend's database? */
static inline bool
slot_matches(const FsViewSlot *s, int32 view_id)
{
	return s->view_id == view_id && s->dboid == MyDatabaseId;
}

/* Is the database served (its switch on)? For choosing which slot to take over. */
static bool
db_is_served(Oid dboid)
{
	for (int i = 0; i < FS_CACHE_MAX_DBS; i++)
		if (fs_cache_ctl->dbs[i].dboid == dboid)
			return pg_atomic_read_u32(&fs_cache_ctl->dbs[i].served) != 0;
	return false;
}

/*
 * The slot of view_id of this backend's database, created on first use with a fresh generation.
 * Shared lock for the common lookup; exclusive only to create, re-checking under it. Only
 * served databases create slots (their readers and workers): when none is free, a slot of
 * another database (preferably one no longer served) is taken over; its entries die with the
 * fresh generation.
 */
int
fs_cache_view_slot(int32 view_id, bool create)
{
	int			freeslot = -1;
	int			foreign = -1;

	LWLockAcquire(fs_cache_ctl->viewlock, LW_SHARED);
	for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
		if (slot_matches(&fs_cache_ctl->views[i], view_id))
		{
			LWLockRelease(fs_cache_ctl->viewlock);
			return i;
		}
	LWLockRelease(fs_cache_ctl->viewlock);
	if (!create)
		return -1;
	LWLockAcquire(fs_cache_ctl->viewlock, LW_EXCLUSIVE);
	for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
	{
		if (slot_matches(&fs_cache_ctl->views[i], view_id))
		{
			LWLockRelease(fs_cache_ctl->viewlock);
			return i;
		}
		if (fs_cache_ctl->views[i].view_id == 0 && freeslot < 0)
			freeslot = i;
		if (fs_cache_ctl->views[i].view_id != 0 && fs_cache_ctl->views[i].dboid != MyDatabaseId &&
			(foreign < 0 || (db_is_served(fs_cache_ctl->views[foreign].dboid) &&
							 !db_is_served(fs_cache_ctl->views[i].dboid))))
			foreign = i;
	}
	if (freeslot < 0)
		freeslot = foreign;
	if (freeslot >= 0)
	{
		FsViewSlot *s = &fs_cache_ctl->views[freeslot];

		s->dboid = MyDatabaseId;
		s->view_id = view_id;
		pg_atomic_write_u64(&s->gen, new_gen());
		s->loaded_gen = 0;
		s->guard = 0;
		pg_atomic_write_u64(&s->used, 0);
		for (int c = 0; c < FS_NCOUNTERS; c++)
			pg_atomic_write_u64(&s->ctr[c], 0);
	}
	LWLockRelease(fs_cache_ctl->viewlock);
	return freeslot;
}

/* Cheap validation of a backend's cached slot number (slots are reused after a view goes off). */
bool
fs_cache_slot_is(int slot, int32 view_id)
{
	return slot >= 0 && slot < FS_CACHE_MAX_VIEWS && slot_matches(&fs_cache_ctl->views[slot], view_id);
}

/* A key's page (its hash's low part), tag (its high 16 bits) and key generation K. */
static inline int64
page_no(uint64 hash)
{
	return (int64) (hash % (uint64) fs_cache_ctl->npages);
}

static inline uint16
key_tag(uint64 hash)
{
	return (uint16) (hash >> 48);
}

static inline pg_atomic_uint64 *
key_gen(uint64 hash)
{
	return &fs_cache_pages[page_no(hash)].keygen[fs_tag_kgen(key_tag(hash))];
}

/*
 * A prefetch the compiler must keep: GCC dropped a loop made only of __builtin_prefetch calls
 * (prefetch_match's), which left every batch probe stalling on its entry's first cache line.
 */
static inline void
prefetch_line(const void *p)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__asm__ __volatile__("prefetcht0 %0"::"m"(*(const char *) p));
#else
	__builtin_prefetch(p, 0, 3);
#endif
}

/* Starts loading a page's header and index lines (K, tags, offsets, reference bytes). */
static inline void
prefetch_page(int64 p)
{
	const char *pg = (const char *) &fs_cache_pages[p];

	for (int l = 0; l < FS_PAGE_INDEX / FS_LINE; l++)
		prefetch_line(pg + l * FS_LINE);
}

/*
 * The reader's first step of the protocol: W = max(V, K(key)), the smallest tag a live entry of
 * this key can carry, with a barrier before the caller's snapshot.
 */
uint64
fs_cache_want(int slot, uint64 hash)
{
	FsViewSlot *s = &fs_cache_ctl->views[slot];
	bool		pending = fs_wal_pending(s->dboid, s->view_id, hash);
	uint64		v,
				k;

	/*
	 * The page's index lines along with its header line (K): the probe that follows needs them,
	 * and fetched together their misses overlap instead of following one another (a random
	 * page of a large cache is a TLB miss and a memory access per line).
	 */
	prefetch_page(page_no(hash));

	/* pending invalidations (a standby's, online_wal.c) are read before V and K */
	pg_memory_barrier();
	v = pg_atomic_read_u64(&s->gen);
	k = pg_atomic_read_u64(key_gen(hash));
	pg_memory_barrier();
	return pending ? PG_UINT64_MAX : Max(v, k);
}

/* The view generation V alone (the worker's reload bookkeeping). */
uint64
fs_cache_view_gen(int slot)
{
	uint64		g = pg_atomic_read_u64(&fs_cache_ctl->views[slot].gen);

	pg_memory_barrier();
	return g;
}

/*
 * The tag C of fills: the counter's current value, read (after the caller's W) before the
 * snapshot of the durable read. Every number <= C belongs to a commit that snapshot sees.
 */
uint64
fs_cache_fill_tag(void)
{
	uint64		c;

	pg_memory_barrier();
	c = pg_atomic_read_u64(&fs_cache_ctl->global_gen);
	pg_memory_barrier();
	return c;
}

/* Statistics counters are atomics: readers never take a lock just to count. */
void
fs_cache_count(int slot, FsCacheCounter c)
{
	if (fs_cache_ctl != NULL && slot >= 0)
		pg_atomic_fetch_add_u64(&fs_cache_ctl->views[slot].ctr[c], 1);
}

/*
 * Copies the payload of the key's live entry in page pg into buf: its slot (-1 when the page has
 * none), its length in *len. The length is read once and clamped to the page and to the buffer:
 * a copy torn by a writer must not overrun either before the caller throws it away.
 */
static inline int
copy_from_page(FsPage *pg, int slot, uint16 tag, const char *key, int keylen, uint64 want,
			   char *buf, int *len)
{
	int			i = fs_page_find(pg, slot, tag, key, keylen, false, want);

	*len = -1;
	if (i >= 0)
	{
		uint32		off = *(volatile uint16 *) &pg->off[i];
		int			room = FS_PAGE - (int) (off * FS_UNIT + FS_ENTRY_HDR + keylen);
		const FsEntry *e = (const FsEntry *) ((const char *) pg + off * FS_UNIT);
		int			l;

		if (off < FS_PAGE_INDEX / FS_UNIT || room < 0)
			return -1;			/* torn: the re-check of the counter fails */
		l = *(volatile uint16 *) &e->len;
		*len = Min(Min(l, room), FS_CACHE_DATA - keylen);
		memcpy(buf, e->data + keylen, *len);
	}
	return i;
}

/*
 * The payload of the key's live entry in its page copied into buf: its length, -1 when there is
 * none. Without a lock while no writer is at work (see LAYOUT AND LOCKING).
 */
static int
probe_page(int64 p, int slot, uint64 hash, const char *key, int keylen, uint64 want, char *buf)
{
	FsPage	   *pg = &fs_cache_pages[p];
	uint16		tag = key_tag(hash);
	LWLock	   *lock = NULL;
	int			i = -1;
	int			len = -1;

	for (int attempt = 0; attempt < 2; attempt++)
	{
		uint32		seq = pg_atomic_read_u32(&pg->seq);

		if (seq & 1)
			break;
		pg_read_barrier();
		i = copy_from_page(pg, slot, tag, key, keylen, want, buf, &len);
		pg_read_barrier();
		if (pg_atomic_read_u32(&pg->seq) == seq)
			goto done;
	}
	/* a writer is (or just was) at work: wait for it on the shared lock */
	lock = fs_page_lock(p);
	LWLockAcquire(lock, LW_SHARED);
	i = copy_from_page(pg, slot, tag, key, keylen, want, buf, &len);
done:
	if (i >= 0 && len >= 0 && pg->ref[i] == 0)
		pg->ref[i] = 1;			/* no write (no dirty line) when already set */
	if (lock)
		LWLockRelease(lock);
	return len;
}

/* Probes the key's page; copies the payload out on a hit. */
int
fs_cache_get(int slot, int32 view_id, uint64 hash, const char *key, int keylen,
			 uint64 want, char *buf)
{
	return probe_page(page_no(hash), slot, hash, key, keylen, want, buf);
}

/*
 * The units a database's entries take: the sum of its view slots' counts (an unlocked,
 * approximate figure: entries of a slot taken over by another database are not moved with it).
 */
int64
fs_cache_db_used(Oid dboid)
{
	int64		n = 0;

	for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
		if (fs_cache_ctl->views[i].dboid == dboid && fs_cache_ctl->views[i].view_id != 0)
			n += pg_atomic_read_u64(&fs_cache_ctl->views[i].used);
	return n;
}

/*
 * The reader's fill (and the worker's load): stores under the page lock unless V or the key's K
 * moved past the fill tag (read before the snapshot), replacing the key's entry, else in free
 * space of the page, else in the space of dead entries, else of CLOCK victims (evictions).
 */
void
fs_cache_put(int slot, int32 view_id, uint64 hash, const char *key, int keylen,
			 uint64 tag, const char *payload, int len)
{
	int64		p;
	LWLock	   *lock;

	if (keylen > FS_CACHE_KEY_MAX || len < 0 || keylen + len > FS_CACHE_DATA)
	{
		fs_cache_count(slot, FS_CTR_DECLINED);
		return;
	}
	p = page_no(hash);
	lock = fs_page_lock(p);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	/* a writer committed after the tag was read: the value may predate that commit */
	if (slot_matches(&fs_cache_ctl->views[slot], view_id) &&
		pg_atomic_read_u64(&fs_cache_ctl->views[slot].gen) <= tag &&
		pg_atomic_read_u64(key_gen(hash)) <= tag)
	{
		if (fs_page_store(&fs_cache_pages[p], slot, key_tag(hash), key, keylen, tag, payload, len))
			fs_cache_count(slot, FS_CTR_FILLS);
		else
			/* over its share of a full cache, with none of its own entries here to replace */
			fs_cache_count(slot, FS_CTR_DECLINED);
	}
	LWLockRelease(lock);
}

/* The writer's commit step: new generation (and with free_slot, the view leaves the cache). */
void
fs_cache_bump(int32 view_id, bool free_slot)
{
	int			freed = -1;

	if (fs_cache_ctl == NULL)
		return;
	LWLockAcquire(fs_cache_ctl->viewlock, LW_EXCLUSIVE);
	for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
		if (slot_matches(&fs_cache_ctl->views[i], view_id))
		{
			pg_atomic_write_u64(&fs_cache_ctl->views[i].gen, new_gen());
			if (free_slot)
			{
				fs_cache_ctl->views[i].view_id = 0;
				freed = i;
			}
		}
	LWLockRelease(fs_cache_ctl->viewlock);
	if (freed >= 0)
		fs_cache_sweep_view(freed, view_id);
}

/*
 * fs_cache_bump for a standby's resolver (online_wal.c), which runs in no database: the view
 * of database dboid; view_id 0 = every view of dboid; dboid InvalidOid = every view of every
 * database.
 */
void
fs_cache_bump_in(Oid dboid, int32 view_id, bool free_slot)
{
	int			freed[FS_CACHE_MAX_VIEWS];
	int32		freed_view[FS_CACHE_MAX_VIEWS];
	int			nfreed = 0;

	if (fs_cache_ctl == NULL)
		return;
	LWLockAcquire(fs_cache_ctl->viewlock, LW_EXCLUSIVE);
	for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
	{
		FsViewSlot *s = &fs_cache_ctl->views[i];

		if (s->view_id == 0 || (OidIsValid(dboid) && s->dboid != dboid) ||
			(view_id != 0 && s->view_id != view_id))
			continue;
		pg_atomic_write_u64(&s->gen, new_gen());
		if (free_slot && view_id != 0)
		{
			freed[nfreed] = i;
			freed_view[nfreed++] = s->view_id;
			s->view_id = 0;
		}
	}
	LWLockRelease(fs_cache_ctl->viewlock);
	for (int i = 0; i < nfreed; i++)
		fs_cache_sweep_view(freed[i], freed_view[i]);
}

/*
 * A reader that found a view's write-side guard (the fingerprint of its aggregation source's
 * triggers) different from the slot's: the view gets a new generation first, then the guard is
 * recorded, so that whoever finds the guard equal to theirs reads the generation after the bump.
 */
void
fs_cache_view_guard(int slot, int32 view_id, uint64 guard)
{
	FsViewSlot *s = &fs_cache_ctl->views[slot];

	LWLockAcquire(fs_cache_ctl->viewlock, LW_EXCLUSIVE);
	if (slot_matches(s, view_id) && s->guard != guard)
	{
		pg_atomic_write_u64(&s->gen, new_gen());
		s->guard = guard;
	}
	LWLockRelease(fs_cache_ctl->viewlock);
}

/*
 * The writer's commit step for a few changed keys: ONE new number, and each key's K raised to
 * at least it (compare-and-swap max: concurrent committers never move K backwards). Keys of
 * other views sharing a key generation become stale too, which only costs them a read-through.
 */
void
fs_cache_bump_keys(const uint64 *hashes, int n)
{
	uint64		g;

	if (fs_cache_ctl == NULL || n == 0)
		return;
	g = new_gen();
	for (int i = 0; i < n; i++)
	{
		pg_atomic_uint64 *k = key_gen(hashes[i]);
		uint64		cur = pg_atomic_read_u64(k);

		while (cur < g && !pg_atomic_compare_exchange_u64(k, &cur, g))
			;
	}
}

/*
 * Starts loading the first lines of the entry whose tag matches (index prefetched earlier; read
 * without the lock: only a hint, the probe itself checks).
 */
static inline void
prefetch_match(int64 p, uint64 hash)
{
	const FsPage *pg = &fs_cache_pages[p];
	uint16		tag = key_tag(hash);

	for (int i = 0; i < FS_PAGE_SLOTS; i++)
		if (pg->tag[i] == tag && pg->off[i] >= FS_PAGE_INDEX / FS_UNIT && pg->off[i] < FS_PAGE_UNITS)
		{
			const char *e = (const char *) pg + pg->off[i] * FS_UNIT;

			prefetch_line(e);
			if (pg->off[i] * FS_UNIT + FS_LINE < FS_PAGE)
				prefetch_line(e + FS_LINE);
			return;
		}
}

/*
 * Batch probe with group prefetching: every key's page header and index first (its K and tags
 * are there), then, reading W (the hit rule of fs_cache_get) from the arrived headers, every
 * matching entry, then the probes. A whole chunk separates each prefetch from its use, so the
 * misses overlap instead of stalling one after another. The caller reads the fill tag C before
 * its snapshot (the order of W and C does not matter: W only decides hits, C only fills).
 * p[i].len = -1 on a miss.
 */
void
fs_cache_get_many(int slot, int32 view_id, FsCacheProbe *p, int n)
{
	int64	   *page = palloc(sizeof(int64) * Max(n, 1));
	FsViewSlot *s = &fs_cache_ctl->views[slot];
	bool		any_pending = fs_wal_any_pending();
	uint64		vgen;
	int			nhits = 0,
				nmisses = 0;

	for (int i = 0; i < n; i++)
	{
		p[i].len = -1;
		page[i] = -1;
		p[i].want = 0;
		if (p[i].keylen < 0)
			continue;
		page[i] = page_no(p[i].hash);
		prefetch_page(page[i]);
		/* a standby's pending invalidations, read before V and K (see fs_cache_want) */
		if (any_pending && fs_wal_pending(s->dboid, s->view_id, p[i].hash))
			p[i].want = PG_UINT64_MAX;
	}
	pg_memory_barrier();
	vgen = pg_atomic_read_u64(&s->gen);
	for (int i = 0; i < n; i++)
		if (page[i] >= 0)
		{
			p[i].want = Max(p[i].want, Max(vgen, pg_atomic_read_u64(key_gen(p[i].hash))));
			prefetch_match(page[i], p[i].hash);
		}
	pg_memory_barrier();
	for (int i = 0; i < n; i++)
		if (page[i] >= 0)
		{
			p[i].len = probe_page(page[i], slot, p[i].hash, p[i].key, p[i].keylen, p[i].want, p[i].buf);
			nhits += p[i].len >= 0;
		}
	/* statistics once per chunk, not once per key (atomics are shared cache lines) */
	for (int i = 0; i < n; i++)
		nmisses += p[i].keylen >= 0 && p[i].len < 0;
	if (nhits > 0)
		pg_atomic_fetch_add_u64(&fs_cache_ctl->views[slot].ctr[FS_CTR_HITS], nhits);
	if (nmisses > 0)
		pg_atomic_fetch_add_u64(&fs_cache_ctl->views[slot].ctr[FS_CTR_MISSES], nmisses);
	pfree(page);
}
