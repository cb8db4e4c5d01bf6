/* bus_envelope — the bus's pure rules: subjects and names (types, durables,
 * schemas, services, consumer filters), the CloudEvents 1.0 envelope built by
 * the relay and parsed by the consumers, and outbox rows of new events. No
 * I/O. */
#include "bus_int.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
bus_uuid_valid(const char *s)
{
	static const char hex[] = "0123456789abcdefABCDEF";

	if (s == NULL || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (strchr(hex, s[i]) == NULL || s[i] == '\0') {
			return false;
		}
	}
	return true;
}

static bool
bus_token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A dot-separated list of non-empty tokens of [A-Za-z0-9_-]. */
static bool
bus_dotted_valid(const char *s)
{
	bool token_empty = true;

	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '.') {
			if (token_empty)
				return false;
			token_empty = true;
		} else if (bus_token_char(*p)) {
			token_empty = false;
		} else {
			return false;
		}
	}
	return !token_empty;
}

int
bus_subject(const char *type, char *out, size_t size)
{
	int n;

	if (!bus_dotted_valid(type) || strncmp(type, "dlq.", 4) == 0)
		return -1;
	n = snprintf(out, size, "%s%s", BUS_SUBJECT_PREFIX, type);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return 0;
}

/* Durable consumer names: [A-Za-z0-9_-]{1,64}. */
bool
bus_durable_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!bus_token_char(s[i]))
			return false;
	return true;
}

/* Schema and service names: [a-z_][a-z0-9_]{0,62}, usable unquoted in SQL. */
bool
bus_ident_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 63 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Service names (the CloudEvents source): [a-z0-9_-]{1,63}. */
bool
bus_service_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		        s[i] == '-'))
			return false;
	return true;
}

/* A consumer filter: "caplat." then tokens, where '*' and a final '>' are
 * allowed, but never one that can match the dead-letter subjects
 * (caplat.dlq.<durable>, two tokens after "caplat."): a '*' first token
 * only with at least three tokens and no '>' ("caplat.*.audit.recorded"). */
bool
bus_filter_valid(const char *f)
{
	const char *rest;
	size_t first, tokens = 0;
	bool star_first, wide = false;

	if (f == NULL ||
	    strncmp(f, BUS_SUBJECT_PREFIX, strlen(BUS_SUBJECT_PREFIX)))
		return false;
	rest = f + strlen(BUS_SUBJECT_PREFIX);
	first = strcspn(rest, ".");
	star_first = first == 1 && rest[0] == '*';
	if (first == 0 || (first == 1 && rest[0] == '>') ||
	    (first == 3 && strncmp(rest, "dlq", 3) == 0))
		return false;
	for (const char *p = rest; *p != '\0';) {
		size_t len = strcspn(p, ".");

		if (len == 0)
			return false;
		tokens++;
		if (len == 1 && (*p == '*' || *p == '>')) {
			if (*p == '>' && p[1] != '\0')
				return false;
			wide = wide || *p == '>';
		} else {
			for (size_t i = 0; i < len; i++)
				if (!bus_token_char(p[i]))
					return false;
		}
		p += len;
		if (*p == '.') {
			p++;
			if (*p == '\0')
				return false;
		}
	}
	return !star_first || (tokens >= 3 && !wide);
}

/* Returns a new NUL-terminated copy of len bytes that is valid UTF-8 with no
 * NUL inside (bad bytes become '?'), fit for a PostgreSQL text column. */
char *
bus_text_sanitize(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80      ? 1
		    : (c & 0xe0) == 0xc0 ? 2
		    : (c & 0xf0) == 0xe0 ? 3
		    : (c & 0xf8) == 0xf0 ? 4
		                         : 0;
		bool ok = n > 0 && i + n <= len && c != 0 && c != 0xc0 &&
		    c != 0xc1 && c <= 0xf4;

		for (size_t k = 1; ok && k < n; k++)
			ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
		if (!ok) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* Returns a new CloudEvents 1.0 JSON text (caller frees with free()) for one
 * event; data_text is spliced in as is (it comes from a jsonb column), and
 * subject, time and data are left out when NULL. Returns NULL when a string
 * is not valid UTF-8. */
char *
bus_envelope_build(const char *source, const char *id, const char *type,
    const char *subject, const char *time, const char *data_text)
{
	json_t *env = json_object();
	size_t n, data_len = data_text ? strlen(data_text) : 0;
	char *buf;
	int bad = 0;

	bad |= json_object_set_new(env, "specversion", json_string("1.0"));
	bad |= json_object_set_new(env, "id", json_string(id));
	bad |= json_object_set_new(env, "source", json_string(source));
	bad |= json_object_set_new(env, "type", json_string(type));
	if (time != NULL)
		bad |= json_object_set_new(env, "time", json_string(time));
	if (subject != NULL)
		bad |=
		    json_object_set_new(env, "subject", json_string(subject));
	if (data_text != NULL)
		bad |= json_object_set_new(env, "datacontenttype",
		    json_string("application/json"));
	if (bad) {
		json_decref(env);
		return NULL;
	}
	n = json_dumpb(env, NULL, 0, JSON_COMPACT);
	buf = xmalloc(n + data_len + sizeof(",\"data\":}"));
	json_dumpb(env, buf, n, JSON_COMPACT);
	json_decref(env);
	if (data_text != NULL) {
		/* Replace the object's closing '}' by the data member. */
		n--;
		memcpy(buf + n, ",\"data\":", 8);
		n += 8;
		memcpy(buf + n, data_text, data_len);
		n += data_len;
		buf[n++] = '}';
	}
	buf[n] = '\0';
	return buf;
}

static const char *
bus_json_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* Parses a CloudEvents envelope into ev (whose strings borrow from *root,
 * which the caller releases with json_decref()). Returns 0, or -1 with a
 * reason in err and *root NULL. Leaves nats_subject and deliveries to the
 * caller. */
int
bus_envelope_parse(struct bus_event *ev, json_t **root, const char *payload,
    size_t len, char *err, size_t err_size)
{
	json_error_t jerr;
	json_t *env, *v;
	const char *why = NULL;

	memset(ev, 0, sizeof(*ev));
	*root = NULL;
	env = json_loadb(payload, len, 0, &jerr);
	if (env == NULL) {
		snprintf(err, err_size, "envelope is not JSON: %s", jerr.text);
		return -1;
	}
	if (!json_is_object(env))
		why = "envelope is not an object";
	else if (!json_is_string(json_object_get(env, "specversion")) ||
	    strcmp(bus_json_str(env, "specversion"), "1.0") != 0)
		why = "specversion is not 1.0";
	else if (!bus_uuid_valid(bus_json_str(env, "id")))
		why = "id is not a UUID";
	else if (bus_json_str(env, "type") == NULL ||
	    !*bus_json_str(env, "type"))
		why = "type is missing";
	else if (bus_json_str(env, "source") == NULL)
		why = "source is missing";
	else if ((v = json_object_get(env, "time")) != NULL &&
	    !json_is_string(v))
		why = "time is not a string";
	else if ((v = json_object_get(env, "subject")) != NULL &&
	    !json_is_string(v) && !json_is_null(v))
		why = "subject is not a string";
	if (why != NULL) {
		snprintf(err, err_size, "%s", why);
		json_decref(env);
		return -1;
	}
	ev->id = bus_json_str(env, "id");
	ev->type = bus_json_str(env, "type");
	ev->source = bus_json_str(env, "source");
	ev->subject = bus_json_str(env, "subject");
	ev->time = bus_json_str(env, "time");
	ev->data = json_object_get(env, "data");
	*root = env;
	return 0;
}

int
bus_envelope_parse_head(struct bus_event *ev, json_t **root,
    const char *payload, size_t len, char *err, size_t err_size)
{
	static const char member[] = ",\"data\":";
	const char *at =
	    len > 0 ? memmem(payload, len, member, sizeof(member) - 1) : NULL;
	char *head;
	size_t n;
	int rc;

	/* No raw '"' can stand inside a JSON string, so the first ,"data":
	 * is a member of the envelope; it is the last one when the text ends
	 * right after its value. */
	if (at == NULL || payload[len - 1] != '}')
		return bus_envelope_parse(ev, root, payload, len, err,
		    err_size);
	n = (size_t)(at - payload);
	head = xmalloc(n + 2);
	memcpy(head, payload, n);
	head[n] = '}';
	head[n + 1] = '\0';
	rc = bus_envelope_parse(ev, root, head, n + 1, err, err_size);
	free(head);
	if (rc == 0 && json_object_get(*root, "data") == NULL)
		return 0;
	/* Not our layout (a data member before other members) or a bad
	 * envelope: the whole text decides. */
	json_decref(*root);
	return bus_envelope_parse(ev, root, payload, len, err, err_size);
}

int
bus_event_prepare(struct bus_event_row *out, const char *type,
    const char *subject, json_t *data)
{
	char nats_subject[256];

	memset(out, 0, sizeof(*out));
	if (bus_subject(type, nats_subject, sizeof(nats_subject)) != 0)
		return -1;
	if (data != NULL) {
		size_t n =
		    json_dumpb(data, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);

		if (n == 0)
			return -1;
		out->data = xmalloc(n + 1);
		json_dumpb(data, out->data, n, JSON_COMPACT | JSON_ENCODE_ANY);
		out->data[n] = '\0';
	}
	uuid_v4(out->id);
	out->type = xstrdup(type);
	out->subject = subject ? xstrdup(subject) : NULL;
	return 0;
}

void
bus_event_row_params(const struct bus_event_row *row, const char *params[4])
{
	params[0] = row->id;
	params[1] = row->type;
	params[2] = row->subject;
	params[3] = row->data;
}

void
bus_event_row_clear(struct bus_event_row *row)
{
	free(row->type);
	free(row->subject);
	free(row->data);
	memset(row, 0, sizeof(*row));
}
