/* files — attachments: upload by raw body (the magic number checked against
 * Content-Type, then the whole file's structure and pixel count by
 * common/filetype.h on the work pool, before anything is stored; at most
 * 5 MiB, stored by SHA-256 in the blob store) and download by id to the
 * owner, the administrator of an enterprise the owner belongs to, and the
 * staff who read full records (access.h: reviewers, operators; each such
 * download audited in the access check's batch). An enterprise's members do
 * not read its attachments. Hashing, checking and blob I/O run on the work
 * pool (common/work.h), never on the loop. */
#include "enterprise.h"

#include "access.h"
#include "blob.h"
#include "crypto.h"
#include "db.h"
#include "filetype.h"
#include "licence.h"
#include "log.h"
#include "rules.h"
#include "session.h"
#include "util.h"
#include "work.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One upload or download, freed with the request. The work-pool job reads
 * and writes only this and the request's body, which nothing else touches
 * until the reply. */
struct file_op {
	struct http_req *req;
	const char *content_type; /* static (rules.c) or copied into type */
	char type[32];
	char id[37];
	char sha256[65];
	long size;
	int err_no;                   /* the blob store's errno, 0 when fine */
	enum filetype_reason refused; /* upload: why the bytes are not a file */
	int corrupt; /* download: the bytes do not hash to sha256 */
	int staff;   /* download: a staff read of any file */
	int licence; /* upload: ?purpose=business_license, recognised (ocr.c) */
	unsigned char *data; /* download: the bytes */
	size_t len;
};

static void
file_op_free(void *p)
{
	struct file_op *op = p;

	free(op->data);
	free(op);
}

static struct file_op *
file_op_new(struct http_req *req)
{
	struct file_op *op = xcalloc(1, sizeof(*op));

	op->req = req;
	http_req_attach(req, op, file_op_free);
	return op;
}

static int
is_pdf(const struct file_op *op)
{
	return strcmp(op->content_type, "application/pdf") == 0;
}

static void
reply_store_failed(struct http_req *req, const char *what, int err_no)
{
	log_error(req->id, "msg=blob_%s_failed error=\"%s\"", what,
	    strerror(err_no));
	http_reply_unavailable(req, "blobs");
}

/* ---- POST /api/v1/files: upload → upload_store (pool) → upload_on_stored
 * → upload_on_inserted ---- */

static void upload_store(void *arg);
static void upload_on_stored(void *arg);
static void upload_on_inserted(void *arg, const struct db_result *res);

static void
upload(struct http_req *req)
{
	const char *type, *sniffed;
	char *purpose;
	int licence = 0;

	if (ent_require_account(req) != 0)
		return;
	if ((purpose = http_query_param(req, "purpose")) != NULL) {
		licence = strcmp(purpose, "business_license") == 0;
		free(purpose);
		if (!licence) {
			http_reply_error(req, 422, "FIELD_INVALID", "purpose",
			    "上传用途只能是 business_license（营业执照）");
			return;
		}
	}
	type = ent_file_content_type(http_header(req, "Content-Type"));
	if (type == NULL) {
		http_reply_error(req, 422, "FILE_TYPE_UNSUPPORTED", NULL,
		    "只支持 JPG、PNG 图片或 PDF 文件");
		return;
	}
	if (req->body_len == 0) {
		http_reply_error(req, 422, "FILE_EMPTY", NULL, "文件内容为空");
		return;
	}
	sniffed = ent_file_sniff(req->body, req->body_len);
	if (sniffed == NULL || strcmp(sniffed, type) != 0) {
		http_reply_error(req, 422, "FILE_TYPE_MISMATCH", "file",
		    "文件内容与声明的类型不符");
		return;
	}
	struct file_op *op = file_op_new(req);
	op->content_type = type;
	op->size = (long)req->body_len;
	op->licence = licence;
	work_submit(upload_store, upload_on_stored, op);
}

/* The structural check of the whole file (common/filetype.h): on the pool,
 * a 5 MiB file's CRCs take milliseconds. */
static enum filetype_reason
upload_check(const struct file_op *op)
{
	enum filetype t = FILETYPE_PDF;

	if (strcmp(op->content_type, "image/png") == 0)
		t = FILETYPE_PNG;
	else if (strcmp(op->content_type, "image/jpeg") == 0)
		t = FILETYPE_JPEG;
	return filetype_check(t, op->req->body, op->req->body_len,
	    (uint64_t)ent.cfg.upload_max_pixels, NULL);
}

static void
upload_store(void *arg)
{
	struct file_op *op = arg;

	if ((op->refused = upload_check(op)) != FILETYPE_OK)
		return; /* nothing stored */
	crypto_sha256_hex(op->req->body, op->req->body_len, op->sha256);
	if (blob_put(ent.blobs, op->sha256, op->req->body, op->req->body_len) !=
	    0)
		op->err_no = errno ? errno : EIO;
}

static void
upload_on_stored(void *arg)
{
	struct file_op *op = arg;
	struct db_batch *b;
	char msg[160];

	if (op->refused != FILETYPE_OK) {
		log_info(op->req->id, "msg=file_refused type=%s reason=%s",
		    op->content_type, filetype_reason_name(op->refused));
		snprintf(msg, sizeof(msg), "文件无效：%s",
		    filetype_reason_text(op->refused));
		http_reply_error(op->req, 422,
		    op->refused == FILETYPE_TOO_MANY_PIXELS
		        ? "FILE_TOO_LARGE_PIXELS"
		        : "FILE_TYPE_INVALID",
		    "file", msg);
		return;
	}
	if (op->err_no != 0) {
		reply_store_failed(op->req, "put", op->err_no);
		return;
	}
	uuid_v4(op->id);
	b = db_batch_new();
	store_file_insert(b, op->id, op->req->session->account_id, op->sha256,
	    op->size, op->content_type);
	/* A licence's recognition is queued with the upload; a PDF is not an
	 * image the recogniser reads: it fails now, with its reason. */
	if (op->licence)
		store_licence_ocr_insert(b, op->id,
		    is_pdf(op) ? "failed" : "pending",
		    is_pdf(op) ? "unsupported_type" : NULL);
	db_batch_run(ent.svc.db, b, upload_on_inserted, op);
}

static void
upload_on_inserted(void *arg, const struct db_result *res)
{
	struct file_op *op = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(op->req, res);
		return;
	}
	log_info(op->req->id, "msg=file_stored file=%s size=%ld type=%s",
	    op->id, op->size, op->content_type);
	json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "file_id", op->id,
	    "sha256", op->sha256, "size", (json_int_t)op->size, "content_type",
	    op->content_type);
	if (op->licence && is_pdf(op))
		json_object_set_new(o, "recognition",
		    json_pack("{s:s, s:s, s:s}", "status", "failed", "reason",
		        "unsupported_type", "message",
		        lic_reason_text("unsupported_type")));
	else if (op->licence) {
		json_object_set_new(o, "recognition",
		    json_pack("{s:s, s:n, s:n}", "status", "pending", "reason",
		        "message"));
		ent_sweep_kick_ocr(); /* now, not at the next tick */
	}
	http_reply_json(op->req, 201, o);
}

void
ent_file_upload(struct http_req *req)
{
	session_require(req, upload);
}

/* ---- GET /api/v1/files/{id}: download → download_on_access →
 * download_read (pool) → download_on_read ---- */

static void download_on_access(void *arg, const struct db_result *res);
static void download_read(void *arg);
static void download_on_read(void *arg);

static void
reply_file_not_found(struct http_req *req)
{
	http_reply_error(req, 404, "NOT_FOUND", NULL, "文件不存在");
}

static void
download(struct http_req *req)
{
	const struct session *s = req->session;
	enum access_scope scope = access_scope(s, ACCESS_ENTERPRISE_FULL);
	const char *admin_uscc = NULL;
	struct file_op *op;
	struct db_batch *b;

	if (!uuid_valid(req->params[0])) {
		reply_file_not_found(req);
		return;
	}
	if (s->account_id == NULL && scope < ACCESS_PLATFORM) {
		reply_file_not_found(req);
		return;
	}
	if (scope == ACCESS_ENTERPRISE)
		admin_uscc = s->uscc;
	op = file_op_new(req);
	op->staff = scope == ACCESS_PLATFORM;
	b = db_batch_new();
	store_file_access(b, req->params[0], s->account_id, admin_uscc);
	if (op->staff)
		ent_audit_read(b, req, "enterprise.file.read", "file",
		    req->params[0], NULL);
	db_batch_run(ent.svc.db, b, download_on_access, op);
}

static void
download_on_access(void *arg, const struct db_result *res)
{
	struct file_op *op = arg;
	struct http_req *req = op->req;
	char etag[68];

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	/* Not found and not yours answer alike. */
	if (db_rows(res, 0) != 1 || (!db_bool(res, 0, 0, 3) && !op->staff)) {
		reply_file_not_found(req);
		return;
	}
	snprintf(op->sha256, sizeof(op->sha256), "%s", db_value(res, 0, 0, 0));
	snprintf(op->type, sizeof(op->type), "%s", db_value(res, 0, 0, 2));
	op->content_type = op->type;
	snprintf(etag, sizeof(etag), "\"%s\"", op->sha256);
	const char *inm = http_header(req, "If-None-Match");
	if (inm != NULL && strcmp(inm, etag) == 0) {
		http_add_header(req, "ETag", etag);
		http_reply_empty(req, 304);
		return;
	}
	work_submit(download_read, download_on_read, op);
}

static void
download_read(void *arg)
{
	struct file_op *op = arg;
	char check[65];

	if (blob_get(ent.blobs, op->sha256, ENT_FILE_MAX, &op->data,
	        &op->len) != 0) {
		op->err_no = errno ? errno : EIO;
		return;
	}
	crypto_sha256_hex(op->data, op->len, check);
	op->corrupt = strcmp(check, op->sha256) != 0;
}

static void
download_on_read(void *arg)
{
	struct file_op *op = arg;
	struct http_req *req = op->req;
	char etag[68];

	if (op->err_no == ENOENT) {
		log_error(req->id, "msg=blob_missing sha256=%s", op->sha256);
		http_reply_error(req, 500, "INTERNAL", NULL, "服务器内部错误");
		return;
	}
	if (op->err_no != 0) {
		reply_store_failed(req, "get", op->err_no);
		return;
	}
	if (op->corrupt) {
		log_error(req->id, "msg=blob_corrupt sha256=%s", op->sha256);
		http_reply_error(req, 500, "INTERNAL", NULL, "服务器内部错误");
		return;
	}
	snprintf(etag, sizeof(etag), "\"%s\"", op->sha256);
	http_add_header(req, "ETag", etag);
	http_add_header(req, "Cache-Control", "private, max-age=3600");
	http_add_header(req, "X-Content-Type-Options", "nosniff");
	http_reply_raw(req, 200, op->content_type, op->data, op->len);
}

void
ent_file_get(struct http_req *req)
{
	session_require(req, download);
}
