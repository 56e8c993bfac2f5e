/*
 * radix_sort.h — a stable LSD radix sort of items by a uint64 key, 16 bits per pass, skipping
 * the digits that are equal in every item (TIDs, hashes and small integers then take one to four
 * passes), the two buffers swapping roles between passes: much cheaper than a comparison sort
 * on millions of items.
 *
 * A template, as PostgreSQL's lib/sort_template.h: define RS_NAME (the function's name),
 * RS_ELEMENT (the item type) and RS_KEY(x) (the uint64 key of item x), then include this file.
 * It defines
 *     static void RS_NAME(RS_ELEMENT *a, size_t n, RS_ELEMENT *tmp, int from, MemoryContext cxt)
 * which sorts a[0..n) by bits [from, 64) of the key; tmp has room for n items, cxt holds the
 * digit counts while it runs. Included once per item type, so the loops stay specialized.
 */
#include "postgres.h"

#ifndef RS_NAME
#error "define RS_NAME, RS_ELEMENT and RS_KEY before including radix_sort.h"
#endif

static void
RS_NAME(RS_ELEMENT *a, size_t n, RS_ELEMENT *tmp, int from, MemoryContext cxt)
{
	uint64		orv = 0,
				andv = ~UINT64CONST(0);
	RS_ELEMENT *src = a,
			   *dst = tmp;
	uint32	   *count;

	if (n < 2)
		return;
	for (size_t i = 0; i < n; i++)
	{
		orv |= RS_KEY(a[i]) >> from;
		andv &= RS_KEY(a[i]) >> from;
	}
	count = MemoryContextAlloc(cxt, sizeof(uint32) * 65536);
	for (int shift = from; shift < 64; shift += 16)
	{
		uint32		sum = 0;
		RS_ELEMENT *t;

		if ((((orv ^ andv) >> (shift - from)) & 0xFFFF) == 0)
			continue;			/* this digit is the same in every item */
		memset(count, 0, sizeof(uint32) * 65536);
		for (size_t i = 0; i < n; i++)
			count[(RS_KEY(src[i]) >> shift) & 0xFFFF]++;
		for (int d = 0; d < 65536; d++)
		{
			uint32		c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(RS_KEY(src[i]) >> shift) & 0xFFFF]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, sizeof(RS_ELEMENT) * n);
	pfree(count);
}

#undef RS_NAME
#undef RS_ELEMENT
#undef RS_KEY
