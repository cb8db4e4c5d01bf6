/* workday — the review target of one working day, in China Standard Time
 * (UTC+8, no daylight saving): Monday to Friday are working days unless an
 * exception (法定节假日 off, 调休 on) says otherwise. Pure, unit-tested in
 * test_workday.c. */
#ifndef CAPLAT_ENT_WORKDAY_H
#define CAPLAT_ENT_WORKDAY_H

#include <stddef.h>
#include <stdint.h>

/* A day that is not what the weekday says. */
struct ent_day_exception {
	int32_t day; /* days since 1970-01-01 (ent_workday_parse_date) */
	int workday; /* 1 a working day, 0 a day off */
};

/* Parses "YYYY-MM-DD" (a real date) into days since 1970-01-01. Returns 0,
 * or -1 when s is not such a date. */
int ent_workday_parse_date(const char *s, int32_t *day);

/* 1 when day is a working day under the exceptions (ex may be NULL when n
 * is 0), else 0. */
int ent_workday_is(const struct ent_day_exception *ex, size_t n, int32_t day);

/* The moment (ms since the epoch) a submission made at submitted_ms is due:
 * submitted on a working day, the same time on the next working day;
 * submitted on a day off, the end of the next working day. */
int64_t ent_workday_due_ms(const struct ent_day_exception *ex, size_t n,
    int64_t submitted_ms);

#endif
