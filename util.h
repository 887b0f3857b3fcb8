/* Clocks, timestamps, random identifiers and string vectors: the small things everyone needs. */
#ifndef SANDBOX_UTIL_H
#define SANDBOX_UTIL_H
#include <stddef.h>
#include <stdint.h>

int64_t util_mono_us(void);           /* CLOCK_MONOTONIC, microseconds: deadlines, durations */
int64_t util_wall_ms(void);           /* CLOCK_REALTIME, milliseconds: what clients see */
/* "2026-11-22T19:47:01.123Z" into out (needs 25 bytes with the NUL). */
void util_rfc3339(int64_t wall_ms, char out[25]);
/* IMF-fixdate for the Date header, "Mon, 23 Nov 2026 18:09:48 GMT" (needs 30 bytes). */
void util_http_date(int64_t unix_s, char out[30]);
/* nhex lowercase hex digits from the kernel's CSPRNG (getrandom), NUL-terminated. */
void util_random_hex(char *out, size_t nhex);
/* The first n strings of v copied into one malloc'd block (pointers, then the strings),
 * NULL-terminated: an argv or envp freed with one free(). NULL when out of memory. */
char **util_strv_dup(char *const *v, size_t n);

#endif
