/* session — bearer-token sessions in Redis with a sliding TTL.
 *
 * A token is 32 random bytes (base64url) given to the client once; Redis
 * keeps only its SHA-256 ("sess:<hex>" → the session JSON), so a copy of
 * Redis holds no usable token. Every check slides the TTL (GETEX, one round
 * trip). "sessions:<account>" lists an account's token hashes for "log out
 * everywhere". */
#ifndef CAPLAT_SESSION_H
#define CAPLAT_SESSION_H

#include <jansson.h>

struct http_req;
struct kv;

struct session {
	char token_hash[65];
	json_t *data; /* the whole session object, owned */
	/* Borrowed views into data (NULL when absent): */
	const char *account_id;
	const char *staff_id;      /* set for staff sessions */
	const char *identity_id;   /* current identity */
	const char *identity_type; /* "enterprise" | "personal" */
	const char *role; /* admin | project_lead | agent (enterprise) */
	const char *enterprise_id;
	const char *uscc;
};

void session_free(struct session *s);

/* Sets the session TTL in seconds (default 1800) and the kv client used by
 * session_require (borrowed). Call once at start. */
void session_setup(struct kv *kv, int ttl_seconds);

/* Authenticates req from "Authorization: Bearer <token>". On success sets
 * req->session and calls next(req); otherwise answers 401 UNAUTHENTICATED
 * (or 503 when Redis is down) itself and next is not called. */
void session_require(struct http_req *req, void (*next)(struct http_req *req));

/* Returns 1 when s is a staff session holding role (reviewer, finance,
 * operator), else 0. Answers nothing. */
int session_has_role(const struct session *s, const char *role);

/* Answers 403 FORBIDDEN and returns -1 unless the session is a staff session
 * holding role (reviewer, finance, operator). */
int session_require_staff(struct http_req *req, const char *role);

/* Creates a session holding data (borrowed; must contain "account_id" or
 * "staff_id") and calls cb with the new token (borrowed for the call) or
 * NULL when Redis is down. */
typedef void (*session_created_fn)(void *arg, const char *token);
void session_create(json_t *data, session_created_fn cb, void *arg);

/* Replaces the data of an existing session (e.g. identity switch); cb gets
 * 0 or -1. */
typedef void (*session_done_fn)(void *arg, int status);
void session_update(const char *token_hash, json_t *data, session_done_fn cb,
    void *arg);
/* Deletes one session (logout), or every session of account_id. */
void session_delete(const char *token_hash, session_done_fn cb, void *arg);
void session_delete_all(const char *account_id, session_done_fn cb, void *arg);

#endif
