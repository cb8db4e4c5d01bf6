/* audit_store — the SQL of audit.h's flush (deploy/sql/common/
 * 050_audit_batch.sql): the one statement, nowhere else. */
#include "audit.h"

/* Sends up to AUDIT_FLUSH_ROWS held entries as one <schema>.audit.batch
 * event; returns how many. */
const char audit_flush_sql[] = "SELECT audit_flush(200)";

/* An entry's outbox row, already held ($1 id, $2 type, $3 subject, $4 data:
 * bus_event_row_params()); the outbox_audit_hold trigger's WHEN (published_at
 * IS NULL) is false for it, and so is the relay's wake-up trigger's (070):
 * it announces nothing (095), audit.c has its batch flush it once
 * committed. */
const char audit_held_insert_sql[] =
    "INSERT INTO outbox (id, type, subject, data, published_at) "
    "VALUES ($1::uuid, $2, $3, $4::jsonb, 'infinity')";
