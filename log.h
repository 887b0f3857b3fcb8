/* Log lines on stderr, in logfmt or JSON. Lines are buffered and written once per loop round,
 * and never block the loop: when stderr is a full pipe, lines are dropped and counted. */
#ifndef SANDBOX_LOG_H
#define SANDBOX_LOG_H

void log_init(void);
/* "logfmt" (NULL too) or "json": each line then becomes one JSON object, the logfmt pairs
 * as members (bare integers as numbers, except ids). Returns 0, or -1 for another name. */
int log_set_format(const char *name);
/* Appends "ts=<rfc3339> " + the formatted text + "\n". Never log tokens or secrets. */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes what is buffered (non-blocking). */
void log_flush(void);

#endif
