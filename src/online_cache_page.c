/*
 * online_cache_page.c — the allocator of a cache page (layout in online_cache_int.h): variable-size
 * entries in 8-byte units packed from the end of the 4 kB page downwards, indexed by the page's
 * slots. A store reuses the key's own entry's slot, else a free slot and the free space below the
 * lowest entry; when there is not enough of either it first drops the page's dead entries (stale
 * generation, freed view: no eviction), then evicts live ones by CLOCK over the reference bytes
 * (each counted as an eviction of its view), then compacts the page by sliding the remaining
 * entries to its end. Every change happens between the page's change-counter increments (see
 * LAYOUT AND LOCKING in online_cache.c), with the page's lock held exclusive by the caller.
 */
#include "postgres.h"

#include "miscadmin.h"

#include "online_cache.h"
#include "online_cache_int.h"

/* A writer starts and ends changing a page: readers that overlapped it retry. */
static inline void
page_write_begin(FsPage *pg)
{
	pg_atomic_write_u32(&pg->seq, pg_atomic_read_u32(&pg->seq) + 1);
	pg_write_barrier();
}

static inline void
page_write_end(FsPage *pg)
{
	pg_write_barrier();
	pg_atomic_write_u32(&pg->seq, pg_atomic_read_u32(&pg->seq) + 1);
}

void
fs_page_init(FsPage *pg)
{
	memset(pg, 0, FS_PAGE_INDEX);
	pg_atomic_init_u32(&pg->seq, 0);
	for (int k = 0; k < FS_PAGE_KGENS; k++)
		pg_atomic_init_u64(&pg->keygen[k], 0);
	pg->top = FS_PAGE_UNITS;
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

/*
 * The slot of a key's entry in the page, live for want (any_gen: any entry of the key at all);
 * -1 when none. Also run by readers without the lock, against a page a writer may be changing:
 * offsets are bounded so that a torn index never points a read outside the page (the caller's
 * re-check of the change counter throws such a result away).
 */
int
fs_page_find(FsPage *pg, int slot, uint16 tag, const char *key, int keylen, bool any_gen, uint64 want)
{
	for (int i = 0; i < FS_PAGE_SLOTS; i++)
	{
		uint32		off;
		const FsEntry *e;

		if (pg->tag[i] != tag)
			continue;
		off = pg->off[i];
		if (off < FS_PAGE_INDEX / FS_UNIT || off * FS_UNIT + FS_ENTRY_HDR + keylen > FS_PAGE)
			continue;
		e = (const FsEntry *) ((const char *) pg + off * FS_UNIT);
		if (e->slot == slot && e->keylen == keylen && (any_gen || e->gen >= want) &&
			key_eq(e->data, key, keylen))
			return i;
	}
	return -1;
}

/* Units of view slot `slot` fewer (never below zero: a slot taken over starts again from zero). */
static inline void
used_sub(int slot, uint64 units)
{
	pg_atomic_uint64 *u = &fs_cache_ctl->views[slot].used;
	uint64		cur = pg_atomic_read_u64(u);

	while (!pg_atomic_compare_exchange_u64(u, &cur, cur > units ? cur - units : 0))
		;
}

/* Frees slot i of the page (its entry's units become a hole, reclaimed by compaction). */
void
fs_page_remove(FsPage *pg, int i)
{
	FsEntry    *e = fs_page_entry(pg, i);
	int			u = fs_entry_units(e);

	used_sub(e->slot, u);
	pg->used -= u;
	if (pg->off[i] == pg->top)
		pg->top += u;
	pg->off[i] = 0;
	pg->ref[i] = 0;
}

/* A free slot, -1 when every slot is taken. */
static inline int
free_slot(FsPage *pg)
{
	for (int i = 0; i < FS_PAGE_SLOTS; i++)
		if (pg->off[i] == 0)
			return i;
	return -1;
}

/* Slides every entry to the end of the page, in one copy (the page is being written: seq odd). */
static void
compact(FsPage *pg)
{
	char		tmp[FS_PAGE];
	int			top = FS_PAGE_UNITS;
	uint16		noff[FS_PAGE_SLOTS];

	for (int i = 0; i < FS_PAGE_SLOTS; i++)
	{
		int			u;

		noff[i] = 0;
		if (pg->off[i] == 0)
			continue;
		u = fs_entry_units(fs_page_entry(pg, i));
		top -= u;
		memcpy(tmp + top * FS_UNIT, fs_page_entry(pg, i), u * FS_UNIT);
		noff[i] = top;
	}
	memcpy((char *) pg + top * FS_UNIT, tmp + top * FS_UNIT, (FS_PAGE_UNITS - top) * FS_UNIT);
	memcpy(pg->off, noff, sizeof(noff));
	pg->top = top;
	Assert(FS_PAGE_UNITS - top == pg->used);
}

/*
 * Which of the page's live entries may be evicted for view slot `slot`, in pick[]: all of them,
 * except when the cache serves several databases, where each database's share is the cache's
 * units / (served databases). A database at or over its share only replaces its own entries;
 * one under its share first takes entries of a database over its share. False = none may go
 * (a database over its share with none of its entries here: the fill is declined).
 */
static bool
eviction_candidates(FsPage *pg, int slot, bool *pick)
{
	int			nserved = fs_cache_ctl->nserved;
	bool		any = false;
	Oid			dbs[FS_PAGE_SLOTS];
	Oid			mydb;
	int64		share;

	for (int i = 0; i < FS_PAGE_SLOTS; i++)
		any |= pick[i] = pg->off[i] != 0;
	if (nserved <= 1 || !any)
		return any;
	share = fs_cache_ctl->npages * FS_PAGE_DATA_UNITS / nserved;
	mydb = fs_cache_ctl->views[slot].dboid;
	for (int i = 0; i < FS_PAGE_SLOTS; i++)
		dbs[i] = pg->off[i] != 0 ? fs_cache_ctl->views[fs_page_entry(pg, i)->slot].dboid : InvalidOid;
	any = false;
	if (fs_cache_db_used(mydb) >= share)
	{
		for (int i = 0; i < FS_PAGE_SLOTS; i++)
			any |= pick[i] = pg->off[i] != 0 && dbs[i] == mydb;
		return any;
	}
	for (int i = 0; i < FS_PAGE_SLOTS; i++)
	{
		int			j;

		if (pg->off[i] == 0)
		{
			pick[i] = false;
			continue;
		}
		/* each database's usage once: an entry of a database seen before gets its answer */
		for (j = 0; j < i && (pg->off[j] == 0 || dbs[j] != dbs[i]); j++)
			;
		pick[i] = dbs[i] != mydb && (j < i ? pick[j] : fs_cache_db_used(dbs[i]) > share);
		any |= pick[i];
	}
	if (!any)
		for (int i = 0; i < FS_PAGE_SLOTS; i++)
			any |= pick[i] = pg->off[i] != 0;
	return any;
}

/* CLOCK over the candidates: the first one not referenced since the hand last passed it. */
static int
clock_victim(FsPage *pg, const bool *pick)
{
	int			first = -1;

	for (int n = 0; n < 2 * FS_PAGE_SLOTS; n++)
	{
		int			i = pg->hand;

		pg->hand = (pg->hand + 1) % FS_PAGE_SLOTS;
		if (!pick[i])
			continue;
		if (first < 0)
			first = i;
		if (pg->ref[i] == 0)
			return i;
		pg->ref[i] = 0;
	}
	return first;				/* readers kept setting bits: any candidate */
}

/*
 * Stores the key's entry tagged gen (replacing the key's entry if any); false when declined
 * (fairness between databases). The caller checked the protocol's conditions under the lock.
 */
bool
fs_page_store(FsPage *pg, int slot, uint16 tag, const char *key, int keylen, uint64 gen,
			  const char *payload, int len)
{
	int			units = FS_ENTRY_UNITS(keylen, len);
	int			s;
	bool		ok = true;
	FsEntry    *e;

	Assert(units <= FS_PAGE_DATA_UNITS);
	page_write_begin(pg);
	s = fs_page_find(pg, slot, tag, key, keylen, true, 0);
	if (s >= 0)
		fs_page_remove(pg, s);
	s = free_slot(pg);
	if (s < 0 || pg->top - FS_PAGE_INDEX / FS_UNIT < units)
	{
		/* dead entries first: reusing their memory evicts nothing */
		for (int i = 0; i < FS_PAGE_SLOTS; i++)
			if (pg->off[i] != 0 && !fs_cache_entry_is_live(pg, i))
				fs_page_remove(pg, i);
		while ((s = free_slot(pg)) < 0 || FS_PAGE_DATA_UNITS - pg->used < units)
		{
			bool		pick[FS_PAGE_SLOTS];
			int			v;

			if (!eviction_candidates(pg, slot, pick))
			{
				ok = false;
				break;
			}
			v = clock_victim(pg, pick);
			fs_cache_count(fs_page_entry(pg, v)->slot, FS_CTR_EVICTIONS);
			fs_page_remove(pg, v);
		}
		if (ok && pg->top - FS_PAGE_INDEX / FS_UNIT < units)
			compact(pg);
	}
	if (ok)
	{
		pg->top -= units;
		pg->used += units;
		pg->off[s] = pg->top;
		pg->tag[s] = tag;

		/*
		 * A new entry starts referenced (its filler just used it; the worker's load is a read
		 * of every row): readers then write the reference byte only after the CLOCK hand has
		 * cleared it, not at the first hit of every entry, each of which was a write to a
		 * line other CPUs read and, for a backend whose mapping of the page was read-only
		 * (mapped on a read fault), a write-protect fault (about 5 us here).
		 */
		pg->ref[s] = 1;
		e = fs_page_entry(pg, s);
		e->gen = gen;
		e->slot = (uint8) slot;
		e->len = (uint16) len;
		e->keylen = (uint8) keylen;
		memcpy(e->data, key, keylen);
		memcpy(e->data + keylen, payload, len);
		pg_atomic_fetch_add_u64(&fs_cache_ctl->views[slot].used, units);
	}
	page_write_end(pg);
	return ok;
}

/*
 * Removes every entry of view slot `slot` (freed: its memory is available at once). An unlocked
 * look first: most pages hold none.
 */
void
fs_cache_sweep_view(int slot, int32 view_id)
{
	for (int64 p = 0; p < fs_cache_ctl->npages; p++)
	{
		FsPage	   *pg = &fs_cache_pages[p];
		bool		any = false;

		for (int i = 0; i < FS_PAGE_SLOTS && !any; i++)
		{
			uint32		off = pg->off[i];

			any = off >= FS_PAGE_INDEX / FS_UNIT && off * FS_UNIT + FS_ENTRY_HDR <= FS_PAGE &&
				((FsEntry *) ((char *) pg + off * FS_UNIT))->slot == slot;
		}
		if (!any)
			continue;
		LWLockAcquire(fs_page_lock(p), LW_EXCLUSIVE);
		page_write_begin(pg);
		for (int i = 0; i < FS_PAGE_SLOTS; i++)
			if (pg->off[i] != 0 && fs_page_entry(pg, i)->slot == slot)
				fs_page_remove(pg, i);
		page_write_end(pg);
		LWLockRelease(fs_page_lock(p));
	}
}
