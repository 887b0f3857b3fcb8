#include "wsconn.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "limits.h"
#include "loop.h"
#include "server.h"
#include "timer.h"
#include "util.h"
#include "ws.h"

#define READ_SCRATCH 65536   /* one read per loop round per connection */

enum wstate {
    W_OPEN,
    W_CLOSING,   /* our close is queued or sent: waiting for the client's close or EOF */
    W_LINGER,    /* write side shut: draining input until EOF so our last bytes arrive */
    W_DEAD,      /* fd closed; ops->closed and free come from the timer */
};

struct wsconn {
    int fd;
    int raw;
    enum wstate state;
    int reading;                 /* the owner takes input */
    int close_after;             /* once everything queued is written: shut down and linger */
    const struct wsconn_ops *ops;
    void *ctx;
    struct ws_parser parser;
    struct buf msg;              /* a fragmented client message; freed after each */
    char *out;                   /* the rest of one message the socket did not take */
    size_t out_len, out_off;
    uint8_t ctrl[WS_HEADER_MAX + WS_CONTROL_MAX];   /* a control frame waiting behind out */
    size_t ctrl_len;
    int ctrl_is_close;
    int64_t last_in, last_out, deadline;
    struct timer timer;
    struct wsconn *prev, *next;
};

static struct wsconn *all;
static int count;
static uint8_t scratch[READ_SCRATCH];

static void on_event(void *ctx, int fd, short revents);

static void w_watch(struct wsconn *w)
{
    short ev = 0;
    if (w->reading || w->state != W_OPEN)
        ev |= POLLIN;
    if (w->out || w->ctrl_len)
        ev |= POLLOUT;
    loop_set(w->fd, ev);
}

/* Closes the socket now; ops->closed and the free come from the timer, so no owner ever
 * sees its connection vanish inside one of its own calls. */
static void w_die(struct wsconn *w)
{
    if (w->state == W_DEAD)
        return;
    w->state = W_DEAD;
    loop_del(w->fd);
    close(w->fd);
    server_release();
    free(w->out);
    w->out = NULL;
    buf_free(&w->msg);
    timer_arm(&w->timer, util_mono_us());
}

static void w_linger(struct wsconn *w)
{
    shutdown(w->fd, SHUT_WR);
    w->state = W_LINGER;
    w->deadline = util_mono_us() + (int64_t)LIMIT_WS_CLOSE_MS * 1000;
    timer_arm(&w->timer, w->deadline);
    w_watch(w);
}

/* Writes what is queued: the rest of a message, then a control frame. Returns 1 when
 * nothing is left, 0 when the socket is full, -1 on error. */
static int w_flush(struct wsconn *w)
{
    while (w->out || w->ctrl_len) {
        const void *p = w->out ? (const void *)(w->out + w->out_off) : w->ctrl;
        size_t n = w->out ? w->out_len - w->out_off : w->ctrl_len;
        ssize_t k = send(w->fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (k <= 0)
            return -1;
        w->last_out = util_mono_us();
        if (w->out) {
            w->out_off += (size_t)k;
            if (w->out_off == w->out_len) {
                free(w->out);
                w->out = NULL;
            }
        } else {
            memmove(w->ctrl, w->ctrl + k, w->ctrl_len - (size_t)k);
            w->ctrl_len -= (size_t)k;
        }
    }
    return 1;
}

/* One write for the whole message (its own TCP segment); what the socket does not take is
 * copied into out. Returns 0, or -1 when the connection died. */
static int w_write(struct wsconn *w, const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
    ssize_t k;
    do
        k = sendmsg(w->fd, &mh, MSG_NOSIGNAL);
    while (k < 0 && errno == EINTR);
    if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        w_die(w);
        return -1;
    }
    if (k < 0)
        k = 0;
    w->last_out = util_mono_us();
    if ((size_t)k == total)
        return 0;
    size_t rest = total - (size_t)k, skip = (size_t)k, at = 0;
    w->out = malloc(rest);
    if (!w->out) {
        w_die(w);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(w->out + at, (const char *)iov[i].iov_base + skip, len - skip);
        at += len - skip;
        skip = 0;
    }
    w->out_len = rest;
    w->out_off = 0;
    w_watch(w);
    return 0;
}

/* A control frame: at once when nothing is queued, else after the pending message (one
 * slot: a newer pong replaces an older one, nothing replaces a close). */
static void w_control(struct wsconn *w, int opcode, const uint8_t *payload, size_t len)
{
    if (w->ctrl_len && w->ctrl_is_close)
        return;
    uint8_t f[WS_HEADER_MAX + WS_CONTROL_MAX];
    size_t h = ws_frame_header(f, opcode, 1, len);
    if (len)
        memcpy(f + h, payload, len);
    if (!w->out && !w->ctrl_len) {
        struct iovec iov = { f, h + len };
        w_write(w, &iov, 1);
        return;
    }
    memcpy(w->ctrl, f, h + len);
    w->ctrl_len = h + len;
    w->ctrl_is_close = opcode == WS_CLOSE;
    w_watch(w);
}

/* Sends a close frame, then: linger (close_after) or wait for the client's close. */
static void w_send_close(struct wsconn *w, int code, const char *reason, int close_after)
{
    uint8_t pl[WS_CONTROL_MAX];
    size_t n = code ? ws_close_payload(pl, code, reason) : 0;
    w->state = W_CLOSING;
    w->close_after = close_after;
    w->deadline = util_mono_us() + (int64_t)LIMIT_WS_CLOSE_MS * 1000;
    timer_arm(&w->timer, w->deadline);
    w_control(w, WS_CLOSE, pl, n);
    if (w->state == W_CLOSING && close_after && !w->out && !w->ctrl_len)
        w_linger(w);
}

static void w_deliver(struct wsconn *w, int opcode, const char *data, size_t len)
{
    if (w->state == W_OPEN && w->ops->message)
        w->ops->message(w->ctx, w, opcode, data, len);
}

/* Parses what was read. Stops early when the owner closes or the protocol fails. */
static void w_parse(struct wsconn *w, uint8_t *in, size_t n)
{
    size_t pos = 0;
    while (pos < n && (w->state == W_OPEN || w->state == W_CLOSING)) {
        struct ws_event ev;
        ssize_t k = ws_parse(&w->parser, in + pos, n - pos, &ev);
        if (k < 0) {
            buf_free(&w->msg);
            if (w->state == W_OPEN)
                w_send_close(w, (int)-k, k == -WS_CLOSE_TOO_BIG ? "message too big"
                                         : k == -WS_CLOSE_INVALID ? "invalid UTF-8"
                                                                  : "protocol error", 1);
            else
                w_die(w);
            return;
        }
        pos += (size_t)k;
        switch (ev.type) {
        case WS_EV_NONE:
            return;
        case WS_EV_DATA:
            if (!w->msg.len && ev.last) {   /* the usual case: no copy */
                w_deliver(w, ev.opcode, (const char *)ev.data, ev.len);
                break;
            }
            if (buf_append(&w->msg, ev.data, ev.len) < 0) {
                w_send_close(w, WS_CLOSE_TOO_BIG, "message too big", 1);
                return;
            }
            if (ev.last) {
                w_deliver(w, ev.opcode, w->msg.data, w->msg.len);
                buf_free(&w->msg);
            }
            break;
        case WS_EV_PING:
            if (w->state == W_OPEN)
                w_control(w, WS_PONG, ev.data, ev.len);
            break;
        case WS_EV_PONG:
            break;
        case WS_EV_CLOSE:
            if (w->state == W_CLOSING) {   /* the answer to ours: done */
                w_die(w);
                return;
            }
            /* echo the code (RFC 6455 5.5.1), then the server closes the TCP connection */
            w_send_close(w, ev.close_code == WS_CLOSE_NO_STATUS ? 0 : ev.close_code, NULL, 1);
            return;
        }
    }
}

static void w_readable(struct wsconn *w)
{
    ssize_t n = read(w->fd, scratch, sizeof scratch);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        w_die(w);   /* the client left (or reset) */
        return;
    }
    w->last_in = util_mono_us();
    if (w->raw || w->state == W_LINGER)
        return;   /* SSE clients have nothing to say; lingering input is dropped */
    w_parse(w, scratch, (size_t)n);
}

static void on_event(void *ctx, int fd, short revents)
{
    struct wsconn *w = ctx;
    (void)fd;
    if (w->state == W_DEAD)
        return;
    if (revents & POLLOUT || ((revents & (POLLERR | POLLHUP)) && (w->out || w->ctrl_len))) {
        int r = w_flush(w);
        if (r < 0) {
            w_die(w);
            return;
        }
        if (r > 0) {
            if (w->close_after && w->state != W_LINGER) {
                w_linger(w);
            } else {
                w_watch(w);
                if (w->state == W_OPEN && w->ops->writable)
                    w->ops->writable(w->ctx, w);
            }
        }
        if (w->state == W_DEAD)
            return;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR))
        w_readable(w);
}

/* Keepalive, idle and stall checks, closing deadlines, and the deferred end. */
static void on_timer(void *ctx)
{
    struct wsconn *w = ctx;
    int64_t now = util_mono_us();
    if (w->state == W_DEAD) {
        if (w->prev)
            w->prev->next = w->next;
        else
            all = w->next;
        if (w->next)
            w->next->prev = w->prev;
        count--;
        w->ops->closed(w->ctx);
        free(w);
        return;
    }
    if (w->state != W_OPEN) {
        if (now >= w->deadline)
            w_die(w);
        else
            timer_arm(&w->timer, w->deadline);
        return;
    }
    if (w->out && now - w->last_out > (int64_t)LIMIT_WRITE_MS * 1000) {
        w_die(w);   /* takes nothing: a stalled reader holds no slot forever */
        return;
    }
    int64_t every = (int64_t)(w->raw ? LIMIT_SSE_PING_MS : LIMIT_WS_PING_MS) * 1000;
    if (!w->raw && now - w->last_in > (int64_t)LIMIT_WS_IDLE_MS * 1000) {
        w_send_close(w, WS_CLOSE_GOING_AWAY, "idle", 0);
        return;
    }
    if (w->raw != WSCONN_BARE && !w->out && !w->ctrl_len && now - w->last_out >= every - 1000) {
        if (w->raw) {
            static const char ping[] = ": ping\n\n";
            struct iovec iov = { (void *)ping, sizeof ping - 1 };
            w_write(w, &iov, 1);
        } else {
            w_control(w, WS_PING, NULL, 0);
        }
        if (w->state == W_DEAD)
            return;
    }
    timer_arm(&w->timer, now + every);
}

/* ---- API ---- */

struct wsconn *wsconn_start(int fd, int raw, const char *pending, size_t len,
                            const struct wsconn_ops *ops, void *ctx)
{
    struct wsconn *w = calloc(1, sizeof *w);
    if (!w || loop_add(fd, POLLIN, on_event, w) < 0) {
        free(w);
        close(fd);
        server_release();
        return NULL;
    }
    w->fd = fd;
    w->raw = raw;
    w->reading = 1;
    w->ops = ops;
    w->ctx = ctx;
    w->parser.max_message = LIMIT_WS_MESSAGE;
    buf_init(&w->msg, LIMIT_WS_MESSAGE);
    w->last_in = w->last_out = util_mono_us();
    timer_init(&w->timer, on_timer, w);
    timer_arm(&w->timer, w->last_in + (int64_t)(raw ? LIMIT_SSE_PING_MS : LIMIT_WS_PING_MS) * 1000);
    w->next = all;
    if (all)
        all->prev = w;
    all = w;
    count++;
    if (len && !raw) {   /* frames that came with the handshake; parsed in a copy */
        size_t n = len < sizeof scratch ? len : sizeof scratch;
        memcpy(scratch, pending, n);
        w_parse(w, scratch, n);
    }
    return w;
}

struct wsconn *wsconn_take(int fd, int raw, const char *pending, size_t len,
                           const struct wsconn_ops *ops, void *ctx)
{
    struct wsconn *w = fd < 0 ? NULL : wsconn_start(fd, raw, pending, len, ops, ctx);
    if (!w)
        ops->closed(ctx);
    return w;
}

int wsconn_sendv(struct wsconn *w, int opcode, const struct iovec *iov, int n)
{
    if (w->state != W_OPEN) {
        errno = EPIPE;
        return -1;
    }
    if (w->out || w->ctrl_len) {
        errno = EBUSY;
        return -1;
    }
    struct iovec v[9];
    uint8_t h[WS_HEADER_MAX];
    int k = 0;
    if (n > 8) {
        errno = EINVAL;
        return -1;
    }
    if (!w->raw) {
        size_t total = 0;
        for (int i = 0; i < n; i++)
            total += iov[i].iov_len;
        v[k++] = (struct iovec){ h, ws_frame_header(h, opcode, 1, total) };
    }
    for (int i = 0; i < n; i++)
        if (iov[i].iov_len)
            v[k++] = iov[i];
    return w_write(w, v, k);
}

int wsconn_send(struct wsconn *w, int opcode, const void *data, size_t len)
{
    struct iovec iov = { (void *)data, len };
    return wsconn_sendv(w, opcode, &iov, 1);
}

size_t wsconn_pending(const struct wsconn *w)
{
    if (w->state != W_OPEN)
        return 1;   /* nothing more will be taken */
    return (w->out ? w->out_len - w->out_off : 0) + w->ctrl_len;
}

void wsconn_read(struct wsconn *w, int on)
{
    if (w->state == W_DEAD)
        return;
    w->reading = on;
    w_watch(w);
}

void wsconn_close(struct wsconn *w, int code, const char *reason)
{
    if (w->state != W_OPEN)
        return;
    if (!w->raw) {
        w_send_close(w, code, reason, 0);
        return;
    }
    w->state = W_CLOSING;
    w->close_after = 1;
    w->deadline = util_mono_us() + (int64_t)LIMIT_WRITE_MS * 1000;
    timer_arm(&w->timer, w->deadline);
    if (!w->out)
        w_linger(w);
}

int wsconn_count(void)
{
    return count;
}

void wsconn_stop_all(void)
{
    for (struct wsconn *w = all; w; w = w->next)
        wsconn_close(w, WS_CLOSE_GOING_AWAY, "shutting down");
}
