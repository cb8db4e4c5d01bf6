/* store — the auth service's SQL (see store.c). Batches are db.h batches;
 * statement indexes are documented per function. */
#ifndef CAPLAT_AUTH_STORE_H
#define CAPLAT_AUTH_STORE_H

#include <jansson.h>

struct db_batch;

void store_account_insert(struct db_batch *b, const char *id, const char *phone,
    const char *password_hash);
/* $1 phone → id, phone, password_hash, failed_logins, locked, locked_for */
extern const char store_account_by_phone_sql[];
void store_login_failed(struct db_batch *b, const char *account_id,
    long max_failures, long lockout_seconds);
void store_login_succeeded(struct db_batch *b, const char *account_id);
/* $1 account id → id, phone, identity id, type, role, uscc, enterprise name */
extern const char store_session_view_sql[];
/* The same view by $1 phone. */
extern const char store_session_view_by_phone_sql[];
void store_me(struct db_batch *b, const char *account_id);
void store_identity_insert(struct db_batch *b, const char *id,
    const char *account_id, const char *type, const char *enterprise_name,
    const char *uscc, const char *role);
void store_identity_make_current(struct db_batch *b, const char *account_id,
    const char *identity_id, int only_if_none);
/* $1 username → id, username, password_hash, roles (JSON array text), locked */
extern const char store_staff_by_username_sql[];
void store_staff_login_failed(struct db_batch *b, const char *staff_id,
    long max_failures, long lockout_seconds);
/* $1 id, $2 username, $3 password hash, $4 roles "a,b" */
extern const char store_staff_upsert_sql[];

#endif
