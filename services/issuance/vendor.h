/* vendor — the vendor CAs behind one interface in the style of step-ca's
 * CertificateAuthorityService: create, renew, revoke and list (the vendor's
 * directory: its certificates for a USCC, or changed since a cursor), each
 * answering once on the loop thread. Every call carries the intent's id as request id: a
 * repeated id must give the first answer again, never a second certificate
 * (README.md). Adapters: "local" (localca.c, the default) and "remote". */
#ifndef CAPLAT_ISSUANCE_VENDOR_H
#define CAPLAT_ISSUANCE_VENDOR_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

struct event_base;
struct localca;
struct vendor;

enum vendor_status {
	VENDOR_OK,
	VENDOR_UNAVAILABLE, /* down, slow or 5xx: ask again later, same id */
	VENDOR_REJECTED,    /* the vendor refused the request: final */
};

/* A certificate request. Borrowed for the duration of the call only. */
struct vendor_cert_request {
	const char *request_id;  /* idempotency key (UUID) */
	const char *serial;      /* reserved serial, upper-case hex */
	const char *csr_pem;     /* checked PKCS#10 carrying the new key */
	const char *renewed_pem; /* renew: the certificate renewed (its subject
	                          * is kept); create: NULL (the CSR's subject) */
	time_t not_before, not_after;
};

/* A certificate answer. Borrowed: valid during the callback only. */
struct vendor_cert_result {
	enum vendor_status status;
	const char *certificate; /* PEM, when VENDOR_OK */
	const char *chain;       /* PEM of the issuing CAs, issuer first, the
	                          * root last, when VENDOR_OK */
	const char *error;       /* "" when VENDOR_OK */
};

struct vendor_revoke_request {
	const char *request_id;
	const char *serial;
	const char *issuer;
	const char *reason; /* issuance.cert.revoked reason */
	time_t revoked_at;
};

/* A directory page: the certificates of uscc (when not NULL), else those
 * issued or changed after the cursor since (NULL: from the start). */
struct vendor_list_request {
	const char *uscc;
	const char *since;
	long limit;
};

/* A directory answer. Borrowed: valid during the callback only. items is a
 * JSON array of {certificate (PEM), holder, lock_kind, key_serial,
 * key_vendor, applied_at (RFC 3339), platforms: [code, …], revoked_at
 * (RFC 3339, when the vendor revoked it), revocation_reason (an
 * issuance.cert.revoked reason)} (all but certificate may be absent or
 * null; a certificate the vendor changed is listed again with its new
 * values, sync.c applies them); next_cursor is the cursor to ask from
 * next time (NULL when the page is empty); more: another page is ready. */
struct vendor_list_result {
	enum vendor_status status;
	json_t *items;
	const char *next_cursor;
	int more;
	const char *error;
};

typedef void (*vendor_cert_fn)(void *arg, const struct vendor_cert_result *res);
typedef void (*vendor_list_fn)(void *arg, const struct vendor_list_result *res);
typedef void (
    *vendor_done_fn)(void *arg, enum vendor_status status, const char *error);

struct vendor_ops {
	void (*create)(struct vendor *v, const struct vendor_cert_request *r,
	    vendor_cert_fn cb, void *arg);
	void (*renew)(struct vendor *v, const struct vendor_cert_request *r,
	    vendor_cert_fn cb, void *arg);
	void (*revoke)(struct vendor *v, const struct vendor_revoke_request *r,
	    vendor_done_fn cb, void *arg);
	void (*list)(struct vendor *v, const struct vendor_list_request *r,
	    vendor_list_fn cb, void *arg);
	void (*free)(struct vendor *v);
};

struct vendor {
	const struct vendor_ops *ops;
	char *adapter; /* "local", "remote" */
	char *name;    /* the vendor recorded for the certificates it issues */
	void *impl;
};

/* Issues a new certificate for the CSR (a first application). */
void vendor_create(struct vendor *v, const struct vendor_cert_request *r,
    vendor_cert_fn cb, void *arg);
/* Issues the renewal of r->renewed_pem for the CSR's new key. */
void vendor_renew(struct vendor *v, const struct vendor_cert_request *r,
    vendor_cert_fn cb, void *arg);
/* vendor_renew with csr, the request's CSR already parsed and verified
 * (borrowed until cb): the local adapter signs it without parsing and
 * verifying it again (issue 16); other adapters send r->csr_pem as ever. */
struct crypto_csr;
void vendor_renew_csr(struct vendor *v, const struct vendor_cert_request *r,
    const struct crypto_csr *csr, vendor_cert_fn cb, void *arg);
/* Revokes a certificate the vendor issued. */
void vendor_revoke(struct vendor *v, const struct vendor_revoke_request *r,
    vendor_done_fn cb, void *arg);

/* Reads a page of the vendor's directory. */
void vendor_list(struct vendor *v, const struct vendor_list_request *r,
    vendor_list_fn cb, void *arg);

/* ---- the adapters of this process ---- */

/* The i-th adapter of this process, or NULL past the last. */
struct vendor *vendor_at(size_t i);

/* Registers an adapter (steals v). At most 8. */
void vendor_register(struct vendor *v);
/* The adapter named adapter ("local"), or NULL. */
struct vendor *vendor_by_adapter(const char *adapter);
/* The adapter that issues as vendor name, or NULL. */
struct vendor *vendor_by_name(const char *name);
/* The adapter that renews a certificate of vendor cert_vendor: the
 * configured mapping, else the vendor's own adapter, else the default. */
struct vendor *vendor_for(const char *cert_vendor, const char *adapters_map,
    const char *default_adapter);
/* Writes "{A,B}" (a PostgreSQL array literal) of the vendor names whose
 * revocations are forwarded (the remote adapters) into a new string. */
char *vendor_forward_names(void);
void vendor_free_all(void);

/* The local CA as an adapter (localca borrowed, must outlive it). Its
 * signing runs on the work pool. */
struct vendor *vendor_local_new(struct localca *ca, const char *name);
/* A vendor CA's HTTP API at url ("http://host:port/prefix"), token sent as
 * a bearer token when not empty. Returns NULL on a bad url. */
struct vendor *vendor_remote_new(struct event_base *base, const char *url,
    const char *name, const char *token, long timeout_ms);

/* ---- localca.c: the local CA on disk ---- */

/* One issuing CA of the local CA: "rsa" or "sm2". */
struct localca_ca {
	const char *name;
	struct crypto_cert *root, *ca;
	struct crypto_key *key; /* the issuing CA's private key */
	char *chain_pem;        /* issuing CA then root, PEM */
};

/* Opens the local CA in dir ($CAPLAT_VAR_DIR/ca), creating it on first use
 * under an exclusive lock (keys 0600, directory 0700): an RSA-2048 root and
 * issuing CA, and an SM2 root and issuing CA signed with SM3 and the
 * distinguishing ID. Writes dir/roots.pem (roots and issuing CAs: what a
 * relying party such as auth's CAPLAT_VENDOR_ROOTS needs). crl_base_url
 * ("" for none) puts a CRL distribution point <base><name>.crl in the
 * certificates issued. On success sets *out and returns 0; on error writes
 * the reason into err and returns -1. */
int localca_open(struct localca **out, const char *dir,
    const char *crl_base_url, char *err, size_t err_size);
void localca_free(struct localca *ca);
/* The issuing CA by name ("rsa", "sm2"), or NULL. Borrowed. */
const struct localca_ca *localca_find(const struct localca *ca,
    const char *name);
/* 1 when issuer_dn is one of the local issuing CAs' subject. */
int localca_issues(const struct localca *ca, const char *issuer_dn);
/* Signs synchronously (call it off the loop): checks the CSR, picks the SM2
 * CA for an SM2 key and the RSA CA otherwise, and issues with the request's
 * serial and validity, the subject of r->renewed_pem (or the CSR's).
 * On success sets *cert_pem and *chain_pem to new strings and returns 0; on
 * error writes the reason into err and returns -1. */
int localca_issue(const struct localca *ca, const struct vendor_cert_request *r,
    char **cert_pem, char **chain_pem, char *err, size_t err_size);
/* localca_issue with r->csr_pem already parsed and verified as csr
 * (borrowed; NULL: parse and verify it here). */
int localca_issue_csr(const struct localca *ca,
    const struct vendor_cert_request *r, const struct crypto_csr *csr,
    char **cert_pem, char **chain_pem, char *err, size_t err_size);
/* The local CA's directory, <dir>/issued.jsonl: one line per certificate
 * issued at its desk (caplat-issuance ca-issue), {seq, uscc, certificate,
 * holder, lock_kind, key_serial, key_vendor, applied_at, platforms}.
 * localca_directory_add appends meta (borrowed, a JSON object completed with
 * seq, uscc and certificate) under the directory's lock. localca_directory
 * reads the page of vendor_list_request r (the cursor is the last seq
 * read): on success sets *items (a new array), *next (a new string or
 * NULL) and *more, returns 0. Both synchronous (off the loop). */
int localca_directory_add(const struct localca *ca, const char *cert_pem,
    const char *uscc, json_t *meta, char *err, size_t err_size);
int localca_directory(const struct localca *ca,
    const struct vendor_list_request *r, json_t **items, char **next, int *more,
    char *err, size_t err_size);

/* Makes the DER CRL of issuing CA c (synchronous). */
struct crypto_crl_entry;
int localca_crl(const struct localca_ca *c,
    const struct crypto_crl_entry *entries, size_t n, time_t now, long hours,
    unsigned char **der, size_t *len);

#endif
