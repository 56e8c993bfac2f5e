/*
 * stream_freshness.c — streaming freshness probe for bench/materialize.sh.
 * Session W inserts one row (autocommit) into the streamed source; as soon as its COMMIT has
 * returned, session R polls fs_online until the new value is served. Prints, per commit, the
 * microseconds from the COMMIT's return to the first read that sees the value ("visible"), and
 * from sending the INSERT to that read ("end to end").
 *   stream_freshness "<conninfo>" <commits> <table> <view> <entities>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
check(PGconn *c, PGresult *r, ExecStatusType want)
{
	if (PQresultStatus(r) != want)
	{
		fprintf(stderr, "error: %s", PQerrorMessage(c));
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	PGconn	   *w, *r;
	int			n, entities;
	char		ins[512], sel[512];

	if (argc != 6)
	{
		fprintf(stderr, "usage: %s conninfo commits table view entities\n", argv[0]);
		return 2;
	}
	n = atoi(argv[2]);
	entities = atoi(argv[5]);
	w = PQconnectdb(argv[1]);
	r = PQconnectdb(argv[1]);
	if (PQstatus(w) != CONNECTION_OK || PQstatus(r) != CONNECTION_OK)
	{
		fprintf(stderr, "connection failed: %s%s", PQerrorMessage(w), PQerrorMessage(r));
		return 1;
	}
	snprintf(ins, sizeof(ins),
			 "INSERT INTO %s (user_id, event_ts, created_ts, f_float1, f_float2, f_int1, f_text1) "
			 "VALUES ($1::bigint, clock_timestamp(), clock_timestamp(), 0.5, 0.5, $2::bigint, 'probe')", argv[3]);
	snprintf(sel, sizeof(sel),
			 "SELECT fs_online(fs_entity('user', $1::bigint), '%s') -> '%s' ->> 'f_int1'", argv[4], argv[4]);
	check(w, PQprepare(w, "ins", ins, 2, NULL), PGRES_COMMAND_OK);
	check(r, PQprepare(r, "sel", sel, 1, NULL), PGRES_COMMAND_OK);
	for (int i = 0; i < n; i++)
	{
		char		uid[32], val[32];
		const char *p[2] = {uid, val};
		double		t0, t1, t2;
		int			polls = 0;

		snprintf(uid, sizeof(uid), "%d", 1 + (int) ((i * 7919L) % entities));
		snprintf(val, sizeof(val), "%d", 100000000 + i);
		t0 = now_us();
		check(w, PQexecPrepared(w, "ins", 2, p, NULL, NULL, 0), PGRES_COMMAND_OK);
		t1 = now_us();
		for (;;)
		{
			PGresult   *res = PQexecPrepared(r, "sel", 1, p, NULL, NULL, 0);

			check(r, res, PGRES_TUPLES_OK);
			polls++;
			if (!PQgetisnull(res, 0, 0) && strcmp(PQgetvalue(res, 0, 0), val) == 0)
			{
				PQclear(res);
				break;
			}
			PQclear(res);
			if (polls > 100000)
			{
				fprintf(stderr, "value never became visible\n");
				return 1;
			}
		}
		t2 = now_us();
		printf("%.1f %.1f %d\n", t2 - t1, t2 - t0, polls);
	}
	PQfinish(w);
	PQfinish(r);
	return 0;
}
