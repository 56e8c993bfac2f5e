/*
 * online_payload.c — the cache payload of a latest-value row: a 20-byte header (found, event and
 * creation times) and the row's served jsonb, {"view": {"feature": value, ...}}, compacted.
 *
 * Every row of a view has the same jsonb skeleton: the root object's header and key, the inner
 * object's header, its key entries and its key strings (jsonb sorts keys, and the read plan
 * always builds every feature, nulls included). Only the root's value entry, the inner value
 * entries and the values themselves differ (the root's value entry is the inner object's length,
 * implied by the total). So a view's template, the jsonb of a row whose features are all null, is
 * built once per backend, and a payload keeps only the bytes where a row differs from it: for the
 * benchmark's 4 features, about 62 of 136 bytes. Hits rebuild the jsonb
 * with three copies (no parsing, no conversions). A row whose skeleton is not the template's
 * (which the encoder checks byte for byte) is stored whole. The template's fingerprint is in
 * the header, so a payload is never rebuilt with another template (a miss then, and refilled).
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "online_cache.h"
#include "online_payload.h"

typedef struct FsPayloadHdr
{
	int64		event_ts;
	int64		created_ts;
	int32		flags;
} FsPayloadHdr;

#define PAYLOAD_FOUND		1
#define PAYLOAD_CREATED_NULL 2
#define PAYLOAD_COMPACT		4
#define PAYLOAD_FP_SHIFT	8		/* bits 8-31: the template's fingerprint (compact payloads) */
#define PAYLOAD_HDR_LEN		(offsetof(FsPayloadHdr, flags) + sizeof(int32))
#define PAYLOAD_JSONB_OFF	INTALIGN(PAYLOAD_HDR_LEN)

/* Offsets in a row's jsonb (varlena header included), from the template (see above). */
typedef struct FsPayloadTmpl
{
	bool		usable;
	int			keyend;			/* end of the root's key string */
	int			vje;			/* the inner object's value entries */
	int			kstart;			/* its key strings */
	int			kend;			/* its values */
	uint32		fp;				/* fingerprint of the skeleton, 24 bits */
	char	   *bytes;			/* the template jsonb (kend bytes) */
} FsPayloadTmpl;

#define ROOT_VALUE_ENTRY	(VARHDRSZ + 2 * sizeof(uint32))	/* root header, key entry */

static void
push_key(JsonbParseState **st, const char *s)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) s;
	k.val.string.len = strlen(s);
	pushJsonbValue(st, WJB_KEY, &k);
}

/* The view's template, built on first use in the view's memory context. */
static FsPayloadTmpl *
tmpl(FsOnlineView *ov)
{
	FsPayloadTmpl *t = ov->payload_tmpl;

	if (t == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(ov));
		JsonbParseState *st = NULL;
		JsonbValue	null;
		JsonbValue *res;
		Jsonb	   *j;
		JsonbContainer *inner;
		uint32		rootval;
		int			c;
		int			n = ov->view->nfeatures;

		t = palloc0(sizeof(FsPayloadTmpl));
		null.type = jbvNull;
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		push_key(&st, ov->view->name);
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		for (int i = 0; i < n; i++)
		{
			push_key(&st, ov->view->features[i].name);
			pushJsonbValue(&st, WJB_VALUE, &null);
		}
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
		res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
		j = JsonbValueToJsonb(res);
		/* root: one pair whose value is a container right after the (int-aligned) key */
		memcpy(&rootval, (char *) j + ROOT_VALUE_ENTRY, sizeof(uint32));
		c = INTALIGN(ROOT_VALUE_ENTRY + sizeof(uint32) + strlen(ov->view->name));
		inner = (JsonbContainer *) ((char *) j + c);
		if (n > 0 && JB_ROOT_COUNT(j) == 1 && JBE_ISCONTAINER(rootval) &&
			(inner->header & JB_CMASK) == (uint32) n && (inner->header & JB_FOBJECT))
		{
			t->keyend = ROOT_VALUE_ENTRY + sizeof(uint32) + strlen(ov->view->name);
			t->vje = c + sizeof(uint32) * (1 + n);
			t->kstart = c + sizeof(uint32) * (1 + 2 * n);
			t->kend = t->kstart + getJsonbOffset(inner, n);
			t->usable = t->kend == (int) VARSIZE(j);	/* null values take no bytes */
			t->bytes = (char *) j;
			t->fp = hash_bytes((const unsigned char *) j + VARHDRSZ, t->kend - VARHDRSZ) & 0xFFFFFF;
		}
		ov->payload_tmpl = t;
		MemoryContextSwitchTo(old);
	}
	return t;
}

/*
 * The root's value entry of a row's jsonb of len bytes: the inner object's length, padding
 * included (a length, not an offset: it is the root's second entry).
 */
static inline uint32
root_value_entry(FsPayloadTmpl *t, int len)
{
	return JENTRY_ISCONTAINER | (uint32) (len - t->keyend);
}

/*
 * Does the row's jsonb have the template's skeleton (every byte outside the inner object's
 * value entries and values, the root's value entry being the one its length implies)?
 */
static bool
fits_template(FsPayloadTmpl *t, const char *r, int len)
{
	uint32		rootval;

	if (!t->usable || len < t->kend)
		return false;
	memcpy(&rootval, r + ROOT_VALUE_ENTRY, sizeof(uint32));
	return rootval == root_value_entry(t, len) &&
		memcmp(r + VARHDRSZ, t->bytes + VARHDRSZ, ROOT_VALUE_ENTRY - VARHDRSZ) == 0 &&
		memcmp(r + ROOT_VALUE_ENTRY + 4, t->bytes + ROOT_VALUE_ENTRY + 4, t->vje - ROOT_VALUE_ENTRY - 4) == 0 &&
		memcmp(r + t->kstart, t->bytes + t->kstart, t->kend - t->kstart) == 0;
}

/* See online_payload.h. */
int
fs_payload_encode(FsOnlineView *ov, const FsOnlineRow *row, char *buf)
{
	FsPayloadHdr h = {0};
	int			len = PAYLOAD_JSONB_OFF;

	h.flags = row->found ? PAYLOAD_FOUND : 0;
	if (row->found)
	{
		const char *r = (const char *) row->features;
		int			rlen = VARSIZE(row->features);
		FsPayloadTmpl *t = tmpl(ov);

		h.event_ts = row->event_ts;
		h.created_ts = row->created_ts;
		if (row->created_null)
			h.flags |= PAYLOAD_CREATED_NULL;
		if (fits_template(t, r, rlen))
		{
			int			nje = t->kstart - t->vje;

			len = PAYLOAD_HDR_LEN + nje + (rlen - t->kend);
			if (len > FS_CACHE_DATA)
				return len;		/* caller's put declines it */
			h.flags |= PAYLOAD_COMPACT | (int32) (t->fp << PAYLOAD_FP_SHIFT);
			memcpy(buf + PAYLOAD_HDR_LEN, r + t->vje, nje);
			memcpy(buf + PAYLOAD_HDR_LEN + nje, r + t->kend, rlen - t->kend);
		}
		else
		{
			if (len + rlen > FS_CACHE_DATA)
				return len + rlen;
			memcpy(buf + len, r, rlen);
			len += rlen;
		}
	}
	memcpy(buf, &h, PAYLOAD_HDR_LEN);
	return len;
}

/* See online_payload.h. */
bool
fs_payload_decode(FsOnlineView *ov, char *buf, int len, FsOnlineRow *row, bool copy)
{
	FsPayloadHdr h;

	if (len < (int) PAYLOAD_HDR_LEN)
		return false;
	memcpy(&h, buf, PAYLOAD_HDR_LEN);
	row->found = (h.flags & PAYLOAD_FOUND) != 0;
	if (!row->found)
		return true;
	row->event_ts = h.event_ts;
	row->created_ts = h.created_ts;
	row->created_null = (h.flags & PAYLOAD_CREATED_NULL) != 0;
	if (h.flags & PAYLOAD_COMPACT)
	{
		FsPayloadTmpl *t = tmpl(ov);
		int			nje = t->kstart - t->vje;
		int			vlen = len - (int) PAYLOAD_HDR_LEN - nje;
		char	   *j;
		uint32		rootval;

		if (!t->usable || ((uint32) h.flags >> PAYLOAD_FP_SHIFT) != t->fp || vlen < 0)
			return false;		/* another skeleton: a miss */
		j = palloc(t->kend + vlen);
		memcpy(j, t->bytes, t->kend);
		SET_VARSIZE(j, t->kend + vlen);
		rootval = root_value_entry(t, t->kend + vlen);
		memcpy(j + ROOT_VALUE_ENTRY, &rootval, sizeof(uint32));
		memcpy(j + t->vje, buf + PAYLOAD_HDR_LEN, nje);
		memcpy(j + t->kend, buf + PAYLOAD_HDR_LEN + nje, vlen);
		row->features = (Jsonb *) j;
		return true;
	}
	if (len < (int) PAYLOAD_JSONB_OFF + (int) VARHDRSZ)
		return false;
	row->features = (Jsonb *) (buf + PAYLOAD_JSONB_OFF);
	if (copy)
	{
		Jsonb	   *c = palloc(len - PAYLOAD_JSONB_OFF);

		memcpy(c, row->features, len - PAYLOAD_JSONB_OFF);
		row->features = c;
	}
	return true;
}
