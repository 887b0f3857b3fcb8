/* files.c on a scratch tree: confinement in both modes (openat2 and the O_NOFOLLOW walk)
 * against "..", absolute and relative symlinks out of the root; atomic writers that leave
 * nothing behind; mkdir -p; removes that refuse the root; listing order and bounds. */
#include "files.h"
#include "runas.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

static char top[PATH_MAX], root[PATH_MAX], out[PATH_MAX];

static void put(const char *dir, const char *name, const char *text)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int tmp_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strncmp(de->d_name, ".sandbox-agent-", 15) == 0;
    if (d)
        closedir(d);
    return n;
}

static const char *read_all(const char *path, char *buf, size_t cap)
{
    struct stat st;
    int fd = files_open_read(path, &st);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

static void escapes(const char *mode)
{
    char p[PATH_MAX * 2], buf[64];
    const char *bad[] = { "../out/secret", "/etc/passwd", "inside/../../out/secret", "abs/secret",
                          "rel/secret", "abs-file", "rel-file", ".." };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i][0] == '/')
            snprintf(p, sizeof p, "%s", bad[i]);
        else
            snprintf(p, sizeof p, "%s/%s", root, bad[i]);
        errno = 0;
        const char *r = read_all(p, buf, sizeof buf);
        CHECK(r == NULL && errno == EXDEV, "%s: read %s gave %s errno %d", mode, bad[i],
              r ? r : "-", errno);
    }
    snprintf(p, sizeof p, "%s/inside/f", root);
    CHECK(read_all(p, buf, sizeof buf) && !strcmp(buf, "in"), "%s: inside read", mode);
    /* writes and mkdir through an escaping link create nothing outside */
    struct files_writer w;
    snprintf(p, sizeof p, "%s/abs/new", root);
    CHECK(files_writer_open(&w, p, NULL) < 0 && errno == EXDEV, "%s: writer via abs link", mode);
    int created;
    snprintf(p, sizeof p, "%s/abs/d", root);
    CHECK(files_mkdir(p, 0755, NULL, &created) < 0 && errno == EXDEV, "%s: mkdir via abs link", mode);
    snprintf(p, sizeof p, "%s/abs/secret", root);
    CHECK(files_remove(p, 1) < 0 && errno == EXDEV, "%s: remove via abs link", mode);
    snprintf(p, sizeof p, "%s/new", out);
    CHECK(access(p, F_OK) < 0, "%s: nothing created outside", mode);
    snprintf(p, sizeof p, "%s/secret", out);
    CHECK(access(p, F_OK) == 0, "%s: outside file still there", mode);
    CHECK(files_remove(root, 1) < 0 && errno == EBUSY, "%s: root refused", mode);
    /* the link itself is an entry of the root */
    struct files_entry e;
    snprintf(p, sizeof p, "%s/abs", root);
    CHECK(files_stat(p, &e) == 0 && e.type == FILES_SYMLINK && !strcmp(e.target, out),
          "%s: stat of the link", mode);
}

static void writer(void)
{
    char p[PATH_MAX * 2], buf[64];
    struct files_writer w;
    snprintf(p, sizeof p, "%s/w/deep/file", root);
    CHECK(files_writer_open(&w, p, NULL) == 0, "writer open");
    files_writer_write(&w, "half", 4);
    char dir[PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s/w/deep", root);
    CHECK(tmp_files(dir) == 1, "a temporary file while writing");
    files_writer_abort(&w);
    CHECK(tmp_files(dir) == 0 && access(p, F_OK) < 0, "abort leaves nothing");
    CHECK(files_writer_open(&w, p, NULL) == 0, "writer reopen");
    files_writer_write(&w, "whole", 5);
    CHECK(files_writer_commit(&w, NULL, 0640, 1, NULL) == 0, "commit");
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0640 && st.st_size == 5, "mode and size");
    CHECK(read_all(p, buf, sizeof buf) && !strcmp(buf, "whole"), "content");
    CHECK(files_writer_open(&w, p, NULL) == 0, "writer again");
    files_writer_write(&w, "x", 1);
    CHECK(files_writer_commit(&w, NULL, -1, 0, NULL) < 0 && errno == EEXIST, "no overwrite");
    CHECK(tmp_files(dir) == 0 && read_all(p, buf, sizeof buf) && !strcmp(buf, "whole"),
          "failed commit leaves the old file and no temporary");
    /* staged: the target named at commit */
    CHECK(files_writer_open(&w, NULL, NULL) == 0, "staged open");
    files_writer_write(&w, "staged", 6);
    snprintf(p, sizeof p, "%s/w/staged", root);
    CHECK(files_writer_commit(&w, p, -1, 1, NULL) == 0, "staged commit");
    CHECK(read_all(p, buf, sizeof buf) && !strcmp(buf, "staged"), "staged content");
    snprintf(dir, sizeof dir, "%s/work", root);
    CHECK(tmp_files(dir) == 0, "staging area empty");
}

static int names_seen;
static char names[16][32];
static int collect(void *ctx, const struct files_entry *e)
{
    (void)ctx;
    if (names_seen < 16)
        snprintf(names[names_seen++], 32, "%s", e->name);
    return 0;
}

static void listing(void)
{
    char d[PATH_MAX * 2];
    snprintf(d, sizeof d, "%s/l", root);
    mkdir(d, 0755);
    put(d, "b", "");
    put(d, "a", "");
    put(d, "a-b", "");
    put(d, "C", "");
    int trunc;
    names_seen = 0;
    long n = files_list(d, 1, 3, collect, NULL, &trunc, NULL);
    CHECK(n == 3 && trunc == 1, "bounded: %ld %d", n, trunc);
    names_seen = 0;
    n = files_list(d, 1, 100, collect, NULL, &trunc, NULL);
    CHECK(n == 4 && !trunc && !strcmp(names[0], "C") && !strcmp(names[1], "a") &&
          !strcmp(names[2], "a-b") && !strcmp(names[3], "b"), "sorted");
    char perm[10];
    files_perm_string(04755, perm);
    CHECK(!strcmp(perm, "rwsr-xr-x"), "perm %s", perm);
    files_perm_string(01777, perm);
    CHECK(!strcmp(perm, "rwxrwxrwt"), "perm %s", perm);
}

/* Is path owned by uid:gid? */
static int owned(const char *path, unsigned uid, unsigned gid)
{
    struct stat st;
    return lstat(path, &st) == 0 && st.st_uid == uid && st.st_gid == gid;
}

/* Does dir hold a leftover temporary name? */
static int has_tmp(const char *dir)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q sandbox-agent", dir);
    return system(cmd) == 0;
}

/* What the calls create belongs to the owner given (needs root to give files away). */
static void owners(const char *root)
{
    if (geteuid() != 0) {
        SKIP("owners: not root");
        return;
    }
    struct runas_user nobody = { .uid = 65534, .gid = 65533 };
    char t[PATH_MAX], d[PATH_MAX];
    int created;
    snprintf(t, sizeof t, "%s/own/a/b", root);
    CHECK(files_mkdir(t, 0755, &nobody, &created) == 0 && created, "owned mkdir -p");
    CHECK(owned(t, 65534, 65533), "owned mkdir: leaf");
    snprintf(d, sizeof d, "%s/own/a", root);
    CHECK(owned(d, 65534, 65533), "owned mkdir: parent");
    CHECK(!has_tmp(d), "owned mkdir: no temporary left");
    CHECK(files_mkdir(t, 0755, NULL, &created) == 0 && !created, "owned mkdir again");
    CHECK(owned(t, 65534, 65533), "mkdir of an existing directory keeps its owner");
    struct files_writer w;
    snprintf(t, sizeof t, "%s/own/w/x/f", root);
    CHECK(files_writer_open(&w, t, &nobody) == 0, "owned writer open");
    CHECK(files_writer_write(&w, "hi", 2) == 0, "owned writer write");
    CHECK(files_writer_commit(&w, NULL, 04755, 1, NULL) == 0, "owned writer commit");
    struct stat st;
    CHECK(owned(t, 65534, 65533) && stat(t, &st) == 0 && (st.st_mode & 07777) == 04755,
          "owned file keeps its set-id mode");
    snprintf(d, sizeof d, "%s/own/w/x", root);
    CHECK(owned(d, 65534, 65533) && !has_tmp(d), "owned writer: parents, no temporary");
    CHECK(files_writer_open(&w, NULL, &nobody) == 0, "owned staged open");
    snprintf(t, sizeof t, "%s/own/s/f", root);
    CHECK(files_writer_commit(&w, t, -1, 1, NULL) == 0 && owned(t, 65534, 65533),
          "owned staged commit");
    snprintf(d, sizeof d, "%s/own/s", root);
    CHECK(owned(d, 65534, 65533), "owned staged commit: parent");
    char to[PATH_MAX];
    snprintf(to, sizeof to, "%s/own/mv/y/f", root);
    CHECK(files_move(t, to, 0, NULL) == 0 && owned(to, 65534, 65533), "move keeps the owner");
    snprintf(d, sizeof d, "%s/own/mv/y", root);
    CHECK(owned(d, 0, 0), "move without owner: parents are the agent's");
}

int main(void)
{
    snprintf(top, sizeof top, "/tmp/sandbox-agent-unit-files-XXXXXX");
    if (!mkdtemp(top)) {
        SKIP("no /tmp");
        return unit_report("files");
    }
    snprintf(root, sizeof root, "%s/root", top);
    snprintf(out, sizeof out, "%s/out", top);
    char p[PATH_MAX * 2];
    mkdir(root, 0755);
    mkdir(out, 0755);
    snprintf(p, sizeof p, "%s/work", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/inside", root);
    mkdir(p, 0755);
    put(p, "f", "in");
    put(out, "secret", "OUT");
    snprintf(p, sizeof p, "%s/abs", root);
    symlink(out, p);
    snprintf(p, sizeof p, "%s/rel", root);
    symlink("../out", p);
    snprintf(p, sizeof p, "%s/abs-file", root);
    char t[PATH_MAX * 2];
    snprintf(t, sizeof t, "%s/secret", out);
    symlink(t, p);
    snprintf(p, sizeof p, "%s/rel-file", root);
    symlink("../out/secret", p);

    snprintf(p, sizeof p, "%s/work", root);
    CHECK(files_init(root, p, 0) == 0, "init");
    if (!strcmp(files_confinement(), "openat2"))
        escapes("openat2");
    else
        SKIP("kernel without openat2");
    CHECK(files_init(root, p, FILES_NO_OPENAT2) == 0 && !strcmp(files_confinement(), "walk"),
          "walk mode");
    escapes("walk");
    CHECK(files_init(root, p, 0) == 0, "init again");
    writer();
    listing();
    int created;
    snprintf(t, sizeof t, "%s/m/n", root);
    CHECK(files_mkdir(t, 0700, NULL, &created) == 0 && created, "mkdir -p");
    CHECK(files_mkdir(t, 0700, NULL, &created) == 0 && !created, "mkdir again");
    snprintf(t, sizeof t, "%s/inside/f/x", root);
    CHECK(files_mkdir(t, 0700, NULL, &created) < 0 && errno == ENOTDIR, "mkdir under a file");
    snprintf(t, sizeof t, "%s/inside/f", root);
    CHECK(files_mkdir(t, 0700, NULL, &created) < 0 && errno == EEXIST, "mkdir on a file");
    owners(root);
    CHECK(files_init(NULL, p, 0) == 0 && !strcmp(files_confinement(), "none"), "no root");
    snprintf(t, sizeof t, "rm -rf '%s'", top);
    if (system(t) != 0)
        SKIP("cleanup of %s", top);
    return unit_report("files");
}
