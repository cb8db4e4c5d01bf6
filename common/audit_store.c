/* audit_store — the SQL of audit.h's flush (deploy/sql/common/
 * 050_audit_batch.sql): the one statement, nowhere else. */
#include "audit.h"

/* Sends up to AUDIT_FLUSH_ROWS held entries as one <schema>.audit.batch
 * event; returns how many. */
const char audit_flush_sql[] = "SELECT audit_flush(200)";
