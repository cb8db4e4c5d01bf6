/* import — the operator's bulk import of certificate records (issue 13):
 *
 *   POST /api/v1/cert-imports?format=csv|jsonl&dry_run=true|false
 *   GET  /api/v1/cert-imports/{id}
 *
 * The file is the body (CSV with a header row, or JSON Lines), UTF-8. The
 * handler records the import (status running) and hands the body to a job
 * on a worker thread (work.h) with its own blocking connections (db.h
 * db_sync): the loop never waits, and the COPY protocol streams without
 * the pool's pipeline bookkeeping. The job reads the body record by record
 * (never one JSON of the whole file), checks each row (encoding, columns,
 * the certificate parses and chains to a trusted vendor root, the USCC's
 * check character, dates, lock kind), streams the good rows with COPY into
 * the staging table import_rows, checks what spans rows in SQL (duplicates,
 * platform codes against the catalogue read model), and then merges them in
 * one set-based statement (import_merge) in the same transaction: a refused,
 * failed or killed import leaves nothing. A second connection, autocommit,
 * keeps rows_done up to date for GET. A commit answers 202 at once; a dry
 * run answers its report (the same object as GET) when it is done. */
#include "issuance.h"

#include "access.h"
#include "audit.h"
#include "crypto.h"
#include "db.h"
#include "lockcert.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "validate.h"
#include "work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_MAX_ERRORS 200 /* listed in the report; all are counted */
#define IMPORT_PROGRESS_ROWS 2000
#define IMPORT_COPY_CHUNK (256 * 1024)

/* ---- trusted vendor roots ------------------------------------------------ */

static struct crypto_trust *import_trust;
/* Subject DNs of every CA certificate in the bundle: the issuers a row
 * given as issuer DN + serial may name. */
static char **import_issuers;
static time_t *import_not_after; /* each root's notAfter, as import_issuers */
static size_t import_nissuers;

static int
read_all(const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	size_t len = 0, cap = 4096, n;
	char *buf;

	if (f == NULL)
		return -1;
	buf = xmalloc(cap);
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2)
			buf = xrealloc(buf, cap *= 2);
	}
	fclose(f);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

size_t
issuance_roots_metrics(void *arg, char *buf, size_t size)
{
	size_t n = 0;
	int w;

	w = snprintf(buf, size,
	    "# HELP caplat_vendor_root_not_after_seconds When each trusted "
	    "vendor root (CAPLAT_VENDOR_ROOTS) expires, Unix seconds.\n"
	    "# TYPE caplat_vendor_root_not_after_seconds gauge\n");
	if (w < 0 || (size_t)w >= size)
		return 0;
	n = (size_t)w;
	for (size_t i = 0; i < import_nissuers; i++) {
		char label[256];
		size_t k = 0;

		/* A label value: backslash, quote and newline escaped. */
		for (const char *s = import_issuers[i];
		     *s && k + 3 < sizeof(label); s++) {
			if (*s == '\\' || *s == '"')
				label[k++] = '\\';
			label[k++] = *s == '\n' ? ' ' : *s;
		}
		label[k] = '\0';
		w = snprintf(buf + n, size - n,
		    "caplat_vendor_root_not_after_seconds{subject=\"%s\"} "
		    "%lld\n",
		    label, (long long)import_not_after[i]);
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
	return n;
}

void
issuance_import_init(void)
{
	const char *path = issuance.cfg.vendor_roots;
	char *fallback = NULL, *pem = NULL, *p;

	lockcert_init(); /* how a row's certificate names its lock */
	if (path[0] == '\0') {
		fallback = issuance.cfg.ca_dir[0]
		    ? xasprintf("%s/roots.pem", issuance.cfg.ca_dir)
		    : xasprintf("%s/ca/roots.pem", issuance.cfg.var_dir);
		path = fallback;
	}
	if (crypto_trust_load(&import_trust, path) != 0)
		fatal("bad configuration: CAPLAT_VENDOR_ROOTS: cannot load %s",
		    path);
	if (read_all(path, &pem) != 0)
		fatal("cannot read %s", path);
	for (p = pem; (p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL;
	     p++) {
		struct crypto_cert *ca;

		if (crypto_cert_parse(&ca, p, NULL) != 0)
			continue;
		import_issuers = xrealloc(import_issuers,
		    (import_nissuers + 1) * sizeof(*import_issuers));
		import_not_after = xrealloc(import_not_after,
		    (import_nissuers + 1) * sizeof(*import_not_after));
		import_not_after[import_nissuers] = ca->not_after;
		import_issuers[import_nissuers++] = xstrdup(ca->subject_dn);
		crypto_cert_free(ca);
	}
	free(pem);
	free(fallback);
}

static int
issuer_trusted(const char *dn)
{
	for (size_t i = 0; i < import_nissuers; i++)
		if (strcmp(import_issuers[i], dn) == 0)
			return 1;
	return 0;
}

/* ---- the job ------------------------------------------------------------ */

enum import_format { IMPORT_CSV, IMPORT_JSONL };

struct import_job {
	struct http_req *req; /* a dry run's request, answered when done */
	char id[37];
	enum import_format format;
	int dry_run;
	unsigned char *body;
	size_t len;
	char *audit; /* JSON: audit_event_data() of the request */
	/* Results, written by the worker. */
	const char *status; /* checked, done, refused, failed */
	long total, done, inserted, updated, unchanged, nerrors;
	long read_ms, check_ms, merge_ms; /* for the log */
	json_t *errors;
	char error[256];
	/* Worker state. */
	struct db_sync *tx, *progress;
	struct importfile_buf copy;
	int copy_failed;
	/* The new rows' ids (time-ordered, 091_import_compact_events.sql):
	 * the clock read under the import lock, the line as the counter. */
	int64_t id_ms;
	unsigned char random[4096]; /* their random bits, drawn by the page */
	size_t nrandom;
};

static void
job_free(void *p)
{
	struct import_job *j = p;

	if (j == NULL)
		return;
	free(j->body);
	free(j->audit);
	json_decref(j->errors);
	free(j->copy.data);
	free(j);
}

static void
row_error(struct import_job *j, long line, const char *field, const char *code,
    const char *message)
{
	j->nerrors++;
	if (json_array_size(j->errors) < IMPORT_MAX_ERRORS)
		json_array_append_new(j->errors,
		    json_pack("{s:I, s:s?, s:s, s:s}", "line", (json_int_t)line,
		        "field", field, "code", code, "message", message));
}

/* ---- reading the file ----------------------------------------------------- */

/* Counts the records (rows, without the CSV header) for the progress. */
static long
count_records(const struct import_job *j)
{
	struct importfile_reader rd = {(const char *)j->body,
	    (const char *)j->body + j->len, 1};
	struct importfile_record r = {0};
	long n = 0;
	int rc;

	while ((rc = j->format == IMPORT_CSV
	               ? importfile_csv_next(&rd, &r)
	               : importfile_jsonl_next(&rd, &r)) == 1)
		n++;
	importfile_record_clear(&r);
	free(r.fields);
	if (j->format == IMPORT_CSV && n > 0)
		n--;
	return n;
}

/* ---- columns ------------------------------------------------------------- */

enum col {
	COL_CERTIFICATE,
	COL_ISSUER,
	COL_SERIAL,
	COL_NOT_BEFORE,
	COL_NOT_AFTER,
	COL_HOLDER,
	COL_LOCK_KIND,
	COL_USCC,
	COL_ENTERPRISE,
	COL_KEY_VENDOR,
	COL_KEY_SERIAL,
	COL_FIRST_APPLIED,
	COL_PLATFORMS,
	NCOLS
};

/* The column names (the JSONL keys) and the Chinese headers of the old
 * platform's export accepted for them. */
static const struct {
	const char *name, *alias;
	int required; /* 1 always; 0 optional; 2 without a certificate */
} columns[NCOLS] = {
    [COL_CERTIFICATE] = {"certificate", "证书", 0},
    [COL_ISSUER] = {"issuer", "颁发者", 2},
    [COL_SERIAL] = {"serial", "证书序列号", 2},
    [COL_NOT_BEFORE] = {"not_before", "生效时间", 0},
    [COL_NOT_AFTER] = {"not_after", "到期时间", 2},
    [COL_HOLDER] = {"holder", "持锁人", 1},
    [COL_LOCK_KIND] = {"lock_kind", "锁类别", 1},
    [COL_USCC] = {"uscc", "统一社会信用代码", 1},
    [COL_ENTERPRISE] = {"enterprise_name", "企业名称", 0},
    [COL_KEY_VENDOR] = {"key_vendor", "介质服务商", 1},
    [COL_KEY_SERIAL] = {"key_serial", "证书锁序列号", 1},
    [COL_FIRST_APPLIED] = {"first_applied_on", "首次申请时间", 1},
    [COL_PLATFORMS] = {"platforms", "关联平台", 1},
};

static const struct {
	const char *code, *alias;
} lock_kinds[] = {
    {"master", "主锁"},
    {"project_lead", "项目负责人锁"},
    {"agent", "授权委托人锁"},
    {"cost_engineer", "造价师锁"},
    {"personal", "个人锁"},
};

/* CSV: the header's column index per enum col, -1 when absent. */
static int
csv_header(struct import_job *j, const struct importfile_record *r,
    int idx[NCOLS])
{
	int missing = 0;

	for (int c = 0; c < NCOLS; c++) {
		idx[c] = -1;
		for (size_t i = 0; i < r->n; i++) {
			const char *h = r->fields[i];

			if (i == 0 && strncmp(h, "\xEF\xBB\xBF", 3) == 0)
				h += 3; /* a byte order mark */
			if (strcmp(h, columns[c].name) == 0 ||
			    strcmp(h, columns[c].alias) == 0)
				idx[c] = (int)i;
		}
	}
	for (int c = 0; c < NCOLS; c++) {
		int need = columns[c].required == 1 ||
		    (columns[c].required == 2 && idx[COL_CERTIFICATE] < 0);

		if (need && idx[c] < 0) {
			row_error(j, r->line, columns[c].name, "COLUMN_MISSING",
			    "缺少必需的列");
			missing = 1;
		}
	}
	return missing ? -1 : 0;
}

/* ---- one row ------------------------------------------------------------- */

struct row {
	const char *v[NCOLS]; /* borrowed; NULL or "" when absent */
	char *platforms_owned;
};

static const char *
val(const struct row *r, enum col c)
{
	return r->v[c] != NULL && r->v[c][0] != '\0' ? r->v[c] : NULL;
}

static void
copy_flush(struct import_job *j, int force)
{
	if (j->copy.len == 0 || (!force && j->copy.len < IMPORT_COPY_CHUNK))
		return;
	if (!j->copy_failed &&
	    db_copy_put(j->tx, j->copy.data, j->copy.len, j->error,
	        sizeof(j->error)) != 0)
		j->copy_failed = 1;
	j->copy.len = 0;
}

static const char *
lock_kind_of(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_LEN(lock_kinds); i++)
		if (strcmp(s, lock_kinds[i].code) == 0 ||
		    strcmp(s, lock_kinds[i].alias) == 0)
			return lock_kinds[i].code;
	return NULL;
}

/* A row with a certificate names the lock kind the certificate names, read
 * as the CA login reads it (common/lockcert.h): otherwise orders would
 * price, and CA管理 show, a kind the key does not carry. A certificate whose
 * kind cannot be read is left to the row. */
static void
lock_kind_check(struct import_job *j, long line, const struct crypto_cert *cert,
    const char *kind)
{
	struct lock_fields f;
	const char *named;

	if (lockcert_read(cert, &f, &named) != 0)
		return;
	if (strcmp(named, kind) != 0)
		row_error(j, line, "lock_kind", "LOCK_KIND_MISMATCH",
		    "锁类别与证书不一致");
	lock_fields_clear(&f);
}

/* Checks one row and, when it is good, appends it to the COPY data. */
static void
row_check(struct import_job *j, long line, const struct row *r)
{
	struct crypto_cert *cert = NULL;
	const char *issuer, *serial, *kind, *enterprise;
	char uscc[19] = "", nb[32], na[32], line_s[24], lineage[37], row[37];
	unsigned char rnd[8];
	char *platforms = NULL, *vendor = NULL;
	time_t not_before = 0, not_after = 0, applied;
	long before = j->nerrors;

	for (int c = 0; c < NCOLS; c++)
		if (columns[c].required == 1 && val(r, (enum col)c) == NULL &&
		    c != COL_USCC && c != COL_PLATFORMS)
			row_error(j, line, columns[c].name, "FIELD_REQUIRED",
			    "必填项为空");
	if (val(r, COL_CERTIFICATE) != NULL) {
		if (crypto_cert_parse(&cert, val(r, COL_CERTIFICATE), NULL) !=
		    0) {
			row_error(j, line, "certificate", "CERT_INVALID",
			    "证书无法解析");
		} else {
			time_t now = time(NULL), at = now;

			if (at >= cert->not_after)
				at = cert->not_after - 1;
			if (at < cert->not_before)
				at = cert->not_before;
			if (crypto_cert_verify(import_trust, cert, at) ==
			    CRYPTO_CERT_UNTRUSTED)
				row_error(j, line, "certificate",
				    "CERT_UNTRUSTED",
				    "证书不是受信任的证书厂商签发的");
			not_before = cert->not_before;
			not_after = cert->not_after;
		}
		issuer = cert ? cert->issuer_dn : NULL;
		serial = cert ? cert->serial : NULL;
	} else {
		issuer = val(r, COL_ISSUER);
		serial = val(r, COL_SERIAL);
		if (issuer == NULL)
			row_error(j, line, "issuer", "FIELD_REQUIRED",
			    "缺少证书或颁发者");
		else if (!issuer_trusted(issuer))
			row_error(j, line, "issuer", "CERT_UNTRUSTED",
			    "颁发者不是受信任的证书厂商");
		if (serial == NULL || strlen(serial) > 64 ||
		    strspn(serial, "0123456789ABCDEF") != strlen(serial))
			row_error(j, line, "serial", "SERIAL_INVALID",
			    "证书序列号应为大写十六进制");
		if (val(r, COL_NOT_AFTER) == NULL ||
		    importfile_time(val(r, COL_NOT_AFTER), &not_after, 0) != 0)
			row_error(j, line, "not_after", "DATE_INVALID",
			    "到期时间格式应为 YYYY-MM-DD");
		if (val(r, COL_NOT_BEFORE) != NULL &&
		    importfile_time(val(r, COL_NOT_BEFORE), &not_before, 0) !=
		        0)
			row_error(j, line, "not_before", "DATE_INVALID",
			    "生效时间格式应为 YYYY-MM-DD");
	}
	kind = lock_kind_of(val(r, COL_LOCK_KIND));
	if (val(r, COL_LOCK_KIND) != NULL && kind == NULL)
		row_error(j, line, "lock_kind", "LOCK_KIND_INVALID",
		    "锁类别不正确");
	else if (kind != NULL && cert != NULL)
		lock_kind_check(j, line, cert, kind);
	if (kind != NULL && strcmp(kind, "personal") == 0) {
		if (val(r, COL_USCC) != NULL)
			row_error(j, line, "uscc", "USCC_INVALID",
			    "个人锁不属于企业");
	} else if (val(r, COL_USCC) == NULL) {
		row_error(j, line, "uscc", "FIELD_REQUIRED", "必填项为空");
	} else if (validate_uscc(val(r, COL_USCC), uscc) != 0) {
		row_error(j, line, "uscc", "USCC_INVALID",
		    "统一社会信用代码不正确");
	} else if (cert != NULL && cert->subject.org_id != NULL &&
	    strcmp(cert->subject.org_id, uscc) != 0) {
		row_error(j, line, "uscc", "USCC_MISMATCH",
		    "统一社会信用代码与证书不一致");
	}
	if (val(r, COL_FIRST_APPLIED) != NULL &&
	    importfile_time(val(r, COL_FIRST_APPLIED), &applied, 1) != 0)
		row_error(j, line, "first_applied_on", "DATE_INVALID",
		    "首次申请时间格式应为 YYYY-MM-DD");
	if (val(r, COL_HOLDER) != NULL && strlen(val(r, COL_HOLDER)) > 128)
		row_error(j, line, "holder", "FIELD_INVALID", "持锁人过长");
	if (val(r, COL_KEY_SERIAL) != NULL &&
	    strlen(val(r, COL_KEY_SERIAL)) > 64)
		row_error(j, line, "key_serial", "FIELD_INVALID",
		    "证书锁序列号过长");
	platforms = importfile_platforms(
	    val(r, COL_PLATFORMS) ? val(r, COL_PLATFORMS) : "");
	if (platforms == NULL)
		row_error(j, line, "platforms", "PLATFORM_UNKNOWN",
		    "平台代码不存在");
	if (j->nerrors > before || platforms == NULL)
		goto done;
	if (val(r, COL_NOT_BEFORE) == NULL && cert == NULL)
		importfile_time(val(r, COL_FIRST_APPLIED), &not_before, 1);
	enterprise = val(r, COL_ENTERPRISE) ? val(r, COL_ENTERPRISE)
	                                    : (cert ? cert->subject.o : NULL);
	if (strcmp(kind, "personal") == 0)
		enterprise = NULL;
	vendor = issuance_vendor_of(issuer);
	snprintf(line_s, sizeof(line_s), "%ld", line);
	importfile_pg_time(not_before, nb);
	importfile_pg_time(not_after, na);
	importfile_copy_field(&j->copy, j->id, 0);
	importfile_copy_field(&j->copy, line_s, 0);
	importfile_copy_field(&j->copy, issuer, 0);
	importfile_copy_field(&j->copy, serial, 0);
	importfile_copy_field(&j->copy, vendor, 0);
	importfile_copy_field(&j->copy, cert ? cert->subject_dn : NULL, 0);
	importfile_copy_field(&j->copy, cert ? cert->fingerprint_sha256 : NULL,
	    0);
	importfile_copy_field(&j->copy, cert ? cert->spki_sha256 : NULL, 0);
	importfile_copy_field(&j->copy,
	    cert ? crypto_key_type_name(cert->key_type) : NULL, 0);
	importfile_copy_field(&j->copy, nb, 0);
	importfile_copy_field(&j->copy, na, 0);
	importfile_copy_field(&j->copy, cert ? cert->pem : NULL, 0);
	importfile_copy_field(&j->copy, uscc[0] ? "enterprise" : "personal", 0);
	importfile_copy_field(&j->copy, kind, 0);
	importfile_copy_field(&j->copy, val(r, COL_HOLDER), 0);
	importfile_copy_field(&j->copy, enterprise, 0);
	importfile_copy_field(&j->copy, uscc[0] ? uscc : NULL, 0);
	importfile_copy_field(&j->copy, val(r, COL_KEY_VENDOR), 0);
	importfile_copy_field(&j->copy, val(r, COL_KEY_SERIAL), 0);
	importfile_copy_field(&j->copy, val(r, COL_FIRST_APPLIED), 0);
	importfile_copy_field(&j->copy, platforms, 0);
	if (j->nrandom < sizeof(rnd)) {
		crypto_random_bytes(j->random, sizeof(j->random));
		j->nrandom = sizeof(j->random);
	}
	j->nrandom -= sizeof(rnd);
	memcpy(rnd, j->random + j->nrandom, sizeof(rnd));
	importfile_uuid7(lineage, j->id_ms, 2 * (uint64_t)line, rnd);
	importfile_uuid7(row, j->id_ms, 2 * (uint64_t)line + 1, rnd + 4);
	importfile_copy_field(&j->copy, lineage, 0);
	importfile_copy_field(&j->copy, row, 1);
	copy_flush(j, 0);
done:
	free(platforms);
	free(vendor);
	crypto_cert_free(cert);
}

/* JSONL: the row's values from the object; platforms may be an array. */
static void
row_from_object(struct row *r, json_t *obj)
{
	for (int c = 0; c < NCOLS; c++) {
		json_t *v = json_object_get(obj, columns[c].name);

		if (v == NULL)
			v = json_object_get(obj, columns[c].alias);
		r->v[c] = json_string_value(v);
		if (c == COL_PLATFORMS && json_is_array(v)) {
			size_t i;
			json_t *e;
			char *all = xstrdup("");

			json_array_foreach(v, i, e)
			{
				const char *code = json_string_value(e);
				char *more = xasprintf("%s%s%s", all,
				    i ? "," : "", code ? code : "?");
				free(all);
				all = more;
			}
			r->platforms_owned = all;
			r->v[c] = all;
		}
	}
}

static void
progress(struct import_job *j)
{
	char total[24], done[24], err[256];

	snprintf(total, sizeof(total), "%ld", j->total);
	snprintf(done, sizeof(done), "%ld", j->done);
	const char *p[] = {j->id, total, done};
	if (db_sync_exec(j->progress, store_import_progress_sql, 3, p, NULL,
	        err, sizeof(err)) != 0)
		log_error(NULL,
		    "msg=import_progress_failed import=%s error=\"%s\"", j->id,
		    err);
}

/* Reads every record and copies the good rows. */
static void
read_rows(struct import_job *j)
{
	struct importfile_reader rd = {(const char *)j->body,
	    (const char *)j->body + j->len, 1};
	struct importfile_record rec = {0};
	int idx[NCOLS], rc;
	size_t ncols = 0;

	if (j->format == IMPORT_CSV) {
		if ((rc = importfile_csv_next(&rd, &rec)) != 1) {
			row_error(j, 1, NULL, "FILE_EMPTY", "文件没有表头");
			goto out;
		}
		if (csv_header(j, &rec, idx) != 0)
			goto out;
		ncols = rec.n;
	}
	for (;;) {
		struct row r = {{0}, NULL};

		rc = j->format == IMPORT_CSV ? importfile_csv_next(&rd, &rec)
		                             : importfile_jsonl_next(&rd, &rec);
		if (rc == 0)
			break;
		if (rc < 0) {
			row_error(j, rec.line, NULL, "ROW_MALFORMED",
			    "引号未闭合");
			break;
		}
		j->done++;
		if (j->format == IMPORT_JSONL) {
			if (rec.obj == NULL) {
				row_error(j, rec.line, NULL, "ROW_MALFORMED",
				    "该行不是 JSON 对象");
				continue;
			}
			row_from_object(&r, rec.obj);
		} else {
			if (rec.n != ncols) {
				row_error(j, rec.line, NULL, "ROW_MALFORMED",
				    "列数与表头不一致");
				continue;
			}
			for (int c = 0; c < NCOLS; c++)
				r.v[c] =
				    idx[c] >= 0 ? rec.fields[idx[c]] : NULL;
		}
		row_check(j, rec.line, &r);
		free(r.platforms_owned);
		if (j->done % IMPORT_PROGRESS_ROWS == 0)
			progress(j);
	}
out:
	importfile_record_clear(&rec);
	free(rec.fields);
}

/* The checks that span rows, in SQL on the staged rows. */
static int
file_checks(struct import_job *j)
{
	struct db_result *res = NULL;
	char limit[16];

	snprintf(limit, sizeof(limit), "%d", IMPORT_MAX_ERRORS);
	const char *p[] = {limit, j->id};
	if (db_sync_exec(j->tx, store_import_duplicates_sql, 2, p, &res,
	        j->error, sizeof(j->error)) != 0)
		return -1;
	for (int i = 0; i < db_rows(res, 0); i++)
		row_error(j, atol(db_value(res, 0, i, 0)), "serial",
		    "ROW_DUPLICATE", "同一证书在文件中出现多次");
	db_result_free(res);
	if (db_sync_exec(j->tx, store_import_unknown_platforms_sql, 2, p, &res,
	        j->error, sizeof(j->error)) != 0)
		return -1;
	for (int i = 0; i < db_rows(res, 0); i++)
		row_error(j, atol(db_value(res, 0, i, 0)), "platforms",
		    "PLATFORM_UNKNOWN", "平台代码不存在");
	db_result_free(res);
	return 0;
}

static int
merge(struct import_job *j)
{
	struct db_result *res = NULL;
	char total[24], ins[24], upd[24], same[24];

	const char *p[] = {j->id, j->audit};
	if (db_sync_exec(j->tx, store_import_merge_sql, 2, p, &res, j->error,
	        sizeof(j->error)) != 0)
		return -1;
	j->inserted = atol(db_value(res, 0, 0, 0));
	j->updated = atol(db_value(res, 0, 0, 1));
	j->unchanged = atol(db_value(res, 0, 0, 2));
	db_result_free(res);
	if (j->dry_run)
		return 0;
	snprintf(total, sizeof(total), "%ld", j->total);
	snprintf(ins, sizeof(ins), "%ld", j->inserted);
	snprintf(upd, sizeof(upd), "%ld", j->updated);
	snprintf(same, sizeof(same), "%ld", j->unchanged);
	const char *q[] = {j->id, total, ins, upd, same};
	if (db_sync_exec(j->tx, store_import_done_sql, 5, q, NULL, j->error,
	        sizeof(j->error)) != 0 ||
	    db_sync_exec(j->tx, store_import_commit_sql, 0, NULL, NULL,
	        j->error, sizeof(j->error)) != 0)
		return -1;
	return 0;
}

/* The import, on a worker thread. */
static void
import_steps(struct import_job *j)
{
	struct db_result *res = NULL;
	size_t bad;
	int locked;

	if (db_sync_open(&j->tx, issuance.svc.db_url, j->error,
	        sizeof(j->error)) != 0 ||
	    db_sync_open(&j->progress, issuance.svc.db_url, j->error,
	        sizeof(j->error)) != 0) {
		j->status = "failed";
		return;
	}
	const char *p[] = {j->id};
	if (db_sync_exec(j->tx, store_import_begin_sql, 0, NULL, NULL, j->error,
	        sizeof(j->error)) != 0 ||
	    db_sync_exec(j->tx, store_import_lock_sql, 1, p, &res, j->error,
	        sizeof(j->error)) != 0) {
		j->status = "failed";
		return;
	}
	locked = db_bool(res, 0, 0, 0);
	db_result_free(res);
	j->id_ms = now_wall_ms();
	if (!locked) {
		snprintf(j->error, sizeof(j->error), "IMPORT_RUNNING");
		j->status = "failed";
		return;
	}
	if (db_sync_exec(j->tx, store_import_truncate_sql, 0, NULL, NULL,
	        j->error, sizeof(j->error)) != 0) {
		j->status = "failed";
		return;
	}
	if (importfile_utf8_check(j->body, j->len, &bad) != 0) {
		row_error(j, importfile_line_of(j->body, bad), NULL,
		    "ENCODING_INVALID", "文件不是 UTF-8 编码");
		j->status = "refused";
		return;
	}
	j->total = count_records(j);
	progress(j);
	if (db_copy_begin(j->tx, store_import_copy_sql, j->error,
	        sizeof(j->error)) != 0) {
		j->status = "failed";
		return;
	}
	int64_t t0 = now_mono_us();
	read_rows(j);
	copy_flush(j, 1);
	if (db_copy_end(j->tx, NULL, j->copy_failed ? NULL : j->error,
	        j->copy_failed ? 0 : sizeof(j->error)) != 0 ||
	    j->copy_failed) {
		j->status = "failed";
		return;
	}
	progress(j);
	j->read_ms = (long)((now_mono_us() - t0) / 1000);
	t0 = now_mono_us();
	if (file_checks(j) != 0) {
		j->status = "failed";
		return;
	}
	if (j->nerrors > 0) {
		j->status = "refused";
		return;
	}
	j->check_ms = (long)((now_mono_us() - t0) / 1000);
	t0 = now_mono_us();
	if (merge(j) != 0) {
		j->status = "failed";
		return;
	}
	j->merge_ms = (long)((now_mono_us() - t0) / 1000);
	j->status = j->dry_run ? "checked" : "done";
}

/* What the job did not write in its transaction: the rollback, then the
 * import's end on the progress connection. */
static void
import_finish(struct import_job *j)
{
	char err[256];
	char total[24], done[24], ins[24], upd[24], same[24], nerr[24];
	int counted = strcmp(j->status, "checked") == 0;
	int failed = strcmp(j->status, "failed") == 0;
	char *errors;

	if (strcmp(j->status, "done") == 0)
		return;
	if (j->tx != NULL)
		db_sync_exec(j->tx, store_import_rollback_sql, 0, NULL, NULL,
		    err, sizeof(err));
	errors = json_dumps(j->errors, JSON_COMPACT);
	snprintf(total, sizeof(total), "%ld", j->total);
	snprintf(done, sizeof(done), "%ld", j->done);
	snprintf(ins, sizeof(ins), "%ld", j->inserted);
	snprintf(upd, sizeof(upd), "%ld", j->updated);
	snprintf(same, sizeof(same), "%ld", j->unchanged);
	snprintf(nerr, sizeof(nerr), "%ld", j->nerrors);
	const char *p[] = {j->id, j->status, total, done, counted ? ins : NULL,
	    counted ? upd : NULL, counted ? same : NULL, nerr, errors,
	    failed ? (strcmp(j->error, "IMPORT_RUNNING") == 0 ? "IMPORT_RUNNING"
	                                                      : "INTERNAL")
	           : NULL};
	if (j->progress == NULL ||
	    db_sync_exec(j->progress, store_import_finish_sql, 10, p, NULL, err,
	        sizeof(err)) != 0)
		snprintf(j->error, sizeof(j->error), "finish: %.200s", err);
	free(errors);
}

static void
import_run(void *arg)
{
	struct import_job *j = arg;

	j->errors = json_array();
	import_steps(j);
	import_finish(j);
	db_sync_close(j->tx);
	db_sync_close(j->progress);
	j->tx = j->progress = NULL;
}

static void import_on_report(void *arg, const struct db_result *res);

/* Back on the loop: the log line, then the dry run's answer. */
static void
import_done(void *arg)
{
	struct import_job *j = arg;

	if (strcmp(j->status, "failed") == 0)
		log_error(j->req ? j->req->id : NULL,
		    "msg=import_failed import=%s error=\"%s\"", j->id,
		    j->error);
	log_info(j->req ? j->req->id : NULL,
	    "msg=import_finished import=%s status=%s rows=%ld inserted=%ld"
	    " updated=%ld errors=%ld read_ms=%ld check_ms=%ld merge_ms=%ld",
	    j->id, j->status, j->total, j->inserted, j->updated, j->nerrors,
	    j->read_ms, j->check_ms, j->merge_ms);
	if (j->req == NULL) {
		job_free(j);
		return;
	}
	struct http_req *req = j->req;
	http_req_attach(req, j, job_free);
	const char *q[] = {j->id};
	db_query(issuance.svc.db, store_import_get_sql, 1, q, import_on_report,
	    req);
}

/* ---- the JSON of an import ----------------------------------------------- */

static json_t *
num_or_null(const char *v)
{
	return v ? json_integer(atoll(v)) : json_null();
}

static json_t *
epoch_json(const char *v)
{
	char buf[48];

	if (v == NULL)
		return json_null();
	time_rfc3339(atoll(v) * 1000, buf);
	return json_string(buf);
}

static json_t *
import_json(const struct db_result *res)
{
	const char *status = db_value(res, 0, 0, 3);
	json_t *errors = json_loads(db_value(res, 0, 0, 11), 0, NULL);

	return json_pack(
	    "{s:s, s:s, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
	    " s:s?, s:o, s:o}",
	    "id", db_value(res, 0, 0, 0), "format", db_value(res, 0, 0, 1),
	    "dry_run", db_bool(res, 0, 0, 2), "status",
	    strcmp(status, "interrupted") == 0 ? "failed" : status, "bytes",
	    num_or_null(db_value(res, 0, 0, 4)), "rows_total",
	    num_or_null(db_value(res, 0, 0, 5)), "rows_done",
	    num_or_null(db_value(res, 0, 0, 6)), "inserted",
	    num_or_null(db_value(res, 0, 0, 7)), "updated",
	    num_or_null(db_value(res, 0, 0, 8)), "unchanged",
	    num_or_null(db_value(res, 0, 0, 9)), "error_count",
	    num_or_null(db_value(res, 0, 0, 10)), "errors",
	    errors ? errors : json_array(), "error", db_value(res, 0, 0, 12),
	    "created_at", epoch_json(db_value(res, 0, 0, 13)), "finished_at",
	    epoch_json(db_value(res, 0, 0, 14)));
}

static void
import_on_report(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "导入记录不存在");
		return;
	}
	http_reply_json(req, 200, import_json(res));
}

/* ---- POST /api/v1/cert-imports ------------------------------------------ */

static void import_on_recorded(void *arg, const struct db_result *res);

static void
import_start(struct http_req *req)
{
	char *format, *dry;
	struct import_job *j;
	char bytes[24];

	if (access_require(req, ACCESS_CERTS, ACCESS_PLATFORM) == ACCESS_NONE)
		return;
	if (session_require_staff(req, "operator") != 0)
		return;
	format = http_query_param(req, "format");
	dry = http_query_param(req, "dry_run");
	if (format == NULL ||
	    (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)) {
		free(format);
		free(dry);
		http_reply_error(req, 400, "BAD_REQUEST", "format",
		    "format 应为 csv 或 jsonl");
		return;
	}
	if (dry != NULL && strcmp(dry, "true") != 0 &&
	    strcmp(dry, "false") != 0) {
		free(format);
		free(dry);
		http_reply_error(req, 400, "BAD_REQUEST", "dry_run",
		    "dry_run 应为 true 或 false");
		return;
	}
	if (req->body_len == 0) {
		free(format);
		free(dry);
		http_reply_error(req, 400, "FILE_EMPTY", NULL, "文件为空");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->format = strcmp(format, "csv") == 0 ? IMPORT_CSV : IMPORT_JSONL;
	j->dry_run = dry != NULL && strcmp(dry, "true") == 0;
	free(format);
	free(dry);
	j->req = req;
	uuid_v4(j->id);
	/* The body moves to the job: the request may be answered first. */
	j->body = req->body;
	j->len = req->body_len;
	req->body = NULL;
	req->body_len = 0;
	struct audit_entry e = {"certificate.imported", "certificate", j->id,
	    NULL, NULL, NULL};
	json_t *audit = audit_event_data(req, &e);
	j->audit = json_dumps(audit, JSON_COMPACT);
	json_decref(audit);
	http_req_attach(req, j, job_free);
	snprintf(bytes, sizeof(bytes), "%zu", j->len);
	const char *p[] = {j->id, req->session->staff_id,
	    j->format == IMPORT_CSV ? "csv" : "jsonl",
	    j->dry_run ? "true" : "false", bytes};
	db_query(issuance.svc.db, store_import_insert_sql, 5, p,
	    import_on_recorded, j);
}

static void
import_on_recorded(void *arg, const struct db_result *res)
{
	struct import_job *j = arg;
	struct http_req *req = j->req;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 409, "IMPORT_RUNNING", NULL,
		    "另一个导入正在进行，请稍后再试");
		return;
	}
	/* The job is the worker's now; the request keeps no pointer to it. */
	req->data = NULL;
	req->data_free = NULL;
	log_info(req->id, "msg=import_started import=%s bytes=%zu dry_run=%d",
	    j->id, j->len, j->dry_run);
	if (!j->dry_run) {
		char location[96];

		j->req = NULL;
		snprintf(location, sizeof(location), "/api/v1/cert-imports/%s",
		    j->id);
		http_add_header(req, "Location", location);
		http_reply_json(req, 202,
		    json_pack("{s:s, s:s, s:b, s:s, s:I, s:n, s:i}", "id",
		        j->id, "format",
		        j->format == IMPORT_CSV ? "csv" : "jsonl", "dry_run", 0,
		        "status", "running", "bytes", (json_int_t)j->len,
		        "rows_total", "rows_done", 0));
	}
	work_submit(import_run, import_done, j);
}

void
cert_import(struct http_req *req)
{
	session_require(req, import_start);
}

/* ---- GET /api/v1/cert-imports/{id} -------------------------------------- */

static void
import_get_start(struct http_req *req)
{
	if (access_require(req, ACCESS_CERTS, ACCESS_PLATFORM) == ACCESS_NONE)
		return;
	if (session_require_staff(req, "operator") != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "导入记录不存在");
		return;
	}
	const char *p[] = {req->params[0]};
	db_query(issuance.svc.db, store_import_get_sql, 1, p, import_on_report,
	    req);
}

void
cert_import_get(struct http_req *req)
{
	session_require(req, import_get_start);
}
