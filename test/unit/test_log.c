/* log.c's JSON lines: each logfmt line becomes one JSON object; quoting, escapes, numbers
 * versus ids, odd bytes from peers, and a line too long to convert whole. stderr is a pipe
 * the test reads back. */
#include "log.h"

#include <fcntl.h>
#include <unistd.h>

#include "unit.h"

static int rd;

/* Everything written since the last call, NUL-terminated. */
static const char *drain(void)
{
    static char out[1 << 16];
    log_flush();
    ssize_t n = read(rd, out, sizeof out - 1);
    out[n > 0 ? n : 0] = 0;
    return out;
}

/* The line minus its {"ts":"...", prefix, so tables need not know the clock. */
static const char *body(const char *line)
{
    static const char prefix[] = "{\"ts\":\"";
    if (strncmp(line, prefix, sizeof prefix - 1) || strlen(line) < 34 || line[32] != ',')
        return line;
    return line + 33;
}

static void check_json(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        { "level=info event=x", "\"level\":\"info\",\"event\":\"x\"}\n" },
        { "status=200 us=0 neg=-3 lead=007 big=12345678901234567 f=1.5",
          "\"status\":200,\"us\":0,\"neg\":-3,\"lead\":\"007\",\"big\":\"12345678901234567\","
          "\"f\":\"1.5\"}\n" },
        { "id=12345 process_id=42 pid=42", "\"id\":\"12345\",\"process_id\":\"42\",\"pid\":42}\n" },
        { "error=\"No such file\" x=\"\"", "\"error\":\"No such file\",\"x\":\"\"}\n" },
        { "path=/a\"b\\c bare", "\"path\":\"/a\\\"b\\\\c\",\"bare\":true}\n" },
        { "path=/\x01\x7f\xc3\xa9", "\"path\":\"/\\u0001\\u007f\\u00c3\\u00a9\"}\n" },
        { "unterminated=\"abc", "\"unterminated\":\"abc\"}\n" },
        { "  spaced=1   k=v  ", "\"spaced\":1,\"k\":\"v\"}\n" },
        { "=novalue k=", "\"k\":\"\"}\n" },
        { "n=-", "\"n\":\"-\"}\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        log_line("%s", cases[i].in);
        const char *got = drain();
        CHECK(!strcmp(body(got), cases[i].want), "%s\n  got  %s  want %s", cases[i].in, got,
              cases[i].want);
    }
}

static void check_long_lines(void)
{
    /* a line of control bytes expands 6x: pairs that do not fit are dropped, the object closes */
    static char val[900];
    memset(val, 1, sizeof val - 1);
    log_line("a=1 long=%s b=2", val);
    const char *got = drain();
    size_t n = strlen(got);
    CHECK(n > 2 && got[n - 1] == '\n' && got[n - 2] == '}', "closed: %.60s", got);
    CHECK(strstr(got, "\"a\":1") && !strstr(got, "\"long\""), "kept what fit: %.80s", got);
    /* past the 1 KiB logfmt line: cut, still one JSON line */
    static char huge[3000];
    memset(huge, 'x', sizeof huge - 1);
    log_line("k=%s", huge);
    got = drain();
    n = strlen(got);
    CHECK(got[n - 1] == '\n' && got[n - 2] == '}' && !strchr(got, '\n')[1], "cut: %zu", n);
}

int main(void)
{
    /* log.c writes to fd 2; the harness's own messages go to a copy of the real stderr */
    int fds[2], real = dup(STDERR_FILENO);
    if (real < 0 || pipe(fds) < 0 || dup2(fds[1], STDERR_FILENO) < 0 || !(stderr = fdopen(real, "w")))
        return 2;
    setvbuf(stderr, NULL, _IONBF, 0);
    rd = fds[0];
    fcntl(rd, F_SETFL, O_NONBLOCK);
    CHECK(log_set_format("xml") == -1 && log_set_format(NULL) == 0, "names");
    log_line("level=info k=1");
    CHECK(!strcmp(drain() + 28, "level=info k=1\n"), "logfmt stays as is");
    CHECK(log_set_format("json") == 0, "json");
    check_json();
    check_long_lines();
    return unit_report("log");
}
