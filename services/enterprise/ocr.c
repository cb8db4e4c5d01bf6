/* ocr — business-licence recognition (issue 20): Leptonica prepares the
 * uploaded image, Tesseract (C API, chi_sim) reads its text lines, and
 * licence.c turns the lines into fields.
 *
 * Where it runs: a pool of CAPLAT_OCR_THREADS (default 1) threads of its own
 * beside the event loop, not common/work.h: that pool serves jobs of
 * milliseconds (hashing, blob I/O, SMS) that must not queue behind a
 * recognition of a second, and it is one per process. A TessBaseAPI is not
 * thread-safe and costs ~100 MB and ~0.3 s to load chi_sim, so each pool
 * thread creates its own once, on its first job, and keeps it. The threads
 * run at nice 10 so that the loop's thread keeps the CPU when the machine
 * is busy.
 *
 * The queue is the table licence_ocr, not memory: an upload with
 * ?purpose=business_license inserts its row ('pending') in the upload's own
 * transaction, and a round (a row of the sweep table, kicked by an upload)
 * claims as many pending rows as there are idle threads, with a lease, so
 * that at most CAPLAT_OCR_THREADS recognitions are in memory, a restart
 * loses nothing (the lease runs out and the row is claimed again) and a
 * second process can share the work. A row claimed OCR_ATTEMPTS times
 * without an answer (a crash on that image) fails with reason interrupted.
 * A PDF is never queued: its row is failed (unsupported_type) at upload. */
#include "enterprise.h"

#include "blob.h"
#include "db.h"
#include "licence.h"
#include "log.h"
#include "sweep.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <leptonica/allheaders.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <tesseract/capi.h>
#include <time.h>
#include <unistd.h>

#define OCR_LEASE_S 120 /* > the longest recognition */
#define OCR_ATTEMPTS 3
#define OCR_MAX_THREADS 8
#define OCR_MAX_LINES 256
#define OCR_MIN_SIDE 200 /* pixels: smaller images are unreadable */

/* ---- the engine: one per thread ---- */

struct ocr_engine {
	TessBaseAPI *api;
	TessBaseAPI *code; /* eng, the USCC's alphabet only: its second read */
	int failed;        /* Init failed: every job fails alike */
};

/* The symbols of a USCC (GB 32100): what the second read may return. */
#define USCC_ALPHABET "0123456789ABCDEFGHJKLMNPQRTUWXY"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
engine_open(struct ocr_engine *e, const char *lang)
{
	if (e->api != NULL || e->failed)
		return e->failed ? -1 : 0;
	e->api = TessBaseAPICreate();
	if (TessBaseAPIInit3(e->api, NULL, lang) != 0) {
		TessBaseAPIDelete(e->api);
		e->api = NULL;
		e->failed = 1;
		return -1;
	}
	/* A licence is one column of "label value" lines. */
	TessBaseAPISetPageSegMode(e->api, PSM_SINGLE_BLOCK);
	TessBaseAPISetVariable(e->api, "preserve_interword_spaces", "0");
	/* no second pass over each doubtful line as white-on-black text */
	TessBaseAPISetVariable(e->api, "tessedit_do_invert", "0");
	/* chi_sim reads Latin letters poorly (8 as S, stray I and L): the
	 * code's box is read again by the English model, its alphabet only.
	 * Without eng the first read stands. */
	e->code = TessBaseAPICreate();
	if (TessBaseAPIInit3(e->code, NULL, "eng") != 0) {
		TessBaseAPIDelete(e->code);
		e->code = NULL;
		return 0;
	}
	TessBaseAPISetPageSegMode(e->code, PSM_SINGLE_LINE);
	TessBaseAPISetVariable(e->code, "tessedit_char_whitelist",
	    USCC_ALPHABET);
	TessBaseAPISetVariable(e->code, "tessedit_do_invert", "0");
	TessBaseAPISetVariable(e->code, "load_system_dawg", "0");
	TessBaseAPISetVariable(e->code, "load_freq_dawg", "0");
	return 0;
}

static void
engine_close(struct ocr_engine *e)
{
	if (e->api != NULL) {
		TessBaseAPIEnd(e->api);
		TessBaseAPIDelete(e->api);
	}
	if (e->code != NULL) {
		TessBaseAPIEnd(e->code);
		TessBaseAPIDelete(e->code);
	}
	e->api = e->code = NULL;
}

/* Whether a word (UTF-8) is mostly a run of at least 10 ASCII letters and
 * digits: the USCC (a stray quote read beside it allowed; the dates and
 * numbers of a licence are shorter or Chinese). */
static int
code_like(const char *w)
{
	int alnum = 0, other = 0;

	for (; *w != '\0'; w++) {
		if ((*w >= '0' && *w <= '9') || (*w >= 'A' && *w <= 'Z') ||
		    (*w >= 'a' && *w <= 'z'))
			alnum++;
		else if (((unsigned char)*w & 0xC0) != 0x80)
			other++;
	}
	return alnum >= 10 && other <= 2;
}

/* Reads the USCC's box again with the code model, into r (lic_uscc_read). */
static void
read_code_again(struct ocr_engine *e, PIX *pix, struct lic_read *r)
{
	TessResultIterator *it = TessBaseAPIGetIterator(e->api);
	int best = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;

	if (it == NULL || e->code == NULL) {
		if (it != NULL)
			TessResultIteratorDelete(it);
		return;
	}
	TessPageIterator *pi = TessResultIteratorGetPageIterator(it);
	do {
		char *w = TessResultIteratorGetUTF8Text(it, RIL_WORD);
		int l, t, rt, b;

		if (w != NULL && code_like(w) && (int)strlen(w) > best &&
		    TessPageIteratorBoundingBox(pi, RIL_WORD, &l, &t, &rt,
		        &b)) {
			best = (int)strlen(w);
			x0 = l, y0 = t, x1 = rt, y1 = b;
		}
		TessDeleteText(w);
	} while (TessPageIteratorNext(pi, RIL_WORD));
	TessResultIteratorDelete(it);
	if (best == 0)
		return;
	/* a margin of a third of the height round the box */
	int pad = (y1 - y0) / 3 + 2;
	x0 = x0 > pad ? x0 - pad : 0;
	y0 = y0 > pad ? y0 - pad : 0;
	x1 = x1 + pad < pixGetWidth(pix) ? x1 + pad : pixGetWidth(pix);
	y1 = y1 + pad < pixGetHeight(pix) ? y1 + pad : pixGetHeight(pix);
	TessBaseAPISetImage2(e->code, pix);
	TessBaseAPISetRectangle(e->code, x0, y0, x1 - x0, y1 - y0);
	char *text = TessBaseAPIGetUTF8Text(e->code);
	if (text != NULL && getenv("CAPLAT_OCR_DEBUG_LINES") != NULL &&
	    ent.svc.base == NULL)
		fprintf(stderr, "code| %s", text);
	if (text != NULL)
		lic_uscc_read(r, text, TessBaseAPIMeanTextConf(e->code));
	TessDeleteText(text);
	TessBaseAPIClear(e->code);
}

/* Grey from the red channel (the red seal fades into the paper), deskewed,
 * scaled so that text is ~30 px high on a licence ~1100-1600 px wide, and
 * binarised (Sauvola, for uneven scan lighting). NULL when the bytes do not
 * decode. */
static PIX *
prepare(const unsigned char *data, size_t len, int *too_small)
{
	PIX *pix = pixReadMem(data, len), *grey, *t;
	l_int32 w;
	l_float32 scale = 1.0f;

	if (pix == NULL)
		return NULL;
	/* A licence photo has hundreds of pixels each way; a thumbnail or an
	 * icon is not read (nor blown up 1000 times). */
	if (pixGetWidth(pix) < OCR_MIN_SIDE ||
	    pixGetHeight(pix) < OCR_MIN_SIDE) {
		*too_small = 1;
		pixDestroy(&pix);
		return NULL;
	}
	if (pixGetColormap(pix) != NULL) {
		t = pixRemoveColormap(pix, REMOVE_CMAP_BASED_ON_SRC);
		pixDestroy(&pix);
		pix = t;
	}
	if (pix == NULL)
		return NULL;
	if (pixGetDepth(pix) == 32)
		grey = pixConvertRGBToGray(pix, 1.0f, 0.0f, 0.0f);
	else
		grey = pixConvertTo8(pix, 0);
	pixDestroy(&pix);
	if (grey == NULL)
		return NULL;
	w = pixGetWidth(grey);
	if (w < 900)
		scale = 1100.0f / (l_float32)w;
	else if (w > 2000)
		scale = 1500.0f / (l_float32)w;
	if (scale != 1.0f) {
		t = pixScaleGrayLI(grey, scale, scale);
		if (t != NULL) {
			pixDestroy(&grey);
			grey = t;
		}
	}
	t = pixDeskew(grey, 0);
	if (t != NULL) {
		pixDestroy(&grey);
		grey = t;
	}
	t = NULL;
	if (pixSauvolaBinarizeTiled(grey, 20, 0.25f, 1, 1, NULL, &t) != 0 ||
	    t == NULL)
		return grey; /* Tesseract binarises a grey image itself */
	pixDestroy(&grey);
	return t;
}

int
ent_ocr_recognise(struct ocr_engine *e, const char *lang,
    const unsigned char *data, size_t len, struct lic_read *out,
    const char **reason)
{
	struct lic_line lines[OCR_MAX_LINES];
	char *texts[OCR_MAX_LINES];
	size_t n = 0;
	int too_small = 0;
	PIX *pix;
	TessResultIterator *it;

	memset(out, 0, sizeof(*out));
	*reason = NULL;
	if (engine_open(e, lang) != 0) {
		*reason = "engine_failed";
		return -1;
	}
	if ((pix = prepare(data, len, &too_small)) == NULL) {
		*reason = too_small ? "unreadable" : "decode_failed";
		return -1;
	}
	TessBaseAPISetImage2(e->api, pix);
	TessBaseAPISetSourceResolution(e->api, 150);
	if (TessBaseAPIRecognize(e->api, NULL) != 0) {
		TessBaseAPIClear(e->api);
		pixDestroy(&pix);
		*reason = "unreadable";
		return -1;
	}
	it = TessBaseAPIGetIterator(e->api);
	if (it != NULL) {
		TessPageIterator *pi = TessResultIteratorGetPageIterator(it);

		do {
			char *text =
			    TessResultIteratorGetUTF8Text(it, RIL_TEXTLINE);

			if (text == NULL)
				continue;
			texts[n] = text;
			lines[n].text = text;
			lines[n].confidence =
			    (int)TessResultIteratorConfidence(it, RIL_TEXTLINE);
			n++;
		} while (n < OCR_MAX_LINES &&
		    TessPageIteratorNext(pi, RIL_TEXTLINE));
		TessResultIteratorDelete(it);
	}
	if (getenv("CAPLAT_OCR_DEBUG_LINES") != NULL && ent.svc.base == NULL)
		for (size_t i = 0; i < n; i++) /* the ocr command only */
			fprintf(stderr, "%3d| %s", lines[i].confidence,
			    lines[i].text);
	lic_extract(lines, n, out);
	for (size_t i = 0; i < n; i++)
		TessDeleteText(texts[i]);
	if (out->labels >= 2)
		read_code_again(e, pix, out);
	TessBaseAPIClear(e->api);
	pixDestroy(&pix);
	*reason = lic_verdict(out);
	return *reason == NULL ? 0 : -1;
}

void
ent_ocr_one_core(char **argv)
{
	/* Debian's Tesseract is built with OpenMP, whose libgomp reads
	 * OMP_THREAD_LIMIT once, before main(): without it one recognition
	 * would spin threads on every core, un-niced. So the process starts
	 * again with the limit set (same pid); CAPLAT_OCR_THREADS is the
	 * parallelism. If the exec fails it carries on as it is. */
	if (getenv("OMP_THREAD_LIMIT") != NULL)
		return;
	setenv("OMP_THREAD_LIMIT", "1", 1);
	execv("/proc/self/exe", argv);
	log_warn(NULL, "msg=ocr_reexec_failed error=\"%s\"", strerror(errno));
}

struct ocr_engine *
ent_ocr_engine_new(void)
{
	return xcalloc(1, sizeof(struct ocr_engine));
}

void
ent_ocr_engine_free(struct ocr_engine *e)
{
	if (e == NULL)
		return;
	engine_close(e);
	free(e);
}

/* ---- the pool ---- */

struct ocr_job {
	char file_id[37];
	char sha256[65];
	/* filled on the pool thread */
	const char *reason;
	char *fields; /* JSON text, when recognised */
	long ms;
	struct event *ev;
	struct ocr_job *next;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ocr_job *head, *tail;
	pthread_t threads[OCR_MAX_THREADS];
	int nthreads, idle, stopping;
	int in_flight;       /* claimed and not finished: ≤ nthreads */
	struct sweep *sweep; /* its row of the sweep table (the last round's) */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void ocr_on_done(evutil_socket_t fd, short what, void *arg);

static void
ocr_run(struct ocr_engine *e, struct ocr_job *job)
{
	unsigned char *data = NULL;
	size_t len = 0;
	struct lic_read r;
	double t0 = now_s();

	if (blob_get(ent.blobs, job->sha256, ENT_FILE_MAX, &data, &len) != 0) {
		job->reason = "blob_missing";
		return;
	}
	(void)ent_ocr_recognise(e, ent.cfg.ocr_lang, data, len, &r,
	    &job->reason);
	if (job->reason == NULL) {
		json_t *o = lic_read_json(&r);

		job->fields = json_dumps(o, JSON_COMPACT);
		json_decref(o);
	}
	free(data);
	job->ms = (long)((now_s() - t0) * 1000);
}

static void *
ocr_thread(void *unused)
{
	struct ocr_engine e = {0};

	/* nice 10 for this thread only (Linux: priorities are per thread) */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	for (;;) {
		struct ocr_job *job;

		pthread_mutex_lock(&pool.mu);
		pool.idle++;
		while (pool.head == NULL && !pool.stopping)
			pthread_cond_wait(&pool.cv, &pool.mu);
		pool.idle--;
		if (pool.stopping) {
			pthread_mutex_unlock(&pool.mu);
			break;
		}
		job = pool.head;
		pool.head = job->next;
		if (pool.head == NULL)
			pool.tail = NULL;
		pthread_mutex_unlock(&pool.mu);
		ocr_run(&e, job);
		event_active(job->ev, 0, 0);
	}
	engine_close(&e);
	return NULL;
}

static void
ocr_submit(struct ocr_job *job)
{
	job->ev = event_new(ent.svc.base, -1, 0, ocr_on_done, job);
	if (job->ev == NULL)
		fatal("ocr: event_new failed");
	pthread_mutex_lock(&pool.mu);
	if (pool.tail != NULL)
		pool.tail->next = job;
	else
		pool.head = job;
	pool.tail = job;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
}

void
ent_ocr_start(void)
{
	pool.nthreads = (int)ent.cfg.ocr_threads;
	if (pool.nthreads > OCR_MAX_THREADS)
		pool.nthreads = OCR_MAX_THREADS;
	for (int i = 0; i < pool.nthreads; i++)
		if (pthread_create(&pool.threads[i], NULL, ocr_thread, NULL) !=
		    0)
			fatal("ocr: pthread_create failed");
}

void
ent_ocr_stop(void)
{
	pthread_mutex_lock(&pool.mu);
	pool.stopping = 1;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	for (int i = 0; i < pool.nthreads; i++)
		pthread_join(pool.threads[i], NULL);
	pool.nthreads = 0;
}

/* ---- the round: claim → recognise (pool) → record ---- */

static void ocr_on_claimed(void *arg, const struct db_result *res);
static void ocr_on_recorded(void *arg, const struct db_result *res);

void
ent_ocr_round(struct sweep *s)
{
	struct db_batch *b;
	int free_slots = pool.nthreads - pool.in_flight;

	pool.sweep = s;
	if (pool.nthreads == 0 || pool.stopping) {
		sweep_done(s, -1);
		return;
	}
	b = db_batch_new();
	store_licence_ocr_expire(b, OCR_ATTEMPTS);
	store_licence_ocr_claim(b, free_slots, OCR_LEASE_S, OCR_ATTEMPTS);
	store_licence_ocr_next(b, OCR_ATTEMPTS);
	db_batch_run(ent.svc.db, b, ocr_on_claimed, s);
}

static void
ocr_on_claimed(void *arg, const struct db_result *res)
{
	struct sweep *s = arg;

	if (res->status != DB_OK) {
		log_error(NULL, "msg=ocr_claim_failed error=\"%s\"",
		    res->message ? res->message : "");
		sweep_done(s, -1);
		return;
	}
	for (int i = 0; i < db_rows(res, 1); i++) {
		struct ocr_job *job = xcalloc(1, sizeof(*job));

		snprintf(job->file_id, sizeof(job->file_id), "%s",
		    db_value(res, 1, i, 0));
		snprintf(job->sha256, sizeof(job->sha256), "%s",
		    db_value(res, 1, i, 1));
		pool.in_flight++;
		ocr_submit(job);
	}
	/* Rest until a lease ends (seconds: a recognition another process or
	 * a crash left running); a new licence and a finished one kick. */
	const char *next = db_value(res, 2, 0, 0);
	long seconds = next != NULL ? atol(next) : -1;

	sweep_done(s, next == NULL ? -1 : seconds > 0 ? seconds * 1000 : 0);
}

static void
ocr_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct ocr_job *job = arg;
	struct db_batch *b = db_batch_new();

	event_free(job->ev);
	job->ev = NULL;
	pool.in_flight--;
	log_info(NULL, "msg=licence_recognised file=%s result=%s ms=%ld",
	    job->file_id, job->reason ? job->reason : "done", job->ms);
	store_licence_ocr_finish(b, job->file_id,
	    job->reason == NULL ? "done" : "failed", job->reason, job->fields,
	    job->ms);
	db_batch_run(ent.svc.db, b, ocr_on_recorded, job);
}

static void
ocr_on_recorded(void *arg, const struct db_result *res)
{
	struct ocr_job *job = arg;

	if (res->status != DB_OK)
		log_error(NULL, "msg=ocr_record_failed file=%s error=\"%s\"",
		    job->file_id, res->message ? res->message : "");
	free(job->fields);
	free(job);
	/* a thread is free: the next pending licence now, not at the tick
	 * (the round that claimed this job set pool.sweep) */
	sweep_kick(pool.sweep);
}
