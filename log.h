/* Log lines in logfmt on stderr. Lines are buffered and written once per loop round, and
 * never block the loop: when stderr is a full pipe, lines are dropped and counted. */
#ifndef SANDBOX_LOG_H
#define SANDBOX_LOG_H

void log_init(void);
/* Appends "ts=<rfc3339> " + the formatted text + "\n". Never log tokens or secrets. */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes what is buffered (non-blocking). */
void log_flush(void);

#endif
