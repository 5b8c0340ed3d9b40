#ifndef CSANDBOX_H
#define CSANDBOX_H

#include <stddef.h>
#include <sys/types.h>

/// Everything the child needs; all strings are host paths unless noted. Lists are NULL-terminated.
struct csandbox_spec {
    /// Executable path as seen by the child after any root change.
    const char *executable;
    const char *const *argv;
    /// The whole environment of the child (nothing is inherited).
    const char *const *envp;
    /// Files the child writes "0" to before exec, joining its cgroups (v1 `tasks`, v2 `cgroup.procs`; may be NULL).
    const char *const *cgroup_procs;
    /// File receiving stdout and stderr (opened O_APPEND|O_CREAT).
    const char *log_path;

    /// Non-zero: new pid, mount, uts, ipc (and net unless `network`) namespaces and a read-only root.
    int isolated;
    /// Non-zero: keep the host network namespace (isolated only).
    int network;
    /// Empty host directory that becomes the sandbox root (isolated only).
    const char *root_dir;
    /// Host directory bound read-only at /handler (may be NULL).
    const char *code_dir;
    /// Host directory bound read-write at /scratch (isolated) (may be NULL).
    const char *scratch_dir;
    /// Host paths bound read-only at the same path inside the root (may be NULL).
    const char *const *ro_paths;
    /// Working directory of the child (process backend; isolated uses "/").
    const char *workdir;
    /// Size of the /tmp tmpfs in bytes (isolated).
    long long tmp_bytes;

    /// RLIMIT_NOFILE (0: unchanged).
    long long nofile;
    /// RLIMIT_AS in bytes (0: unchanged).
    long long address_space_bytes;
    /// RLIMIT_NPROC (0: unchanged).
    long long nproc;
    /// Non-zero: run under SCHED_BATCH, so a sandbox woken by a request does not preempt the worker's event loop.
    int batch_scheduling;
    /// Uid/gid to drop to before exec (negative: keep).
    int uid;
    int gid;
};

/// Starts the child. On success returns 0, stores the worker's end of a connected Unix stream socket
/// (the child's end is its fd 3) and the child's host pid. On failure returns -1 and writes a message
/// such as "mount /usr: Permission denied" into `err`; no child and no descriptor is left behind.
int csandbox_spawn(const struct csandbox_spec *spec, int *out_socket, pid_t *out_pid, char *err, size_t errlen);

/// Blocks until `pid` has exited without reaping it (waitid WNOWAIT), so its pid stays reserved. Returns 0 or -1.
int csandbox_wait_exited(pid_t pid);
/// waitpid(pid, &status, 0) retried on EINTR. Returns the pid or -1 (errno set).
int csandbox_wait(pid_t pid, int *status);
/// waitpid(pid, &status, WNOHANG) retried on EINTR. Returns the pid, 0 when still running, or -1.
int csandbox_try_wait(pid_t pid, int *status);

int csandbox_wifexited(int status);
int csandbox_wexitstatus(int status);
int csandbox_wifsignaled(int status);
int csandbox_wtermsig(int status);

#endif
