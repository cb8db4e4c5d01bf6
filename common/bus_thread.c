/* bus_thread — what the relay and the consumer threads share: sleeping
 * until bus_close, backoff, the NATS link state logged once per outage, the
 * stream's creation. */
#include "bus_int.h"

#include "log.h"

#include <errno.h>
#include <time.h>

/* Sleeps ms unless the bus is closing. Returns -1 when it is. */
int
bus_sleep(struct bus *bus, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&bus->mu);
	while (!bus_stopping(bus))
		if (pthread_cond_timedwait(&bus->stop_cond, &bus->mu, &ts) ==
		    ETIMEDOUT)
			break;
	pthread_mutex_unlock(&bus->mu);
	return bus_stopping(bus) ? -1 : 0;
}

/* The next backoff delay: 100 ms doubling to cap_ms. */
int64_t
bus_backoff(struct bus_link *link, int64_t cap_ms)
{
	link->backoff_ms =
	    link->backoff_ms ? link->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (link->backoff_ms > cap_ms)
		link->backoff_ms = cap_ms;
	return link->backoff_ms;
}

bool
bus_nats_up(struct bus *bus)
{
	return natsConnection_Status(bus->nc) == NATS_CONN_STATUS_CONNECTED;
}

void
bus_link_nats(struct bus_link *link, bool up, natsStatus s)
{
	if (!up && !link->nats_down)
		log_warn(NULL,
		    "msg=bus_nats_failed thread=%s status=\"%s\" error=\"%s\"",
		    link->who, natsStatus_GetText(s), nats_GetLastError(NULL));
	else if (up && link->nats_down)
		log_info(NULL, "msg=bus_nats_ok thread=%s", link->who);
	link->nats_down = !up;
}

/* Creates the stream when missing; "already exists" is success. */
int
bus_ensure_stream(struct bus *bus, jsCtx *js, struct bus_link *link)
{
	const char *subjects[] = {BUS_SUBJECT_PREFIX ">"};
	jsStreamConfig cfg;
	jsErrCode jerr = 0;
	natsStatus s;

	if (atomic_load(&bus->stream_ready))
		return 0;
	jsStreamConfig_Init(&cfg);
	cfg.Name = BUS_STREAM;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Duplicates = DEDUP_WINDOW_NS;
	/* Retention: a week of events (PostgreSQL is the source of truth; the
	 * inbox remembers ids for longer than any redelivery can come). */
	cfg.MaxAge = (int64_t)bus->stream_max_age_h * 3600 * 1000000000LL;
	cfg.Replicas = bus->stream_replicas;
	s = js_AddStream(NULL, js, &cfg, NULL, &jerr);
	if (s != NATS_OK && jerr != JSStreamNameExistErr) {
		bus_link_nats(link, false, s);
		return -1;
	}
	atomic_store(&bus->stream_ready, 1);
	return 0;
}
