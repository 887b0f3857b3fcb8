/* sysinfo.c: the /etc/passwd lookup as a table (odd lines included), then the /proc readers on
 * this very process and on a pid that is gone. */
#include "sysinfo.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

static void check_user_names(void)
{
    static const char passwd[] =
        "root:x:0:0:root:/root:/bin/bash\n"
        "# a comment line\n"
        "\n"
        "broken-no-colons\n"
        ":x:5:5:no name\n"
        "short:x:\n"
        "nonnum:x:7a:7:\n"
        "daemon:x:1:1::/:\n"
        "a-very-long-user-name-that-goes-on-and-on:x:1000:1000::/home:/bin/sh\n"
        "last:x:4242:4242::/:/bin/sh";   /* no trailing newline */
    static const struct {
        uid_t uid;
        size_t cap;
        const char *want;
    } cases[] = {
        { 0, 64, "root" }, { 1, 64, "daemon" }, { 4242, 64, "last" }, { 5, 64, "5" },
        { 7, 64, "7" }, { 99, 64, "99" }, { 1000, 64, "a-very-long-user-name-that-goes-on-and-on" },
        { 1000, 8, "a-very-" }, { 4294967294u, 64, "4294967294" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        sysinfo_user_name(passwd, sizeof passwd - 1, cases[i].uid, out, cases[i].cap);
        CHECK(!strcmp(out, cases[i].want), "uid %u: got %s want %s", (unsigned)cases[i].uid, out,
              cases[i].want);
    }
    char out[16];
    sysinfo_user_name("", 0, 3, out, sizeof out);
    CHECK(!strcmp(out, "3"), "empty passwd");
}

static void check_proc(void)
{
    static struct sysinfo_proc p;
    CHECK(sysinfo_proc_read(getpid(), &p) == 0, "self");
    CHECK(p.pid == getpid() && p.ppid == getppid(), "pids %d %d", (int)p.pid, (int)p.ppid);
    CHECK(!strcmp(p.name, "test_sysinfo"), "name %s", p.name);
    CHECK(strstr(p.cmdline, "test_sysinfo") && p.cmdline_len == strlen(p.cmdline), "cmdline %s",
          p.cmdline);
    CHECK(p.state == 'R' && p.rss_kb > 0 && p.threads >= 1 && p.uid == getuid(), "stat");
    /* a child that has been reaped is gone: -1, not a half-filled entry */
    pid_t kid = fork();
    if (kid == 0)
        _exit(0);
    waitpid(kid, NULL, 0);
    CHECK(sysinfo_proc_read(kid, &p) == -1, "gone");
    /* a zombie is still listed, with state Z and no command line */
    kid = fork();
    if (kid == 0)
        _exit(0);
    for (int i = 0; i < 200 && (sysinfo_proc_read(kid, &p) != 0 || p.state != 'Z'); i++)
        usleep(5000);
    CHECK(p.state == 'Z' && p.cmdline_len == 0 && p.ppid == getpid(), "zombie %c", p.state);
    waitpid(kid, NULL, 0);
}

static void check_machine(void)
{
    struct sysinfo_cpu c;
    struct sysinfo_mem m;
    struct sysinfo_disk d;
    CHECK(sysinfo_cpu_read(&c, 1) == 0 && c.cores >= 1 && c.interval_s == 0, "first cpu");
    CHECK(c.usage_percent >= 0 && c.usage_percent <= 100, "usage %f", c.usage_percent);
    CHECK(sysinfo_cpu_read(&c, 500000) == 0 && c.interval_s == 0, "within a second: reused");
    usleep(50000);   /* /proc/stat moves in clock ticks: let a few pass */
    CHECK(sysinfo_cpu_read(&c, 1000001) == 0 && c.interval_s == 1.0, "a second on: %f",
          c.interval_s);
    CHECK(sysinfo_mem_read(&m) == 0 && m.total > 0 && m.used + m.available == m.total, "mem");
    CHECK(sysinfo_disk_read("/", &d) == 0 && d.total > 0 && d.free <= d.total, "disk");
    CHECK(sysinfo_disk_read("/no/such/dir", &d) == -1, "missing dir");
}

int main(void)
{
    check_user_names();
    check_proc();
    check_machine();
    return unit_report("sysinfo");
}
