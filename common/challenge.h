/* challenge — single-use challenges for proofs of key possession (CA login,
 * certificate renewal): 32 random bytes under a UUID id, kept in Redis for a
 * TTL with the facts they are bound to, and taken at most once (GETDEL).
 * A challenge belongs to one scope: its key prefix (owned by the service's
 * store.c) and a name stored with it and checked on take, so a challenge of
 * one scope is never accepted by another. All calls run on the loop thread. */
#ifndef CAPLAT_CHALLENGE_H
#define CAPLAT_CHALLENGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct crypto_key;
struct kv;

#define CHALLENGE_NONCE_LEN 32      /* raw bytes, what the client signs */
#define CHALLENGE_NONCE_B64_SIZE 45 /* 44 base64 characters and NUL */
#define CHALLENGE_ID_SIZE 37        /* a UUID and NUL */
#define CHALLENGE_KEY_SIZE 128

/* One kind of challenge. Both strings are static. */
struct challenge_scope {
	const char *name;       /* "auth.login", "issuance.renewal" */
	const char *key_prefix; /* "auth:challenge:", from the store */
};

/* A challenge as issued (what the client is answered). */
struct challenge {
	char id[CHALLENGE_ID_SIZE];
	char nonce_b64[CHALLENGE_NONCE_B64_SIZE];
	int64_t expires_ms; /* wall clock */
};

/* Called once with the stored challenge (borrowed for the call), or with
 * NULL when Redis is unavailable. */
typedef void (*challenge_issued_fn)(void *arg, const struct challenge *c);

/* Makes a challenge of scope living ttl seconds, bound to facts (a JSON
 * object, borrowed; NULL for none), stores it (SET … EX … NX) and calls cb. */
void challenge_issue(struct kv *kv, const struct challenge_scope *scope,
    long ttl, json_t *facts, challenge_issued_fn cb, void *arg);

enum challenge_status {
	CHALLENGE_OK,
	CHALLENGE_NOT_FOUND,  /* unknown, expired, taken, or of another scope */
	CHALLENGE_UNAVAILABLE /* Redis did not answer */
};

/* What a take found; borrowed for the callback (json_incref facts to keep
 * them). */
struct challenge_taken {
	json_t *facts; /* the object given to challenge_issue ({} for none) */
	unsigned char nonce[CHALLENGE_NONCE_LEN];
};

/* Called once; t is NULL unless status is CHALLENGE_OK. */
typedef void (*challenge_taken_fn)(void *arg, enum challenge_status status,
    const struct challenge_taken *t);

/* Takes challenge id of scope (GETDEL: single use, whoever asks) and calls
 * cb. An id that is not a UUID answers CHALLENGE_NOT_FOUND at once. */
void challenge_take(struct kv *kv, const struct challenge_scope *scope,
    const char *id, challenge_taken_fn cb, void *arg);

/* The API's Challenge object {challenge_id, nonce, expires_at} of c;
 * returns a new reference. */
json_t *challenge_json(const struct challenge *c);
/* 1 when signature_b64 (standard base64) is key's signature over the raw
 * nonce by the rules of its type (crypto_verify_sig), else 0 (also for bad
 * base64). No I/O: callable on a worker. */
int challenge_signature_ok(const struct crypto_key *key,
    const unsigned char nonce[CHALLENGE_NONCE_LEN], const char *signature_b64);

/* ---- the pure parts, for the functions above and their tests ---------- */

/* Fills c with a new UUID v4 id, 32 random bytes in base64 and the expiry
 * now_ms + ttl seconds. */
void challenge_new(struct challenge *c, long ttl, int64_t now_ms);
/* Writes the Redis key of id in scope (key_prefix + id) into out. Returns
 * 0, or -1 when id is not a UUID or the key does not fit. */
int challenge_key(const struct challenge_scope *scope, const char *id,
    char *out, size_t size);
/* Returns the stored value {"scope","nonce","facts"} as a new string
 * (caller frees); facts borrowed, NULL for {}. */
char *challenge_encode(const struct challenge_scope *scope,
    const char *nonce_b64, json_t *facts);
/* Reads a stored value of len bytes. Returns 0 with *facts a new reference
 * (caller decrefs) and the raw nonce; -1 when it is malformed, of another
 * scope, or its nonce is not 32 bytes. */
int challenge_decode(const struct challenge_scope *scope, const char *text,
    size_t len, json_t **facts, unsigned char nonce[CHALLENGE_NONCE_LEN]);

#endif
