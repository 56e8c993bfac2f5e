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
 *  - the key generation K (one per cache bucket, shared by every key whose home bucket it is):
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
 *           C, under the bucket locks, only if still V <= C and K(key) <= C.
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
 * Fixed-size entries (FS_CACHE_DATA bytes of key image + payload) in 8-way buckets. Each bucket
 * has a header of one cache line: the key generation K of the keys whose home it is, a change
 * counter, the entries' 32-bit hash tags and how many cache lines each entry's bytes span. A
 * probe touches its bucket's header line (K and tags together) and then only the used lines of
 * the matching entry. A key may live in either of two buckets chosen by its hash (two-choice
 * hashing, so the cache fills to ~95% before evicting). FS_CACHE_NLOCKS LWLocks each guard
 * every FS_CACHE_NLOCKS-th bucket against other writers: a fill takes both buckets' locks
 * exclusive, in address order (no deadlock). Duplicates of a key in both buckets are impossible
 * (a fill looks in both under both locks).
 * Readers take no lock (a shared LWLock acquisition writes the lock's cache line, which bounces
 * between CPUs under concurrency): the bucket's change counter works like PostgreSQL's
 * st_changecount (pgstat_begin_write_activity). A writer, holding the exclusive lock, makes it
 * odd before changing any entry, header tag or line count of the bucket and even again after;
 * a reader reads it, probes and copies, and reads it again: equal and even, the copy is
 * consistent; otherwise it probes again under the shared lock, which waits for the writer
 * (never spinning on a writer that lost its CPU). Lengths read during a write are clamped, so
 * a torn copy never reads or writes out of bounds before it is thrown away.
 * When both buckets are full of live entries, the victim in the first is chosen by
 * CLOCK (reference bits, set by readers without a lock — a benign race). Stale
 * entries (older generation or freed view) are reused before valid ones; replacing a valid
 * entry counts as an eviction. Rows too large for an entry are declined (counted) and always
 * read through. View slots (generation, loaded generation, counters) are guarded by one
 * LWLock; counters and key generations are atomics.
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

static int64 db_used(Oid dboid);

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
		pg_atomic_write_u32(&s->used, 0);
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

/*
 * A key's two candidate buckets ("two-choice" hashing keeps buckets from overflowing early):
 * its home bucket, whose K applies to it, and a second one.
 */
static inline int64
home_bucket(uint64 hash)
{
	return (int64) (hash % (uint64) fs_cache_ctl->nbuckets);
}

static inline int64
second_bucket(uint64 hash)
{
	return (int64) (((hash >> 32) ^ (hash * 0x9E3779B97F4A7C15ULL)) % (uint64) fs_cache_ctl->nbuckets);
}

static inline void
key_buckets(uint64 hash, int64 *b1, int64 *b2)
{
	*b1 = home_bucket(hash);
	*b2 = second_bucket(hash);
}

/* The key generation K of a key: its home bucket's. */
static inline pg_atomic_uint64 *
key_gen(uint64 hash)
{
	return &fs_cache_buckets[home_bucket(hash)].keygen;
}

/* The tag of a key in its buckets' headers (the hash's high half: the low half picks b1). */
static inline uint32
key_tag(uint64 hash)
{
	return (uint32) (hash >> 32);
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

/* Lock striping: bucket b is guarded by lock b mod FS_CACHE_NLOCKS. */
static inline LWLock *
bucket_lock(int64 bucket)
{
	return &((LWLockPadded *) fs_cache_ctl->locks)[bucket % FS_CACHE_NLOCKS].lock;
}

/* Key images are mostly one 8-byte Datum: compare those without a memcmp call. */
static inline bool
key_eq(const char *a, const char *b, int len)
{
	if (len == 8)
	{
		uint64		x,
					y;

		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		return x == y;
	}
	return memcmp(a, b, len) == 0;
}

/* The entry of a key in bucket b, live for want (any_gen: any entry of the key at all). */
static inline FsEntry *
find_in_bucket(int64 b, int slot, int32 view_id, uint64 hash, const char *key, int keylen, bool any_gen, uint64 want)
{
	FsEntry    *e = &fs_cache_entries[b * FS_CACHE_WAYS];
	const uint32 *t = fs_cache_buckets[b].tag;
	uint32		tag = key_tag(hash);

	/* the header's tags first: entries are touched only on a match */
	for (int w = 0; w < FS_CACHE_WAYS; w++, e++)
		if (t[w] == tag && e->view_id == view_id && e->slot == slot && (any_gen || e->gen >= want) &&
			e->keylen == keylen && key_eq(e->data, key, keylen))
			return e;
	return NULL;
}

/*
 * Copies the payload of the key's live entry in bucket b into buf: the entry (NULL when the
 * bucket has none), its length in *len. The length is read once and clamped: a copy torn by
 * a writer must not overrun buf before the caller throws it away.
 */
static inline FsEntry *
copy_from_bucket(int64 b, int slot, int32 view_id, uint64 hash, const char *key, int keylen, uint64 want,
				 char *buf, int *len)
{
	FsEntry    *e = find_in_bucket(b, slot, view_id, hash, key, keylen, false, want);

	*len = -1;
	if (e)
	{
		int			l = *(volatile uint16 *) &e->len;

		*len = Min(l, FS_CACHE_DATA - keylen);
		memcpy(buf, e->data + keylen, *len);
	}
	return e;
}

/*
 * The payload of the key's live entry in bucket b copied into buf: its length, -1 when the
 * bucket has none. Without a lock while no writer is at work (see LAYOUT AND LOCKING).
 */
static int
probe_bucket(int64 b, int slot, int32 view_id, uint64 hash, const char *key, int keylen, uint64 want, char *buf)
{
	FsBucket   *bk = &fs_cache_buckets[b];
	LWLock	   *lock = NULL;
	FsEntry    *e = NULL;
	int			len = -1;

	for (int attempt = 0; attempt < 2; attempt++)
	{
		uint32		seq = pg_atomic_read_u32(&bk->seq);

		if (seq & 1)
			break;
		pg_read_barrier();
		e = copy_from_bucket(b, slot, view_id, hash, key, keylen, want, buf, &len);
		pg_read_barrier();
		if (pg_atomic_read_u32(&bk->seq) == seq)
			goto done;
	}
	/* a writer is (or just was) at work: wait for it on the shared lock */
	lock = bucket_lock(b);
	LWLockAcquire(lock, LW_SHARED);
	e = copy_from_bucket(b, slot, view_id, hash, key, keylen, want, buf, &len);
done:
	if (e && e->ref == 0)
		e->ref = 1;				/* no write (no dirty line) when already set */
	if (lock)
		LWLockRelease(lock);
	return len;
}

/* Probes both candidate buckets; copies the payload out on a hit. */
int
fs_cache_get(int slot, int32 view_id, uint64 hash, const char *key, int keylen,
			 uint64 want, char *buf)
{
	int64		b[2];

	key_buckets(hash, &b[0], &b[1]);
	for (int i = 0; i < 2; i++)
	{
		int			len;

		if (i == 1 && b[1] == b[0])
			break;
		len = probe_bucket(b[i], slot, view_id, hash, key, keylen, want, buf);
		if (len >= 0)
			return len;
	}
	return -1;
}

/* First dead (empty, older generation or freed view) entry of a bucket. */
static inline FsEntry *
dead_in_bucket(int64 b)
{
	FsEntry    *e = &fs_cache_entries[b * FS_CACHE_WAYS];

	for (int w = 0; w < FS_CACHE_WAYS; w++, e++)
		if (!fs_cache_entry_is_live(e))
			return e;
	return NULL;
}

static inline int
count_dead(int64 b)
{
	FsEntry    *e = &fs_cache_entries[b * FS_CACHE_WAYS];
	int			n = 0;

	for (int w = 0; w < FS_CACHE_WAYS; w++, e++)
		n += !fs_cache_entry_is_live(e);
	return n;
}

/* A writer (holding the bucket's lock exclusive) starts and ends changing a bucket. */
static inline void
bucket_write_begin(FsBucket *bk)
{
	pg_atomic_write_u32(&bk->seq, pg_atomic_read_u32(&bk->seq) + 1);
	pg_write_barrier();
}

static inline void
bucket_write_end(FsBucket *bk)
{
	pg_write_barrier();
	pg_atomic_write_u32(&bk->seq, pg_atomic_read_u32(&bk->seq) + 1);
}

/* One entry of a slot fewer (never below zero: a slot taken over starts again from zero). */
static inline void
used_dec(int slot)
{
	pg_atomic_uint32 *u = &fs_cache_ctl->views[slot].used;
	uint32		cur = pg_atomic_read_u32(u);

	while (cur > 0 && !pg_atomic_compare_exchange_u32(u, &cur, cur - 1))
		;
}

/*
 * The entries a database holds: the sum of its view slots' counts (an unlocked, approximate
 * figure: entries of a slot taken over by another database are not moved with it).
 */
static int64
db_used(Oid dboid)
{
	int64		n = 0;

	for (int i = 0; i < FS_CACHE_MAX_VIEWS; i++)
		if (fs_cache_ctl->views[i].dboid == dboid && fs_cache_ctl->views[i].view_id != 0)
			n += pg_atomic_read_u32(&fs_cache_ctl->views[i].used);
	return n;
}

/*
 * CLOCK over the entries of both buckets that `pick` accepts (reference bits cleared on the
 * way); NULL when it accepts none.
 */
static FsEntry *
clock_among(int64 b1, int64 b2, bool *pick)
{
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < 2 * FS_CACHE_WAYS; i++)
		{
			FsEntry    *e = &fs_cache_entries[(i < FS_CACHE_WAYS ? b1 : b2) * FS_CACHE_WAYS + i % FS_CACHE_WAYS];

			if (!pick[i])
				continue;
			if (e->ref == 0)
				return e;
			e->ref = 0;
		}
	return NULL;
}

/*
 * Fairness between databases when both buckets are full of live entries and the cache serves
 * several databases: each database's share is cache_size / (served databases). A database at
 * or over its share only replaces its own entries (*decline when these buckets hold none); one
 * under its share first takes an entry of a database over its share; NULL = plain CLOCK.
 */
static FsEntry *
fair_victim(int slot, int64 b1, int64 b2, bool *decline)
{
	int			nserved = Max(fs_cache_ctl->nserved, 1);
	int64		share = fs_cache_ctl->nentries / nserved;
	Oid			mydb = fs_cache_ctl->views[slot].dboid;
	Oid			dbs[2 * FS_CACHE_WAYS];
	bool		pick[2 * FS_CACHE_WAYS];
	bool		any = false;
	FsEntry    *v;

	for (int i = 0; i < 2 * FS_CACHE_WAYS; i++)
	{
		FsEntry    *e = &fs_cache_entries[(i < FS_CACHE_WAYS ? b1 : b2) * FS_CACHE_WAYS + i % FS_CACHE_WAYS];

		dbs[i] = fs_cache_ctl->views[e->slot].dboid;
	}
	if (db_used(mydb) >= share)
	{
		for (int i = 0; i < 2 * FS_CACHE_WAYS; i++)
			any |= pick[i] = dbs[i] == mydb;
		v = any ? clock_among(b1, b2, pick) : NULL;
		*decline = v == NULL;
		return v;
	}
	for (int i = 0; i < 2 * FS_CACHE_WAYS; i++)
	{
		int			j;

		/* each database's count once: an entry of a database seen before gets its answer */
		for (j = 0; j < i && dbs[j] != dbs[i]; j++)
			;
		pick[i] = dbs[i] != mydb && (j < i ? pick[j] : db_used(dbs[i]) > share);
		any |= pick[i];
	}
	return any ? clock_among(b1, b2, pick) : NULL;
}

/*
 * The reader's fill (and the worker's load): stores under both bucket locks unless V or the
 * key's K moved past the fill tag (read before the snapshot), replacing the key's entry, else a
 * dead entry of the less loaded bucket, else a CLOCK victim (an eviction).
 */
void
fs_cache_put(int slot, int32 view_id, uint64 hash, const char *key, int keylen,
			 uint64 tag, const char *payload, int len)
{
	int64		b1,
				b2;
	LWLock	   *l1,
			   *l2;
	FsEntry    *victim;
	FsBucket   *bk;
	int			w;

	if (keylen > FS_CACHE_KEY_MAX || keylen + len > FS_CACHE_DATA)
	{
		fs_cache_count(slot, FS_CTR_DECLINED);
		return;
	}
	key_buckets(hash, &b1, &b2);
	l1 = bucket_lock(b1);
	l2 = bucket_lock(b2);
	/* both buckets' locks, in address order (no deadlock), once if they are the same */
	if (l2 < l1)
	{
		LWLock	   *t = l1;

		l1 = l2;
		l2 = t;
	}
	LWLockAcquire(l1, LW_EXCLUSIVE);
	if (l2 != l1)
		LWLockAcquire(l2, LW_EXCLUSIVE);
	/* a writer committed after the tag was read: the value may predate that commit */
	if (!slot_matches(&fs_cache_ctl->views[slot], view_id) ||
		pg_atomic_read_u64(&fs_cache_ctl->views[slot].gen) > tag ||
		pg_atomic_read_u64(key_gen(hash)) > tag)
		goto done;
	victim = find_in_bucket(b1, slot, view_id, hash, key, keylen, true, 0);
	if (victim == NULL)
		victim = find_in_bucket(b2, slot, view_id, hash, key, keylen, true, 0);
	if (victim == NULL)
	{
		/* the less loaded of the two buckets (power of two choices) */
		int			d1 = count_dead(b1),
					d2 = count_dead(b2);

		victim = d1 >= d2 ? dead_in_bucket(b1) : dead_in_bucket(b2);
	}
	if (victim == NULL && fs_cache_ctl->nserved > 1)
	{
		bool		decline = false;

		victim = fair_victim(slot, b1, b2, &decline);
		if (decline)
		{
			/* over its share of a full cache, with none of its own entries here to replace */
			fs_cache_count(slot, FS_CTR_DECLINED);
			goto done;
		}
		if (victim)
			fs_cache_count(victim->slot, FS_CTR_EVICTIONS);
	}
	if (victim == NULL)
	{
		/* CLOCK over the first bucket: clear reference bits until an unreferenced entry turns up */
		FsEntry    *base = &fs_cache_entries[b1 * FS_CACHE_WAYS];

		for (int pass = 0; pass < 2 && victim == NULL; pass++)
			for (int w = 0; w < FS_CACHE_WAYS && victim == NULL; w++)
			{
				if (base[w].ref == 0)
					victim = &base[w];
				else
					base[w].ref = 0;
			}
		fs_cache_count(victim->slot, FS_CTR_EVICTIONS);
	}
	bk = &fs_cache_buckets[(victim - fs_cache_entries) / FS_CACHE_WAYS];
	w = (victim - fs_cache_entries) % FS_CACHE_WAYS;
	bucket_write_begin(bk);
	if (victim->view_id != 0)
		used_dec(victim->slot);
	pg_atomic_fetch_add_u32(&fs_cache_ctl->views[slot].used, 1);
	victim->view_id = view_id;
	victim->slot = (uint16) slot;
	victim->home = (uint32) b1;
	victim->gen = tag;
	victim->keylen = (uint8) keylen;
	victim->len = (uint16) len;
	victim->ref = 0;
	memcpy(victim->data, key, keylen);
	memcpy(victim->data + keylen, payload, len);
	bk->tag[w] = key_tag(hash);
	bk->lines[w] = (uint8) ((offsetof(FsEntry, data) + keylen + len + FS_LINE - 1) / FS_LINE);
	bucket_write_end(bk);
	fs_cache_count(slot, FS_CTR_FILLS);
done:
	if (l2 != l1)
		LWLockRelease(l2);
	LWLockRelease(l1);
}

/* Clears every entry of a freed view (of slot `slot`) so that its memory is available at once. */
void
fs_cache_sweep_view(int slot, int32 view_id)
{
	for (int64 b = 0; b < fs_cache_ctl->nbuckets; b++)
	{
		FsEntry    *e = &fs_cache_entries[b * FS_CACHE_WAYS];
		bool		any = false;

		for (int w = 0; w < FS_CACHE_WAYS; w++)
			any |= e[w].view_id == view_id && e[w].slot == slot;
		if (!any)
			continue;
		LWLockAcquire(bucket_lock(b), LW_EXCLUSIVE);
		bucket_write_begin(&fs_cache_buckets[b]);
		for (int w = 0; w < FS_CACHE_WAYS; w++)
			if (e[w].view_id == view_id && e[w].slot == slot)
			{
				e[w].view_id = 0;
				used_dec(slot);
			}
		bucket_write_end(&fs_cache_buckets[b]);
		LWLockRelease(bucket_lock(b));
	}
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
 * other views sharing a home bucket become stale too, which only costs them a read-through.
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

/* Starts loading a bucket's header (K, tags and line counts: one cache line). */
static inline void
prefetch_bucket(int64 b)
{
	prefetch_line(&fs_cache_buckets[b]);
}

/*
 * Starts loading the used lines of the entry whose tag matches (header prefetched earlier; read
 * without the lock: only a hint, the probe itself checks).
 */
static inline void
prefetch_match(int64 b, uint64 hash)
{
	const FsBucket *bk = &fs_cache_buckets[b];
	uint32		tag = key_tag(hash);

	for (int w = 0; w < FS_CACHE_WAYS; w++)
		if (bk->tag[w] == tag)
		{
			const char *e = (const char *) &fs_cache_entries[b * FS_CACHE_WAYS + w];

			for (int l = 0; l < bk->lines[w] && l < (int) (sizeof(FsEntry) / FS_LINE); l++)
				prefetch_line(e + l * FS_LINE);
			return;
		}
}

/*
 * Batch probe with group prefetching: every key's home bucket header first (its K and tags are
 * in that one line), then, reading W (the hit rule of fs_cache_get) from the arrived headers,
 * every matching entry, then the probes; then the same for the second buckets of the keys still
 * missing. A whole chunk separates each prefetch from its use, so the misses overlap instead of
 * stalling one after another. The caller reads the fill tag C before its snapshot (the order of
 * W and C does not matter: W only decides hits, C only fills). p[i].len = -1 on a miss.
 */
void
fs_cache_get_many(int slot, int32 view_id, FsCacheProbe *p, int n)
{
	int64	   *bucket = palloc(sizeof(int64) * Max(n, 1));
	FsViewSlot *s = &fs_cache_ctl->views[slot];
	bool		any_pending = fs_wal_any_pending();
	uint64		vgen;
	int			nhits = 0,
				nmisses = 0;

	for (int i = 0; i < n; i++)
	{
		p[i].len = -1;
		bucket[i] = -1;
		p[i].want = 0;
		if (p[i].keylen < 0)
			continue;
		bucket[i] = home_bucket(p[i].hash);
		prefetch_bucket(bucket[i]);
		/* a standby's pending invalidations, read before V and K (see fs_cache_want) */
		if (any_pending && fs_wal_pending(s->dboid, s->view_id, p[i].hash))
			p[i].want = PG_UINT64_MAX;
	}
	pg_memory_barrier();
	vgen = pg_atomic_read_u64(&s->gen);
	for (int i = 0; i < n; i++)
		if (bucket[i] >= 0)
		{
			p[i].want = Max(p[i].want, Max(vgen, pg_atomic_read_u64(&fs_cache_buckets[bucket[i]].keygen)));
			prefetch_match(bucket[i], p[i].hash);
		}
	pg_memory_barrier();
	for (int pass = 0; pass < 2; pass++)
	{
		int			m = 0;

		if (pass == 1)
		{
			/* the keys not in their home bucket (still in bucket[i]): their second bucket */
			for (int i = 0; i < n; i++)
			{
				int64		b2;

				if (bucket[i] < 0 || p[i].len >= 0)
				{
					bucket[i] = -1;
					continue;
				}
				b2 = second_bucket(p[i].hash);
				bucket[i] = b2 == bucket[i] ? -1 : b2;
				if (bucket[i] >= 0)
					prefetch_bucket(bucket[i]), m++;
			}
			if (m == 0)
				break;
			for (int i = 0; i < n; i++)
				if (bucket[i] >= 0)
					prefetch_match(bucket[i], p[i].hash);
		}
		for (int i = 0; i < n; i++)
			if (bucket[i] >= 0)
			{
				p[i].len = probe_bucket(bucket[i], slot, view_id, p[i].hash, p[i].key, p[i].keylen,
										p[i].want, p[i].buf);
				nhits += p[i].len >= 0;
			}
	}
	/* statistics once per chunk, not once per key (atomics are shared cache lines) */
	for (int i = 0; i < n; i++)
		nmisses += p[i].keylen >= 0 && p[i].len < 0;
	if (nhits > 0)
		pg_atomic_fetch_add_u64(&fs_cache_ctl->views[slot].ctr[FS_CTR_HITS], nhits);
	if (nmisses > 0)
		pg_atomic_fetch_add_u64(&fs_cache_ctl->views[slot].ctr[FS_CTR_MISSES], nmisses);
	pfree(bucket);
}
