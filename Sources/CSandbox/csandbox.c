// Sandbox spawn: clone() a child into new namespaces, build its read-only root, drop privileges and exec.
// The worker is multithreaded and the child shares its memory until exec (CLONE_VM|CLONE_VFORK), so the
// child only makes raw system calls: no malloc, no locks, no stdio, no glibc set*id (which signals threads).
#define _GNU_SOURCE
#include "csandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_STACK_BYTES (512 * 1024)
#define STEP_BYTES 480
#define PATH_BYTES 4096

struct child_report {
    int errnum;
    char step[STEP_BYTES];
};

struct child_context {
    const struct csandbox_spec *spec;
    int socket_fd;
    int report_fd;
};

// ---- helpers usable in the child (no allocation, no locks) ----

static size_t child_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

// Appends `src` to `dst` (capacity `cap`); returns -1 when it does not fit.
static int child_append(char *dst, size_t cap, const char *src) {
    size_t used = child_strlen(dst);
    size_t add = child_strlen(src);
    if (used + add + 1 > cap) return -1;
    for (size_t i = 0; i < add; i++) dst[used + i] = src[i];
    dst[used + add] = 0;
    return 0;
}

static int child_join(char *dst, size_t cap, const char *a, const char *b) {
    dst[0] = 0;
    if (child_append(dst, cap, a) < 0 || child_append(dst, cap, b) < 0) return -1;
    return 0;
}

__attribute__((noreturn)) static void child_fail(const struct child_context *ctx, int errnum, const char *step,
                                                  const char *detail) {
    struct child_report report;
    report.errnum = errnum;
    report.step[0] = 0;
    child_append(report.step, sizeof report.step, step);
    if (detail) {
        child_append(report.step, sizeof report.step, " ");
        child_append(report.step, sizeof report.step, detail);
    }
    ssize_t ignored = write(ctx->report_fd, &report, sizeof report);
    (void)ignored;
    _exit(127);
}

static int child_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
    return mount(src, dst, type, flags, data);
}

// Read-only recursive bind of `src` at `dst`.
static int child_bind(const char *src, const char *dst, int read_only, int allow_devices) {
    if (child_mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0) return -1;
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID;
    if (read_only) flags |= MS_RDONLY;
    if (!allow_devices) flags |= MS_NODEV;
    return child_mount(NULL, dst, NULL, flags, NULL);
}

// Creates every missing directory of `path` (modified in place, restored before returning), from offset `from`.
static int child_mkdir_parents(char *path, size_t from) {
    size_t n = child_strlen(path);
    for (size_t i = from + 1; i < n; i++) {
        if (path[i] != '/') continue;
        path[i] = 0;
        int rc = mkdir(path, 0755);
        int saved = errno;
        path[i] = '/';
        if (rc < 0 && saved != EEXIST) {
            errno = saved;
            return -1;
        }
    }
    return 0;
}

// Creates an empty mount point (directory or file) matching `is_dir`.
static int child_mountpoint(const char *path, int is_dir) {
    if (is_dir) return (mkdir(path, 0755) < 0 && errno != EEXIST) ? -1 : 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

// Makes host `host` visible at `root + inside`: symlinks are recreated, directories and files bound read-only.
// Absent host paths are skipped when `optional`.
static void child_expose(const struct child_context *ctx, const char *root, const char *host, const char *inside,
                         int optional) {
    char target[PATH_BYTES];
    char link[PATH_BYTES];
    struct stat st;
    if (lstat(host, &st) < 0) {
        if (optional) return;
        child_fail(ctx, errno, "read-only path", host);
    }
    if (child_join(target, sizeof target, root, inside) < 0) child_fail(ctx, ENAMETOOLONG, "path", inside);
    if (S_ISLNK(st.st_mode) && optional) {
        ssize_t len = readlink(host, link, sizeof link - 1);
        if (len < 0) child_fail(ctx, errno, "readlink", host);
        link[len] = 0;
        if (symlink(link, target) < 0 && errno != EEXIST) child_fail(ctx, errno, "symlink", inside);
        return;
    }
    if (stat(host, &st) < 0) {
        if (optional) return;
        child_fail(ctx, errno, "read-only path", host);
    }
    struct stat existing;
    if (stat(target, &existing) == 0) return; // already visible through a bound parent
    if (child_mkdir_parents(target, child_strlen(root)) < 0) child_fail(ctx, errno, "mkdir", inside);
    if (child_mountpoint(target, S_ISDIR(st.st_mode)) < 0) child_fail(ctx, errno, "mountpoint", inside);
    if (child_bind(host, target, 1, 0) < 0) child_fail(ctx, errno, "mount", inside);
}

static void child_build_root(const struct child_context *ctx) {
    const struct csandbox_spec *spec = ctx->spec;
    const char *root = spec->root_dir;
    char path[PATH_BYTES];
    char data[64];

    if (sethostname("sandbox", 7) < 0) child_fail(ctx, errno, "sethostname", NULL);
    if (child_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) child_fail(ctx, errno, "mount", "/ private");
    if (child_mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
        child_fail(ctx, errno, "mount tmpfs at", root);

    static const char *const system_dirs[] = {"/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", NULL};
    for (int i = 0; system_dirs[i]; i++) child_expose(ctx, root, system_dirs[i], system_dirs[i], 1);

    if (child_join(path, sizeof path, root, "/etc") < 0 || mkdir(path, 0755) < 0) child_fail(ctx, errno, "mkdir", "/etc");
    static const char *const etc_entries[] = {
        "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/nsswitch.conf", "/etc/passwd",
        "/etc/group", "/etc/localtime", "/etc/hosts", "/etc/resolv.conf", "/etc/ssl", "/etc/alternatives",
        "/etc/mime.types", NULL};
    for (int i = 0; etc_entries[i]; i++) child_expose(ctx, root, etc_entries[i], etc_entries[i], 1);

    // /dev: a small tmpfs holding bound device nodes.
    if (child_join(path, sizeof path, root, "/dev") < 0 || mkdir(path, 0755) < 0) child_fail(ctx, errno, "mkdir", "/dev");
    if (child_mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755") < 0)
        child_fail(ctx, errno, "mount tmpfs at", "/dev");
    static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", NULL};
    for (int i = 0; devices[i]; i++) {
        if (child_join(path, sizeof path, root, devices[i]) < 0) child_fail(ctx, ENAMETOOLONG, "path", devices[i]);
        if (child_mountpoint(path, 0) < 0) child_fail(ctx, errno, "mountpoint", devices[i]);
        if (child_bind(devices[i], path, 0, 1) < 0) child_fail(ctx, errno, "mount", devices[i]);
    }
    static const char *const dev_links[][2] = {
        {"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}};
    for (int i = 0; i < 4; i++) {
        if (child_join(path, sizeof path, root, dev_links[i][1]) < 0 || symlink(dev_links[i][0], path) < 0)
            child_fail(ctx, errno, "symlink", dev_links[i][1]);
    }
    if (child_join(path, sizeof path, root, "/dev/shm") < 0 || mkdir(path, 01777) < 0)
        child_fail(ctx, errno, "mkdir", "/dev/shm");
    if (child_mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=1777") < 0)
        child_fail(ctx, errno, "mount tmpfs at", "/dev/shm");

    if (child_join(path, sizeof path, root, "/proc") < 0 || mkdir(path, 0555) < 0) child_fail(ctx, errno, "mkdir", "/proc");
    if (child_mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        child_fail(ctx, errno, "mount", "/proc");

    long long tmp_bytes = spec->tmp_bytes > 0 ? spec->tmp_bytes : 16ll << 20;
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + tmp_bytes % 10);
        tmp_bytes /= 10;
    } while (tmp_bytes > 0 && n < 23);
    data[0] = 0;
    child_append(data, sizeof data, "size=");
    size_t at = child_strlen(data);
    while (n > 0) data[at++] = digits[--n];
    data[at] = 0;
    child_append(data, sizeof data, ",mode=1777");
    if (child_join(path, sizeof path, root, "/tmp") < 0 || mkdir(path, 01777) < 0) child_fail(ctx, errno, "mkdir", "/tmp");
    if (child_mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, data) < 0) child_fail(ctx, errno, "mount tmpfs at", "/tmp");

    if (spec->code_dir) {
        if (child_join(path, sizeof path, root, "/handler") < 0 || mkdir(path, 0755) < 0)
            child_fail(ctx, errno, "mkdir", "/handler");
        if (child_bind(spec->code_dir, path, 1, 0) < 0) child_fail(ctx, errno, "mount /handler from", spec->code_dir);
    }
    if (spec->scratch_dir) {
        if (child_join(path, sizeof path, root, "/scratch") < 0 || mkdir(path, 0755) < 0)
            child_fail(ctx, errno, "mkdir", "/scratch");
        if (child_bind(spec->scratch_dir, path, 0, 0) < 0) child_fail(ctx, errno, "mount /scratch from", spec->scratch_dir);
    }
    if (spec->ro_paths) {
        for (int i = 0; spec->ro_paths[i]; i++) child_expose(ctx, root, spec->ro_paths[i], spec->ro_paths[i], 0);
    }

    if (child_join(path, sizeof path, root, "/dev") < 0 ||
        child_mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755") < 0)
        child_fail(ctx, errno, "remount read-only", "/dev");

    if (chdir(root) < 0) child_fail(ctx, errno, "chdir", root);
    if (syscall(SYS_pivot_root, ".", ".") < 0) child_fail(ctx, errno, "pivot_root", root);
    if (umount2(".", MNT_DETACH) < 0) child_fail(ctx, errno, "detach old root", NULL);
    if (chdir("/") < 0) child_fail(ctx, errno, "chdir", "/");
    if (child_mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
        child_fail(ctx, errno, "remount read-only", "/");
}

static int child_high_fd(const struct child_context *ctx, int fd, const char *what) {
    if (fd >= 10) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    if (moved < 0) child_fail(ctx, errno, "dup", what);
    return moved;
}

static void child_set_limit(const struct child_context *ctx, int resource, long long value, const char *name) {
    if (value <= 0) return;
    struct rlimit limit = {(rlim_t)value, (rlim_t)value};
    if (setrlimit(resource, &limit) < 0) child_fail(ctx, errno, "setrlimit", name);
}

static int child_main(void *arg) {
    struct child_context local = *(const struct child_context *)arg;
    struct child_context *ctx = &local;
    const struct csandbox_spec *spec = ctx->spec;

    // Handlers installed by the worker must never run here: reset every signal to its default.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sigaction(sig, &dfl, NULL);
    }
    ctx->report_fd = child_high_fd(ctx, ctx->report_fd, "report pipe");
    if (setsid() < 0) child_fail(ctx, errno, "setsid", NULL);

    if (spec->cgroup_procs) {
        for (int i = 0; spec->cgroup_procs[i]; i++) {
            int fd = open(spec->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
            if (fd < 0) child_fail(ctx, errno, "open", spec->cgroup_procs[i]);
            if (write(fd, "0", 1) != 1) child_fail(ctx, errno, "join cgroup", spec->cgroup_procs[i]);
            close(fd);
        }
    }
    // The network namespace is made after joining the cgroups, so its kernel memory is charged to the sandbox.
    if (spec->isolated && !spec->network && unshare(CLONE_NEWNET) < 0) child_fail(ctx, errno, "unshare", "network namespace");

    int log_fd = open(spec->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log_fd < 0) child_fail(ctx, errno, "open log", spec->log_path);
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) child_fail(ctx, errno, "open", "/dev/null");
    log_fd = child_high_fd(ctx, log_fd, "log");
    null_fd = child_high_fd(ctx, null_fd, "/dev/null");
    int socket_fd = child_high_fd(ctx, ctx->socket_fd, "socket");

    if (spec->isolated) {
        child_build_root(ctx);
    } else if (spec->workdir && chdir(spec->workdir) < 0) {
        child_fail(ctx, errno, "chdir", spec->workdir);
    }

    if (spec->batch_scheduling) {
        struct sched_param param = {.sched_priority = 0};
        if (sched_setscheduler(0, SCHED_BATCH, &param) < 0) child_fail(ctx, errno, "sched_setscheduler", "SCHED_BATCH");
    }
    child_set_limit(ctx, RLIMIT_NOFILE, spec->nofile, "RLIMIT_NOFILE");
    child_set_limit(ctx, RLIMIT_AS, spec->address_space_bytes, "RLIMIT_AS");
    child_set_limit(ctx, RLIMIT_NPROC, spec->nproc, "RLIMIT_NPROC");

    if (spec->gid >= 0) {
        if (syscall(SYS_setgroups, 0, NULL) < 0) child_fail(ctx, errno, "setgroups", NULL);
        if (syscall(SYS_setresgid, spec->gid, spec->gid, spec->gid) < 0) child_fail(ctx, errno, "setresgid", NULL);
    }
    if (spec->uid >= 0 && syscall(SYS_setresuid, spec->uid, spec->uid, spec->uid) < 0)
        child_fail(ctx, errno, "setresuid", NULL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(ctx, errno, "prctl", "PR_SET_NO_NEW_PRIVS");
    // Set after the uid change, which clears it.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) child_fail(ctx, errno, "prctl", "PR_SET_PDEATHSIG");

    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0 || dup2(socket_fd, 3) < 0)
        child_fail(ctx, errno, "dup2", NULL);
    // Every other descriptor closes at exec (the report pipe too, which tells the parent exec succeeded).
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 4u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) < 0)
#endif
    {
        struct rlimit nofile;
        long top = (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 1048576) ? (long)nofile.rlim_cur : 65536;
        for (long fd = 4; fd < top; fd++) fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    }

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(spec->executable, (char *const *)spec->argv, (char *const *)spec->envp);
    child_fail(ctx, errno, "exec", spec->executable);
}

// ---- parent side ----

static void set_error(char *err, size_t errlen, const char *step, int errnum) {
    if (err && errlen) snprintf(err, errlen, "%s: %s", step, strerror(errnum));
}

int csandbox_spawn(const struct csandbox_spec *spec, int *out_socket, pid_t *out_pid, char *err, size_t errlen) {
    int sockets[2];
    int report[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) < 0) {
        set_error(err, errlen, "socketpair", errno);
        return -1;
    }
    if (pipe2(report, O_CLOEXEC) < 0) {
        set_error(err, errlen, "pipe", errno);
        close(sockets[0]);
        close(sockets[1]);
        return -1;
    }
    void *stack = mmap(NULL, CHILD_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        set_error(err, errlen, "mmap child stack", errno);
        close(sockets[0]);
        close(sockets[1]);
        close(report[0]);
        close(report[1]);
        return -1;
    }

    struct child_context ctx = {.spec = spec, .socket_fd = sockets[1], .report_fd = report[1]};
    int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
    if (spec->isolated) {
        flags |= CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
    }
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid_t pid = clone(child_main, (char *)stack + CHILD_STACK_BYTES, flags, &ctx);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    munmap(stack, CHILD_STACK_BYTES);
    close(sockets[1]);
    close(report[1]);
    if (pid < 0) {
        set_error(err, errlen, spec->isolated ? "clone with new namespaces" : "clone", clone_errno);
        close(sockets[0]);
        close(report[0]);
        return -1;
    }

    struct child_report child_report;
    ssize_t got;
    do {
        got = read(report[0], &child_report, sizeof child_report);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got > 0) {
        int status;
        csandbox_wait(pid, &status);
        close(sockets[0]);
        child_report.step[STEP_BYTES - 1] = 0;
        if (got == (ssize_t)sizeof child_report) {
            set_error(err, errlen, child_report.step, child_report.errnum);
        } else if (err && errlen) {
            snprintf(err, errlen, "child setup failed (short report)");
        }
        return -1;
    }
    *out_socket = sockets[0];
    *out_pid = pid;
    return 0;
}

int csandbox_wait(pid_t pid, int *status) {
    int rc;
    do {
        rc = waitpid(pid, status, 0);
    } while (rc < 0 && errno == EINTR);
    return rc;
}

int csandbox_wait_exited(pid_t pid) {
    siginfo_t info;
    int rc;
    do {
        rc = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT);
    } while (rc < 0 && errno == EINTR);
    return rc;
}

int csandbox_try_wait(pid_t pid, int *status) {
    int rc;
    do {
        rc = waitpid(pid, status, WNOHANG);
    } while (rc < 0 && errno == EINTR);
    return rc;
}

int csandbox_wifexited(int status) { return WIFEXITED(status); }
int csandbox_wexitstatus(int status) { return WEXITSTATUS(status); }
int csandbox_wifsignaled(int status) { return WIFSIGNALED(status); }
int csandbox_wtermsig(int status) { return WTERMSIG(status); }
