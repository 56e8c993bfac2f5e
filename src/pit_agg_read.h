/*
 * pit_agg_read.h — the events of an aggregation view's source for one batch of the point-in-time
 * join (pit_agg_read.c reads them, pit_agg.c evaluates them): fixed-size records, kept in
 * buffers per cache partition of the key table, so that the evaluation looks keys up and groups
 * events one partition at a time instead of at random over the whole table.
 */
#ifndef FS_PIT_AGG_READ_H
#define FS_PIT_AGG_READ_H

#include "pit_join_int.h"

/*
 * One event: its key hash, flags and event time, then d[]: [created time], keys, argument
 * values. Argument NULLs are bits of nullbits, or bytes after d[] when there are over 16.
 */
typedef struct AggRec
{
	uint32		h;
	uint8		c_null;
	uint8		pass;			/* the filter held (true without a filter) */
	uint16		nullbits;
	int64		e;				/* event time, comparison domain */
	Datum		d[FLEXIBLE_ARRAY_MEMBER];
} AggRec;

/* A run of records of one partition; a partition's chunks form a list. */
typedef struct AggChunk
{
	struct AggChunk *next;
	int			n;
	int			pad;
	char		recs[FLEXIBLE_ARRAY_MEMBER];
} AggChunk;

/*
 * The events of one read of the key hash range [hlo, hhi], by partition of their home cell.
 * A read that outgrows its budget gives up its highest partitions and lowers hhi (the caller
 * reads the rest later); when only the first partition is left it stops (over).
 */
typedef struct AggParts
{
	PitView    *v;
	uint32		hlo,
				hhi;
	uint32		clo;			/* home cell of hlo */
	int			pshift;			/* partition = (home cell - clo) >> pshift */
	int			np;				/* partitions still kept */
	int			koff;			/* index in d[] of the keys */
	int			aoff;			/* of the arguments */
	Size		stride;			/* bytes per record */
	Size		chunk_bytes;
	int			chunk_recs;
	AggChunk  **head;			/* per partition, newest chunk first */
	AggChunk   *free;			/* chunks of partitions given up */
	char	   *slab;			/* where chunks are cut from */
	Size		slab_left;
	Size	   *precs;			/* per partition: bytes of its records and by-reference values */
	Size	   *pbyref;			/* per partition: bytes of its by-reference values */
	Size		bytes;			/* memory the events of the partitions kept hold */
	Size		waste;			/* by-reference values of partitions given up (not freed) */
	Size		budget;
	double		offered;		/* rows offered so far */
	double		expected;		/* rows the source is expected to have */
	bool		over;
	int			narrowed;		/* times partitions were given up */
	MemoryContext cxt;
} AggParts;

#define AGG_REC_AT(pt, ch, i) ((AggRec *) ((ch)->recs + (Size) (i) * (pt)->stride))
#define AGG_REC_KEYS(pt, r) (&(r)->d[(pt)->koff])
#define AGG_REC_VALS(pt, r) (&(r)->d[(pt)->aoff])
#define AGG_REC_C(pt, r) ((pt)->v->col_created >= 0 ? DatumGetInt64((r)->d[0]) : 0)

static inline bool
agg_rec_argnull(AggParts *pt, AggRec *r, int a)
{
	if (pt->v->agg->nargs <= 16)
		return (r->nullbits >> a) & 1;
	return ((bool *) &r->d[pt->aoff + pt->v->agg->nargs])[a];
}

/* Home cell of a key hash in the batch's key table. */
#define AGG_HOME(v, h) ((uint32) ((uint64) (h) >> (v)->hshift))

/*
 * Reads the events of the keys of the batch whose hash is in [hlo, hhi] into pt (allocated in
 * cxt), within budget bytes: on return pt->hhi may be lower than hhi, or pt->over set (see
 * AggParts); returns the rows read. sql is the SELECT of the view's columns for SPI sources.
 */
extern uint64 pit_agg_read(AggParts *pt, PitView *v, const char *sql, uint32 hlo, uint32 hhi,
						   Size budget, double expected, MemoryContext cxt);

#endif
