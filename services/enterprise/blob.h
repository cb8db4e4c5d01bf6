/* blob — where attachment bytes live: a content-addressed store keyed by the
 * SHA-256 of the bytes (64 lower-case hex digits), behind one interface so
 * that an object store can replace the local directory by configuration.
 *
 * Every call but open/free does blocking I/O: call it from a work pool
 * thread (common/work.h), never on the event loop. The store is safe to use
 * from several threads and processes at once. */
#ifndef CAPLAT_ENT_BLOB_H
#define CAPLAT_ENT_BLOB_H

#include <stddef.h>

struct blob_store;

/* Opens the store named by spec: "local:<dir>" (created, with its parents,
 * if missing).
 * Returns 0 and sets *out (caller frees with blob_store_free()), or -1 with
 * the reason in err. */
int blob_store_open(struct blob_store **out, const char *spec, char *err,
    size_t err_size);
/* Accepts NULL. */
void blob_store_free(struct blob_store *bs);

/* Stores len bytes under sha256 (which the caller computed from data).
 * Storing bytes already there is a no-op, so uploads of the same bytes
 * share one blob. Durable (fsync) when it returns 0; -1 with errno set on
 * failure or a malformed key. */
int blob_put(struct blob_store *bs, const char *sha256, const void *data,
    size_t len);

/* Reads the blob sha256 into a new buffer *out of *out_len bytes (caller
 * frees with free()). Returns 0; -1 with errno set (ENOENT: no such blob,
 * EFBIG: larger than max_len). */
int blob_get(struct blob_store *bs, const char *sha256, size_t max_len,
    unsigned char **out, size_t *out_len);

#endif
