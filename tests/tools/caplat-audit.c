/* caplat-audit — checks the audit chain (deploy/sql/auth/010_audit.sql)
 * independently of the database's own functions: reads every entry in seq
 * order through a server-side cursor (a page at a time, so a chain of any
 * length fits in memory), rebuilds each entry's canonical text, recomputes
 * hash(n) = SHA-256(hash(n-1) || canonical(n)) and compares.
 *
 *   caplat-audit verify [--table SCHEMA.TABLE] [--head SEQ:HASH]
 *
 * Database: CAPLAT_DB_URL (a role that may read the table). --table checks
 * another table of the same shape (default auth.audit_log); --head also
 * requires entry SEQ to have HASH, a head noted earlier, so that removing
 * the newest entries is seen too. Exit 0 and "ok: N entries, head SEQ HASH"
 * when good; 1 and "bad: seq N: why" naming the first bad entry; 2 on usage
 * or connection errors. */
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 1000
#define PAGE_TEXT "1000"
/* The canonical fields, in order: seq, event_id, service, action,
 * actor_type, actor_id, identity_id, role, ip, request_id, object_type,
 * object_id, uscc, before, after, occurred_at, recorded_at. */
#define NFIELDS 17

static int
usage(void)
{
	fprintf(stderr,
	    "usage: caplat-audit verify [--table SCHEMA.TABLE] "
	    "[--head SEQ:HASH]\n");
	return 2;
}

static int
ident_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 120)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		        s[i] == '.'))
			return 0;
	return 1;
}

static int
exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	if (!ok)
		fprintf(stderr, "caplat-audit: %s", PQerrorMessage(c));
	PQclear(r);
	return ok;
}

/* hash(prev_hex || canonical) of row i of r into out (65 bytes). */
static void
entry_hash(const PGresult *r, int i, const char *prev_hex, char out[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[32];
	char len[24];

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, prev_hex, 64);
	EVP_DigestUpdate(ctx, "caplat-audit-v1", 15);
	for (int f = 0; f < NFIELDS; f++) {
		EVP_DigestUpdate(ctx, "\n", 1);
		if (PQgetisnull(r, i, f)) {
			EVP_DigestUpdate(ctx, "-", 1);
			continue;
		}
		int n = PQgetlength(r, i, f);
		snprintf(len, sizeof(len), "%d:", n);
		EVP_DigestUpdate(ctx, len, strlen(len));
		EVP_DigestUpdate(ctx, PQgetvalue(r, i, f), (size_t)n);
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	EVP_MD_CTX_free(ctx);
	for (int k = 0; k < 32; k++)
		snprintf(out + 2 * k, 3, "%02x", md[k]);
}

static int
verify(PGconn *c, const char *table, long long head_seq, const char *head_hash)
{
	char sql[1024], prev[65], hash[65];
	long long expect = 1, count = 0;
	int bad = 0;

	memset(prev, '0', 64);
	prev[64] = '\0';
	/* One snapshot for the whole walk; the cursor streams it. */
	if (!exec_ok(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
		return 2;
	snprintf(sql, sizeof(sql),
	    "DECLARE chain NO SCROLL CURSOR FOR SELECT seq, "
	    "event_id::text, service, action, actor_type, actor_id, "
	    "identity_id, role, ip, request_id, object_type, object_id, uscc, "
	    "before::text, after::text, "
	    "to_char(occurred_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
	    "to_char(recorded_at AT TIME ZONE 'UTC', "
	    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), hash "
	    "FROM %s ORDER BY seq",
	    table);
	if (!exec_ok(c, sql))
		return 2;
	for (;;) {
		PGresult *r = PQexec(c, "FETCH " PAGE_TEXT " FROM chain");
		int n;

		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			fprintf(stderr, "caplat-audit: %s", PQerrorMessage(c));
			PQclear(r);
			return 2;
		}
		n = PQntuples(r);
		for (int i = 0; i < n && !bad; i++, expect++) {
			long long seq = strtoll(PQgetvalue(r, i, 0), NULL, 10);
			if (seq != expect) {
				printf("bad: seq %lld: %s (found seq %lld "
				       "next)\n",
				    expect,
				    seq > expect ? "missing" : "out of order",
				    seq);
				bad = 1;
				break;
			}
			entry_hash(r, i, prev, hash);
			if (strcmp(hash, PQgetvalue(r, i, NFIELDS)) != 0) {
				printf("bad: seq %lld: hash mismatch (changed, "
				       "inserted or reordered entry)\n",
				    seq);
				bad = 1;
				break;
			}
			if (head_seq == seq && strcmp(hash, head_hash) != 0) {
				printf("bad: seq %lld: not the head noted "
				       "(%s)\n",
				    seq, head_hash);
				bad = 1;
				break;
			}
			memcpy(prev, hash, sizeof(prev));
			count++;
		}
		PQclear(r);
		if (bad)
			return 1;
		if (n < PAGE)
			break;
	}
	exec_ok(c, "COMMIT");
	if (head_seq > count) {
		printf("bad: seq %lld: missing (the chain ends at seq %lld)\n",
		    count + 1, count);
		return 1;
	}
	printf("ok: %lld entries, head %lld %s\n", count, count,
	    count ? prev : "-");
	return 0;
}

int
main(int argc, char **argv)
{
	const char *table = "auth.audit_log", *url = getenv("CAPLAT_DB_URL");
	long long head_seq = 0;
	char head_hash[65] = "";
	PGconn *c;
	int rc;

	if (argc < 2 || strcmp(argv[1], "verify") != 0)
		return usage();
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--table") == 0 && i + 1 < argc) {
			table = argv[++i];
		} else if (strcmp(argv[i], "--head") == 0 && i + 1 < argc) {
			const char *h = argv[++i], *colon = strchr(h, ':');
			if (colon == NULL || strlen(colon + 1) != 64)
				return usage();
			head_seq = strtoll(h, NULL, 10);
			memcpy(head_hash, colon + 1, 65);
		} else {
			return usage();
		}
	}
	if (!ident_ok(table) || url == NULL) {
		fprintf(stderr,
		    "caplat-audit: needs CAPLAT_DB_URL and a "
		    "table name [a-z0-9_.]\n");
		return 2;
	}
	c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK ||
	    PQsetClientEncoding(c, "UTF8") != 0) {
		fprintf(stderr, "caplat-audit: %s", PQerrorMessage(c));
		PQfinish(c);
		return 2;
	}
	rc = verify(c, table, head_seq, head_hash);
	PQfinish(c);
	return rc;
}
