/* The upload anchor for make bench (bench/files.sh): the least a loopback HTTP receiver
 * does to put a request body in a file. One connection at a time, blocking: read the
 * header block, take Content-Length, read the body in 256 KiB pieces (the agent's
 * LIMIT_FILES_IO) and write each to a new file, answer 200, close. No parsing beyond
 * that, no temporary file and rename, no multipart: the agent's figure is compared to it.
 *
 * usage: upload_anchor PORT OUTFILE   (prints "ready" once listening) */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIECE (256 << 10)

static char buf[PIECE];

static void serve(int c, const char *out)
{
    size_t have = 0;
    char *end = NULL;
    while (!end && have < 16384) {
        ssize_t n = read(c, buf + have, 16384 - have);
        if (n <= 0)
            return;
        have += (size_t)n;
        buf[have] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        return;
    long long len = 0;
    for (char *p = buf; p < end; p++)
        if (!strncasecmp(p, "\ncontent-length:", 16))
            len = atoll(p + 16);
    if (strcasestr(buf, "\nexpect: 100-continue"))
        (void)!write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    size_t body = have - (size_t)(end + 4 - buf);
    long long got = (long long)body;
    if (body && write(fd, end + 4, body) != (ssize_t)body)
        return;
    while (got < len) {
        ssize_t n = read(c, buf, PIECE);
        if (n <= 0)
            break;
        if (write(fd, buf, (size_t)n) != n)
            break;
        got += n;
    }
    close(fd);
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    (void)!write(c, ok, sizeof ok - 1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: upload_anchor PORT OUTFILE\n");
        return 2;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0) {
        perror("upload_anchor");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        serve(c, argv[2]);
        close(c);
    }
}
