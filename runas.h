/* Running a process as another user (process control, `user` on start requests): the user
 * looked up in /etc/passwd and /etc/group (no NSS: a static binary has none), and the exec
 * shim the agent runs as in between, since posix_spawn cannot change uid and gid:
 *   sandbox-agent exec-as UID GID G1,G2,... -- PATH ARGV0 ARGV...
 * sets the groups, gid and uid (in that order: after setuid nothing else may change),
 * then execs PATH with the environment it was given. */
#ifndef SANDBOX_RUNAS_H
#define SANDBOX_RUNAS_H
#include <stddef.h>
#include <sys/types.h>

#define RUNAS_NAME_MAX 64
#define RUNAS_HOME_MAX 256
#define RUNAS_GROUPS_MAX 64   /* supplementary groups taken from /etc/group */

struct runas_user {
    uid_t uid;
    gid_t gid;
    char name[RUNAS_NAME_MAX];
    char home[RUNAS_HOME_MAX];
    gid_t groups[RUNAS_GROUPS_MAX];   /* the primary group first */
    int ngroups;
};

/* Pure: finds who (a user name, or a decimal uid) in the text of /etc/passwd and fills u
 * (uid, gid, name, home; groups holds the primary group only). A uid not in the file is
 * accepted as itself with gid = uid, home "/" and the uid as name. Returns 0, or -1 when
 * a name is not found or who is malformed. */
int runas_parse_passwd(const char *text, size_t len, const char *who, struct runas_user *u);
/* Pure: adds the groups of /etc/group's text that list u->name as a member. */
void runas_parse_groups(const char *text, size_t len, struct runas_user *u);

/* Both files read (each up to LIMIT_PASSWD_BYTES). Returns 0, or -1 with errno (ENOENT:
 * no such user). */
int runas_lookup(const char *who, struct runas_user *u);

/* The shim: argv as after "sandbox-agent" (argv[0] is "exec-as"). Returns only on failure
 * (an exit status: 126, or 127 when the program does not exist), after saying why. */
int runas_exec_main(int argc, char **argv);

#endif
