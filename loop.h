/* The one poll() loop: descriptors with callbacks. Callbacks may add and remove any
 * descriptor, including their own; a removed one is never called again in that round. */
#ifndef SANDBOX_LOOP_H
#define SANDBOX_LOOP_H

typedef void loop_fn(void *ctx, int fd, short revents);

/* Sizes the registry from RLIMIT_NOFILE. Returns 0 or -1 (errno). */
int loop_init(void);
/* Watches fd for events (POLLIN, POLLOUT, ...). Returns 0, or -1 with errno
 * EBADF (fd out of range) or EEXIST (already watched). */
int loop_add(int fd, short events, loop_fn *fn, void *ctx);
void loop_set(int fd, short events);  /* change the events of a watched fd */
void loop_del(int fd);                /* stop watching; does not close */
/* One round: poll up to timeout_ms (-1 = no timeout), then call back every ready fd.
 * Returns the number of callbacks made, or -1 with errno (EINTR is returned as 0). */
int loop_poll(int timeout_ms);
/* Number of descriptors watched. */
int loop_count(void);

#endif
