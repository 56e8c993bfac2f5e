/*
 * online_payload.h — the cache payload of a latest-value row (online_payload.c): its header and
 * its served jsonb, stored as the bytes where it differs from the view's jsonb skeleton.
 */
#ifndef FS_ONLINE_PAYLOAD_H
#define FS_ONLINE_PAYLOAD_H

#include "postgres.h"

#include "online_meta.h"
#include "online_read.h"

/*
 * Encodes the row into buf (FS_CACHE_DATA bytes); returns the payload's length, which is more
 * than FS_CACHE_DATA (nothing written) for a row too large to cache.
 */
extern int	fs_payload_encode(FsOnlineView *ov, const FsOnlineRow *row, char *buf);

/*
 * Decodes a payload (buf MAXALIGNed) into row; false when it cannot be (made with another
 * skeleton: treat as a miss). The jsonb is palloc'd, or with copy = false may point into buf.
 */
extern bool fs_payload_decode(FsOnlineView *ov, char *buf, int len, FsOnlineRow *row, bool copy);

#endif
