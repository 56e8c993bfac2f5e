/*
 * huge_alloc.c — allocations on transparent huge pages (see huge_alloc.h): the winners' table
 * of materialization and the arrays of a point-in-time join's batch.
 */
#include "postgres.h"

#include <sys/mman.h>

#include "utils/memutils.h"

#include "huge_alloc.h"

void *
fs_alloc_huge(MemoryContext cxt, Size size, Size huge_from, bool zero, char **raw)
{
	char	   *r;

#if defined(MADV_HUGEPAGE)
	if (size >= huge_from)
	{
		char	   *aligned;

		r = MemoryContextAllocExtended(cxt, size + FS_HUGE_PAGE, MCXT_ALLOC_HUGE);
		aligned = (char *) TYPEALIGN(FS_HUGE_PAGE, r);
		(void) madvise(aligned, TYPEALIGN_DOWN(FS_HUGE_PAGE, size), MADV_HUGEPAGE);
		/* zeroed after the advice, so that the first touch faults in huge pages */
		if (zero)
			memset(aligned, 0, size);
		if (raw)
			*raw = r;
		return aligned;
	}
#endif
	r = MemoryContextAllocExtended(cxt, Max(size, 1), MCXT_ALLOC_HUGE | (zero ? MCXT_ALLOC_ZERO : 0));
	if (raw)
		*raw = r;
	return r;
}

void *
fs_alloc_random(MemoryContext cxt, Size size)
{
#if defined(MADV_HUGEPAGE)
	if (size >= 64 * 1024 && size < 4 * FS_HUGE_PAGE)
	{
		char	   *raw = MemoryContextAllocExtended(cxt, TYPEALIGN(FS_HUGE_PAGE, size) + FS_HUGE_PAGE,
													 MCXT_ALLOC_HUGE);
		char	   *aligned = (char *) TYPEALIGN(FS_HUGE_PAGE, raw);

		(void) madvise(aligned, TYPEALIGN(FS_HUGE_PAGE, size), MADV_HUGEPAGE);
		return aligned;
	}
#endif
	return fs_alloc_huge(cxt, size, 4 * FS_HUGE_PAGE, false, NULL);
}
