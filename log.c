#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define LOG_BUFFER 65536  /* one round's lines; past it lines are dropped, not blocked on */

static char pending[LOG_BUFFER];
static size_t npending;
static unsigned long dropped;

void log_init(void)
{
    struct stat st;
    /* A pipe or socket reader that stalls must not stall the agent. A terminal or file
     * does not block for long, and O_NONBLOCK on a tty would leak into the shell. */
    if (fstat(STDERR_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        int fl = fcntl(STDERR_FILENO, F_GETFL);
        if (fl >= 0)
            fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK);
    }
}

void log_line(const char *fmt, ...)
{
    char line[1024];
    char ts[25];
    util_rfc3339(util_wall_ms(), ts);
    int n = snprintf(line, sizeof line, "ts=%s ", ts);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;   /* truncated line still ends in a newline */
    line[len++] = '\n';
    if (len > sizeof pending - npending) {
        dropped++;
        return;
    }
    memcpy(pending + npending, line, len);
    npending += len;
}

void log_flush(void)
{
    size_t off = 0;
    while (off < npending) {
        ssize_t w = write(STDERR_FILENO, pending + off, npending - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (off < npending)
        dropped++;   /* the rest of this round is lost rather than waited for */
    npending = 0;
    if (dropped && npending == 0 && off > 0) {
        char msg[80];
        int n = snprintf(msg, sizeof msg, "level=warn event=log_dropped count=%lu\n", dropped);
        if (write(STDERR_FILENO, msg, (size_t)n) == n)
            dropped = 0;
    }
}
