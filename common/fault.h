/* fault — crash points for the fault-injection tests. CAPLAT_FAULT names one
 * point ("relay_crash_after_publish", "issuance_crash_before_vendor", …);
 * the process exits at once with status 137 when it reaches that point, as
 * if killed. When CAPLAT_FAULT_ONCE names a file, only the first arrival
 * crashes: it creates the file, and nothing crashes while the file exists. */
#ifndef CAPLAT_FAULT_H
#define CAPLAT_FAULT_H

/* One module's armed point. Zero-initialised it is disarmed. */
struct fault {
	int point; /* 0: disarmed, else 1 + index in the module's names */
	const char *name; /* the armed point's name, borrowed from names */
	char *once;       /* CAPLAT_FAULT_ONCE, owned; NULL when unset or "" */
};

/* Returns 1 + the index of value in names (NULL-terminated), or 0 when value
 * is NULL, empty or none of names (it may be another module's point). A
 * module numbers its points 1, 2, … in the order of its names. */
int fault_parse(const char *value, const char *const names[]);

/* Arms f from CAPLAT_FAULT and CAPLAT_FAULT_ONCE for the points in names,
 * or leaves it disarmed; logs msg=fault_armed when armed. Call at start,
 * before threads read f; release with fault_clear(). */
void fault_arm(struct fault *f, const char *const names[]);

/* Crashes the process (_exit(137) after logging msg=fault_injected) when f
 * is armed at point, unless f->once names a file that exists or cannot be
 * created. Returns in every other case. Any thread. */
void fault_point(const struct fault *f, int point);

/* Frees what fault_arm() copied and disarms f. */
void fault_clear(struct fault *f);

#endif
