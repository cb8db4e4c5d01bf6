/* notify — texts the admin the review result, and an applicant the decision
 * on an administrator application. record_decide() and
 * admin_application_decide() leave a row in notifications in the
 * decision's own transaction; this sender, on the
 * loop, claims due rows whose account's phone the accounts read model knows
 * (a lease keeps other processes off them), hands the texts to the SMS
 * provider on the work pool, and marks them sent, or due again later when
 * the provider failed. At least once: a crash between sending and marking
 * sends again once the lease ran out. A row whose phone is not known yet
 * waits until auth.account.registered arrives. The rounds are started by
 * the sweep table (sweep.c). */
#include "enterprise.h"

#include "db.h"
#include "log.h"
#include "rules.h"
#include "sms.h"
#include "util.h"
#include "work.h"

#include <stdio.h>
#include <string.h>

#define NOTIFY_BATCH 16
#define NOTIFY_LEASE_S 60 /* > the longest send of a batch */
#define NOTIFY_RETRY_S 30

struct notify_msg {
	char id[24];
	char record[37]; /* the record's id, or the application's */
	char phone[12];
	char text[1024];
	int sent;
};

/* One cycle at a time per process: claim → send → mark. Static, so that a
 * cycle cut short by shutdown leaves nothing unreachable. */
static struct {
	int busy;
	int n;
	struct notify_msg msgs[NOTIFY_BATCH];
} notify;

static void notify_on_claimed(void *arg, const struct db_result *res);
static void notify_send(void *arg);
static void notify_on_sent(void *arg);
static void notify_on_marked(void *arg, const struct db_result *res);

void
ent_notify_round(void)
{
	struct db_batch *b;

	if (notify.busy)
		return;
	notify.busy = 1;
	b = db_batch_new();
	store_notifications_claim(b, NOTIFY_BATCH, NOTIFY_LEASE_S);
	db_batch_run(ent.svc.db, b, notify_on_claimed, NULL);
}

static void
notify_on_claimed(void *arg, const struct db_result *res)
{
	if (res->status != DB_OK) {
		if (res->status != DB_UNAVAILABLE)
			log_error(NULL, "msg=notify_claim_failed error=\"%s\"",
			    res->message ? res->message : "-");
		notify.busy = 0;
		return;
	}
	notify.n = 0;
	for (int i = 0; i < db_rows(res, 0) && i < NOTIFY_BATCH; i++) {
		struct notify_msg *m = &notify.msgs[notify.n++];

		const char *app = db_value(res, 0, i, NOTE_APPLICATION);
		int approved =
		    strcmp(db_value(res, 0, i, NOTE_RESULT), "approved") == 0;

		snprintf(m->id, sizeof(m->id), "%s",
		    db_value(res, 0, i, NOTE_ID));
		snprintf(m->record, sizeof(m->record), "%s",
		    app != NULL ? app : db_value(res, 0, i, NOTE_RECORD));
		snprintf(m->phone, sizeof(m->phone), "%s",
		    db_value(res, 0, i, NOTE_PHONE));
		if (app != NULL)
			ent_admin_application_sms_text(m->text, sizeof(m->text),
			    app, approved, db_value(res, 0, i, NOTE_NAME),
			    db_value(res, 0, i, NOTE_OPINION));
		else
			ent_review_sms_text(m->text, sizeof(m->text), m->record,
			    approved, db_bool(res, 0, i, NOTE_CHANGE),
			    db_value(res, 0, i, NOTE_NAME),
			    db_value(res, 0, i, NOTE_OPINION));
		m->sent = 0;
	}
	if (notify.n == 0) {
		notify.busy = 0;
		return;
	}
	work_submit(notify_send, notify_on_sent, NULL);
}

/* On a pool thread: a provider may be a remote gateway. */
static void
notify_send(void *arg)
{
	for (int i = 0; i < notify.n; i++)
		notify.msgs[i].sent = sms_provider_send(notify.msgs[i].phone,
		                          notify.msgs[i].text) == 0;
}

/* "{1,2,3}" of the messages whose sent flag is want. */
static void
ids_array(int want, char *out, size_t size)
{
	size_t len = 0;

	len += (size_t)snprintf(out, size, "{");
	for (int i = 0; i < notify.n && len < size; i++)
		if (notify.msgs[i].sent == want)
			len += (size_t)snprintf(out + len, size - len, "%s%s",
			    len > 1 ? "," : "", notify.msgs[i].id);
	if (len < size)
		snprintf(out + len, size - len, "}");
}

static void
notify_on_sent(void *arg)
{
	char sent[NOTIFY_BATCH * 24 + 3], failed[NOTIFY_BATCH * 24 + 3];
	struct db_batch *b = db_batch_new();

	for (int i = 0; i < notify.n; i++) {
		char masked[16];
		log_mask_id(notify.msgs[i].phone, masked, sizeof(masked));
		if (notify.msgs[i].sent)
			log_info(NULL, "msg=review_sms_sent record=%s phone=%s",
			    notify.msgs[i].record, masked);
		else
			log_warn(NULL,
			    "msg=review_sms_failed record=%s phone=%s retry_s=%d",
			    notify.msgs[i].record, masked, NOTIFY_RETRY_S);
	}
	ids_array(1, sent, sizeof(sent));
	ids_array(0, failed, sizeof(failed));
	store_notifications_done(b, sent, failed, NOTIFY_RETRY_S);
	db_batch_run(ent.svc.db, b, notify_on_marked, NULL);
}

static void
notify_on_marked(void *arg, const struct db_result *res)
{
	if (res->status != DB_OK && res->status != DB_UNAVAILABLE)
		log_error(NULL, "msg=notify_mark_failed error=\"%s\"",
		    res->message ? res->message : "-");
	/* Unmarked rows are sent again after their lease: at least once. */
	notify.busy = 0;
}
