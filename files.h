/* The files core: stat, list, mkdir -p, move, remove, atomic writes and confined opens.
 * Knows nothing of HTTP, so every front-end (HopX REST, E2B's Connect) shares it.
 *
 * Paths are client strings (NUL-terminated): absolute, or relative to the workdir. With a
 * files root (files_init), every path must name something beneath it: "..", absolute
 * symlinks and symlinks swapped in mid-request cannot leave it (openat2 RESOLVE_BENEATH,
 * else a component-by-component O_NOFOLLOW walk that follows no symlink at all).
 *
 * Errors are -1 with errno, which the front-end maps to its protocol:
 *   EINVAL        bad path (empty, over PATH_MAX, "." or ".." as the name to create)
 *   ENOENT        missing
 *   EXDEV         the path leaves the files root
 *   EACCES, EPERM the OS said no
 *   ENOTDIR       a directory was expected; EISDIR a file was expected
 *   EEXIST        exists and overwriting was not allowed
 *   EBUSY         refused: "/", the workdir or the files root itself
 *   ENODEV        not a regular file where one is needed (a FIFO, a device)
 *   ENOSPC, EDQUOT, EIO, ... as the filesystem reports them
 * Calls are synchronous filesystem operations; nothing here allocates more than a bounded
 * listing (LIMIT_FILES_LIST) or keeps state beyond files_init's descriptors. */
#ifndef SANDBOX_FILES_H
#define SANDBOX_FILES_H
#include <limits.h>
#include <stddef.h>
#ifndef PATH_MAX   /* the glibc debug build's <limits.h> reaches ours (-iquote .), not glibc's */
#define PATH_MAX 4096
#endif
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct runas_user;   /* runas.h: who owns what a call creates; NULL is the agent itself */

enum files_type { FILES_FILE, FILES_DIR, FILES_SYMLINK, FILES_OTHER };

/* FILES_NO_OPENAT2: use the O_NOFOLLOW walk even where openat2 exists (tests). */
#define FILES_NO_OPENAT2 1

/* root: NULL for no confinement. workdir: where relative paths start (must exist).
 * May be called again (tests); closes what the last call opened. Returns 0 or -1. */
int files_init(const char *root, const char *workdir, int flags);
/* "openat2", "walk" or "none": how confinement is enforced (for /info and tests). */
const char *files_confinement(void);

/* One entry as a listing shows it. Strings are NUL-terminated and owned by the entry. */
struct files_entry {
    char path[PATH_MAX];       /* absolute, normalized ("//" and "/./" folded) */
    const char *name;          /* last component of path (points into path) */
    enum files_type type;      /* of the entry itself: a symlink is FILES_SYMLINK */
    int target_is_dir;         /* symlinks: the target is a directory */
    uint64_t size;
    uint32_t mode;             /* permission bits (07777) */
    uint32_t uid, gid;
    int64_t mtime_ms;          /* wall clock */
    char target[PATH_MAX];     /* symlinks: the link's text; else "" */
    char owner[33], group[33]; /* names from /etc/passwd, /etc/group; else the number */
};

/* The entry at path, without following a final symlink. Returns 0 or -1. */
int files_stat(const char *path, struct files_entry *e);

/* Called once per entry, in sorted order of the path below the listed directory.
 * Returns 0 to go on, -1 to stop (files_list then returns -1 with errno ECANCELED). */
typedef int files_list_fn(void *ctx, const struct files_entry *e);
/* Lists the directory at path (following a final symlink), depth levels deep (1: its
 * entries only; at most LIMIT_FILES_DEPTH), at most max entries (then *truncated = 1).
 * abs (PATH_MAX bytes, may be NULL) receives the directory's normalized path.
 * Returns the number of entries given to fn, or -1. */
long files_list(const char *path, int depth, size_t max, files_list_fn *fn, void *ctx,
                int *truncated, char *abs);

/* mkdir -p with mode for the directories it creates, owned by owner (its uid and gid; NULL:
 * the agent's). Each appears under its name already owned (made under a temporary name,
 * chowned, renamed). *created: 0 when it existed. A file (or anything not a directory) at
 * path is EEXIST. Returns 0 or -1 (EPERM: the agent may not give files away). */
int files_mkdir(const char *path, mode_t mode, const struct runas_user *owner, int *created);

/* Renames from to to (parents of to created, owned by owner as files_mkdir does). What
 * moves keeps its owner. Across filesystems: copies (files, directories, symlinks, with
 * their owners where the agent may set them), then removes the source. overwrite 0:
 * EEXIST when to exists. Returns 0 or -1. */
int files_move(const char *from, const char *to, int overwrite, const struct runas_user *owner);

/* Removes path (a symlink itself, never its target); a directory needs recursive
 * (else ENOTEMPTY unless empty). Returns 0 or -1. */
int files_remove(const char *path, int recursive);

/* Opens a regular file for reading (a final symlink is followed, within the root).
 * st receives its fstat. Returns the descriptor (O_CLOEXEC) or -1 (EISDIR, ENODEV...). */
int files_open_read(const char *path, struct stat *st);

/* Atomic writes: the bytes go to a temporary file in the target's directory, renamed over
 * the target on commit; readers see the old file or the whole new one. Abort (or a failed
 * commit) removes the temporary file, so nothing is left behind. */
struct files_writer {
    int dirfd;                 /* the directory holding the temporary file */
    int fd;                    /* -1 when not open */
    char tmp[64];              /* its name in dirfd */
    char path[PATH_MAX];       /* the target, when known at open */
    uint64_t size;             /* bytes written */
    int chown;                 /* an owner was given: uid, gid */
    uid_t uid;
    gid_t gid;
};
/* Opens a writer for path (parents created), or, with path NULL, a staging file in the
 * workdir (the files root when the workdir is outside it) for a target named later.
 * owner (NULL: the agent) owns the file and the parents this writer creates, at open and
 * commit alike: the temporary file is chowned as it is made, before any rename shows it.
 * Returns 0 or -1 (w then holds nothing; EPERM: the agent may not give files away). */
int files_writer_open(struct files_writer *w, const char *path, const struct runas_user *owner);
/* Appends n bytes. Returns 0 or -1 (ENOSPC...); after -1 only abort is useful. */
int files_writer_write(struct files_writer *w, const void *p, size_t n);
/* Publishes the file as path (NULL: the path given at open), with mode (-1: the replaced
 * file's mode, else 0644). overwrite 0: EEXIST when path exists. Across filesystems (a
 * staged file) the bytes are copied into the target's directory first. The writer is
 * closed either way. Returns 0 (abs, PATH_MAX bytes or NULL, gets the target's normalized
 * path) or -1. */
int files_writer_commit(struct files_writer *w, const char *path, int mode, int overwrite,
                        char *abs);
/* Closes the writer and removes its temporary file. Safe on a closed writer. */
void files_writer_abort(struct files_writer *w);

/* "rw-r--r--" for mode's permission bits (out: 10 bytes). */
void files_perm_string(uint32_t mode, char out[10]);

#endif
