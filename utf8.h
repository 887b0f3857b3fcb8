/* Where UTF-8 characters start and end in a window of bytes, so that output read in
 * pieces (pipe and terminal reads, ring offsets, WebSocket frames) is shown as text without
 * cutting a character in two: a cut character would become two U+FFFD. Pure. */
#ifndef SANDBOX_UTF8_H
#define SANDBOX_UTF8_H
#include <stddef.h>

/* Bytes (0..3) at the end of p[0..n) that are a valid but unfinished start of a character:
 * a reader that stops before them and goes on from there later joins the character. An
 * invalid sequence is not held back (it becomes U+FFFD whatever follows). */
size_t utf8_partial_tail(const char *p, size_t n);

/* Continuation bytes (0..3) at the start of p[0..n): the rest of a character whose first
 * bytes are not in the window (dropped from a ring, or sent before). */
size_t utf8_orphan_head(const char *p, size_t n);

#endif
