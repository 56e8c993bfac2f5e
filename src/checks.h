/*
 * checks.h — data validation of feature views: the per-feature checks declared at registration
 * (not_null, min, max, allowed) turned into SQL, and the quarantine of rows that fail them.
 *
 * Semantics (the contract materialization keeps):
 *  - A row passes when every check of every feature holds. NULL feature values pass min, max
 *    and allowed (as SQL CHECK constraints do); only not_null rejects them.
 *  - min/max are inclusive (value = max passes) and compare in the feature's own type, as a
 *    CHECK constraint on the column would: integer and numeric features exactly (a fractional
 *    bound on an integer is rounded inward), real and double precision against the bound
 *    converted to that type (so a real 0.1 passes max 0.1; the double just above 1 fails max
 *    1). NaN is greater than every number: it fails max, passes min. Bounds outside a float
 *    type's range compare as numeric.
 *  - allowed means jsonb equality of to_jsonb(value) with one of the declared elements (1 =
 *    1.0; the text "1" is not the number 1), evaluated in the feature's type where that is
 *    equivalent (text, integers, floats, numeric, boolean), as jsonb otherwise.
 *  - Failing rows are excluded BEFORE each entity's latest row is chosen: the latest *passing*
 *    row is served, and every failing row of the window is quarantined, once (re-running a
 *    window adds nothing: quarantine is unique on view version, entity, event time, created
 *    time and the row's content).
 *  - Usage by batch materialization (latest passing row per entity as of the window's end):
 *        SELECT DISTINCT ON (keys) ... FROM <source> s
 *        WHERE <fs_window_predicate(v, "s", &w, 1, 2)> AND <fs_checks_pass_expr(v, "s")>
 *        ORDER BY keys, event DESC, created DESC NULLS LAST
 *    and, in the same run, fs_quarantine_window(v, &w, run_id, NULL) for the failing rows.
 *  - Labels name the feature and the rule: "conv_rate: not_null", "conv_rate: min 0",
 *    "conv_rate: max 1", "conv_rate: allowed"; listed in feature order, then in the order
 *    not_null, min, max, allowed.
 */
#ifndef FS_CHECKS_H
#define FS_CHECKS_H

#include "postgres.h"
#include "datatype/timestamp.h"

#include "registry.h"

/*
 * A window over a view's history: rows whose event time (or, with on_created and a view that
 * has a created-time column, created time) lies in [start, end]. TIMESTAMP_NOBEGIN /
 * TIMESTAMP_NOEND (DT_NOBEGIN / DT_NOEND) leave that side open. Rows with a NULL window
 * column are outside every bounded window.
 */
typedef struct FsWindow
{
	TimestampTz start;
	TimestampTz end;
	bool		on_created;
} FsWindow;

/* True if the view version declares at least one check. */
extern bool fs_view_has_checks(FsView *v);

/*
 * SQL expression of type text[] over the columns of `alias` (a table alias, quoted here):
 * NULL when the row passes every check, otherwise the labels of all failed checks.
 * "NULL::text[]" when the view has no checks. Identifiers are quoted and operators
 * schema-qualified, so the expression is safe under any search_path.
 */
extern char *fs_checks_failure_expr(FsView *v, const char *alias);

/* SQL boolean expression over `alias`, never NULL: true when the row passes every check. */
extern char *fs_checks_pass_expr(FsView *v, const char *alias);

/*
 * SQL predicate over `alias` restricting rows to the window; $<param_start> and
 * $<param_end> must be bound to w->start and w->end as timestamptz (open sides are left out
 * of the text, so their parameters may be anything).
 */
extern char *fs_window_predicate(FsView *v, const char *alias, const FsWindow *w,
								 int param_start, int param_end);

/*
 * Quarantines every row of the window that fails a check, tagged with run_id (0: none).
 * The source is read as the caller (who must be able to SELECT it), the quarantine is
 * written as the extension owner. Returns the number of rows newly quarantined; *nfailing
 * (if not NULL) gets the number of failing rows in the window, quarantined before or now.
 */
extern uint64 fs_quarantine_window(FsView *v, const FsWindow *w, int64 run_id, uint64 *nfailing);

/*
 * The same for the rows of an arbitrary FROM item with the source's columns, without a
 * window: the streaming path passes a statement trigger's transition table (its name, quoted
 * with quote_identifier) and the TriggerData, which is registered in this function's own SPI
 * connection so that the name resolves. No privilege check: the caller decides (a trigger's
 * rows are the statement's own).
 */
struct TriggerData;
extern uint64 fs_quarantine_relation(FsView *v, const char *from_item, struct TriggerData *trigdata,
									 int64 run_id, uint64 *nfailing);

#endif
