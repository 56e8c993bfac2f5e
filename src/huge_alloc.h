/*
 * huge_alloc.h — large arrays probed at random (hash tables, sort buffers, a join's slots) on
 * transparent huge pages: with 4 kB pages both the first touch (page faults) and the TLB misses
 * of random probes cost more than the probes themselves. Linux with THP in madvise mode;
 * elsewhere plain allocations.
 */
#ifndef FS_HUGE_ALLOC_H
#define FS_HUGE_ALLOC_H

#include "postgres.h"

/* The size of a transparent huge page (x86-64, arm64 with 4 kB base pages). */
#define FS_HUGE_PAGE ((Size) 2 * 1024 * 1024)

/*
 * size bytes in cxt (zeroed when zero); from huge_from bytes on aligned to FS_HUGE_PAGE and
 * offered huge pages. *raw (when raw is not NULL) is the chunk to pfree; else the array lives
 * as long as cxt.
 */
extern void *fs_alloc_huge(MemoryContext cxt, Size size, Size huge_from, bool zero, char **raw);

/*
 * For a smaller array probed on every row (a bloom filter): on one huge page from 64 kB on, so
 * that its probes do not compete for TLB entries with a scan. Lives as long as cxt.
 */
extern void *fs_alloc_random(MemoryContext cxt, Size size);

#endif
