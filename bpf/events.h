/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * events.h: the records the kernel programs send to the supervisor through
 * the ring buffer, and the syscall table the supervisor hands the programs
 * before load. This is the only header shared by both sides, so it uses plain
 * fixed-width types and includes nothing: the BPF side gets __u8.. from
 * vmlinux.h, user space from <linux/types.h>.
 *
 * Every record starts with struct bs_hdr. After the fixed part of the record
 * come hdr.nstr strings, each a struct bs_str followed by len bytes (no NUL),
 * padded to 8 bytes. Process identity is (tgid, start): start is the thread
 * group's start time on CLOCK_BOOTTIME, which the kernel keeps stable across
 * execve from a non-leader thread, so a pid reused later never aliases.
 *
 * Change any layout here and bump BS_ABI_VERSION; both sides pin the sizes
 * with static asserts.
 */
#ifndef BSANDBOX_BPF_EVENTS_H
#define BSANDBOX_BPF_EVENTS_H

#define BS_ABI_VERSION 1

enum bs_event_type {
	BS_EV_FORK = 1, /* a new process joined the tree (struct bs_fork) */
	BS_EV_EXEC = 2, /* a successful execve (struct bs_exec) */
	BS_EV_EXIT = 3, /* the last thread of a process exited (struct bs_exit) */
	BS_EV_FILE = 4, /* a file syscall returned (struct bs_file) */
};

/* File syscalls by meaning, independent of the architecture's numbering. */
enum bs_sys {
	BS_SYS_NONE = 0,
	BS_SYS_OPEN,
	BS_SYS_OPENAT,
	BS_SYS_OPENAT2,
	BS_SYS_CREAT,
	BS_SYS_OPEN_BY_HANDLE_AT,
	BS_SYS_EXECVE,
	BS_SYS_EXECVEAT,
	BS_SYS_STAT,
	BS_SYS_LSTAT,
	BS_SYS_NEWFSTATAT,
	BS_SYS_STATX,
	BS_SYS_ACCESS,
	BS_SYS_FACCESSAT,
	BS_SYS_FACCESSAT2,
	BS_SYS_READLINK,
	BS_SYS_READLINKAT,
	BS_SYS_RENAME,
	BS_SYS_RENAMEAT,
	BS_SYS_RENAMEAT2,
	BS_SYS_LINK,
	BS_SYS_LINKAT,
	BS_SYS_SYMLINK,
	BS_SYS_SYMLINKAT,
	BS_SYS_UNLINK,
	BS_SYS_UNLINKAT,
	BS_SYS_MKDIR,
	BS_SYS_MKDIRAT,
	BS_SYS_RMDIR,
	BS_SYS_MKNOD,
	BS_SYS_MKNODAT,
	BS_SYS_TRUNCATE,
	BS_SYS_FTRUNCATE,
	BS_SYS_CHDIR,
	BS_SYS_FCHDIR,
	BS_SYS_CHROOT,
	BS_SYS_GETDENTS,
	BS_SYS_GETDENTS64,
	BS_SYS_CHMOD,
	BS_SYS_FCHMOD,
	BS_SYS_FCHMODAT,
	BS_SYS_FCHMODAT2,
	BS_SYS_CHOWN,
	BS_SYS_FCHOWN,
	BS_SYS_LCHOWN,
	BS_SYS_FCHOWNAT,
	BS_SYS_UTIME,
	BS_SYS_UTIMES,
	BS_SYS_UTIMENSAT,
	BS_SYS_FUTIMESAT,
	BS_SYS_SETXATTR,
	BS_SYS_LSETXATTR,
	BS_SYS_FSETXATTR,
	BS_SYS_REMOVEXATTR,
	BS_SYS_LREMOVEXATTR,
	BS_SYS_FREMOVEXATTR,
	BS_SYS_GETXATTR,
	BS_SYS_LGETXATTR,
	BS_SYS_LISTXATTR,
	BS_SYS_LLISTXATTR,
	/* Sockets: where a process connects, sends and listens (what reaches it
	 * other than through the files it opens). path1 carries the sockaddr. */
	BS_SYS_CONNECT,
	BS_SYS_BIND,
	BS_SYS_SENDTO,
	BS_SYS_SENDMSG,
	BS_SYS_COUNT
};

/*
 * How the kernel side captures one syscall at its exit: which arguments are
 * paths, dirfds, fds and flags (argument index + 1; 0 = none), and what to
 * resolve in the kernel. Indexed by the architecture's syscall number.
 */
#define BS_SC_TABLE_SIZE 512

enum bs_resolve {
	BS_RESOLVE_NONE = 0,
	BS_RESOLVE_RETFD = 1, /* on success the return value is an fd: walk its file */
	BS_RESOLVE_FDARG = 2, /* walk the file of the fd argument */
	BS_RESOLVE_PWD = 3,   /* on success walk the new cwd (chdir, fchdir) */
	BS_RESOLVE_ROOT = 4,  /* on success walk the new root (chroot) */
};

enum bs_desc_flags {
	BS_DESC_FLAGS_IN_OPEN_HOW = 1, /* the flags argument points at a struct open_how */
	BS_DESC_SKIP_EMPTY_PATH = 2,   /* an empty path is fstat(): not a path access, skip */
	BS_DESC_BUMP_GEN = 4,          /* success may move directories: invalidate cwd caches */
	BS_DESC_ONCE_PER_FILE = 8,     /* report once per open file (getdents) */
	BS_DESC_PATH2_IS_TEXT = 16,    /* path2 is data, not a name to resolve (symlink target) */
	BS_DESC_SOCKADDR = 32,         /* path1 is a struct sockaddr, path2 the argument holding
					  its length; no address (NULL): not reported */
	BS_DESC_MSGHDR = 64,           /* path1 is a struct msghdr; its msg_name is the sockaddr */
};

/* The most of a socket address the kernel side copies (sizeof(struct
 * sockaddr_storage)). */
#define BS_SOCKADDR_MAX 128

struct bs_sc_desc {
	__u8 sys;     /* enum bs_sys; BS_SYS_NONE = not traced */
	__u8 path1;   /* argument holding the first path */
	__u8 dirfd1;  /* argument holding the dirfd path1 is relative to */
	__u8 path2;   /* argument holding the second path (rename, link target) */
	__u8 dirfd2;
	__u8 fd;      /* argument holding an fd (ftruncate, fchdir, getdents) */
	__u8 flags;   /* argument holding the flags word passed up */
	__u8 resolve; /* enum bs_resolve */
	__u8 desc_flags; /* enum bs_desc_flags */
	__u8 pad[7];
};

/* Common header of every record. */
struct bs_hdr {
	__u8 abi;   /* BS_ABI_VERSION */
	__u8 type;  /* enum bs_event_type */
	__u8 nstr;  /* strings after the fixed part */
	__u8 flags; /* BS_HF_* */
	__u32 size; /* whole record, strings included */
	__u32 tgid; /* process, in the root pid namespace */
	__u32 tid;  /* thread that caused the event */
	__u64 start; /* identity: thread group start time, CLOCK_BOOTTIME ns */
	__u64 time;  /* when it happened, CLOCK_BOOTTIME ns (0 for BS_EV_FILE) */
};

enum bs_hdr_flags {
	BS_HF_STRING_DROPPED = 1, /* a string did not fit in BS_EVENT_MAX and was left out */
};

/* BS_EV_FORK: hdr names the child. Strings: BS_STR_CWD. */
struct bs_fork {
	struct bs_hdr hdr;
	__u32 parent_tgid;
	__u32 pad;
	__u64 parent_start;
};

/* BS_EV_EXEC. Strings: FILENAME, INTERP, EXE, LDSO (if any), ARGV, CWD (if changed). */
struct bs_exec {
	struct bs_hdr hdr;
	__u32 old_tid;   /* thread that called execve (differs if not the leader) */
	__u32 flags;     /* BS_EXEC_* */
};

enum bs_exec_flags {
	BS_EXEC_ELF32 = 1,          /* 32-bit program: its syscalls are not decoded */
	BS_EXEC_ARGV_TRUNCATED = 2, /* argv longer than BS_ARGV_MAX */
};

/* BS_EV_EXIT. */
struct bs_exit {
	struct bs_hdr hdr;
	__s32 status; /* wait(2) status of the thread group */
	__u32 pad;
};

/* BS_EV_FILE: one file syscall, captured at its exit. */
struct bs_file {
	struct bs_hdr hdr;
	__s64 ret;    /* return value (-errno on failure) */
	__u64 flags;  /* the flags argument (open flags, AT_*, rename flags, mode) */
	__s32 dirfd1; /* as passed */
	__s32 dirfd2;
	__u16 sys;    /* enum bs_sys */
	__u16 result_flags; /* BS_RF_*, about the object the kernel resolved */
	__u32 result_magic; /* s_magic of that object's file system */
	__u32 fd;     /* the fd argument, if any */
	__u32 pad;
};

enum bs_result_flags {
	BS_RF_CREATED = 1, /* open created the file (FMODE_CREATED) */
	BS_RF_DIR = 2,     /* the object is a directory */
	BS_RF_RESOLVED = 4, /* a BS_STR_RESULT string is attached */
};

/* String kinds. */
enum bs_str_kind {
	BS_STR_PATH1 = 1,    /* first path argument, bytes as given */
	BS_STR_PATH2 = 2,    /* second path argument */
	BS_STR_DIR1 = 3,     /* kernel path of dirfd1 (when path1 is relative or empty) */
	BS_STR_DIR2 = 4,     /* kernel path of dirfd2 */
	BS_STR_RESULT = 5,   /* kernel path of the resolved object (see bs_resolve) */
	BS_STR_CWD = 6,      /* the thread's cwd, sent when it changed since last sent */
	BS_STR_ROOT = 7,     /* the thread's root when it is not the namespace root */
	BS_STR_FILENAME = 8, /* exec: the name execve was given */
	BS_STR_INTERP = 9,   /* exec: the #! interpreter as named (== FILENAME if none) */
	BS_STR_EXE = 10,     /* exec: kernel path of the program file that runs */
	BS_STR_LDSO = 11,    /* exec: kernel path of the ELF interpreter (ld.so) */
	BS_STR_ARGV = 12,    /* exec: NUL-separated argv */
};

enum bs_str_flags {
	BS_SF_TRUNCATED = 1,   /* longer than the kernel side could copy */
	BS_SF_UNREACHABLE = 2, /* not reachable from the namespace root: pipe, socket,
				  anonymous inode, detached mount */
	BS_SF_DELETED = 4,     /* the object has no name any more (unlinked, O_TMPFILE) */
	BS_SF_FAULT = 8,       /* user memory could not be read */
};

struct bs_str {
	__u8 kind;  /* enum bs_str_kind */
	__u8 flags; /* enum bs_str_flags */
	__u16 pad;
	__u32 len;  /* bytes that follow, excluding padding */
};

/*
 * Per traced thread, in task storage: its presence is what makes a thread
 * traced (created on clone from a traced thread, or by user space for the
 * top process, with its job), and it remembers what this thread's records last told user
 * space, so that the cwd is sent only when it changed. The kernel frees it
 * with the task.
 */
struct bs_task {
	__u64 pwd_dentry; /* cwd last sent (0: none) */
	__u64 pwd_mnt;
	__u64 root_dentry; /* root last sent, or the namespace root user space assumes */
	__u64 root_mnt;
	__u64 last_dir_file; /* getdents: the listing being read (open file, directory, mount); 0: none */
	__u64 last_dir_dentry;
	__u64 last_dir_mnt;
	__u32 gen;           /* bs_gen when the above was sent */
	__u32 job;           /* the job (slot of bs_rings) the thread belongs to, inherited */
};

/* Loss and health counters, kept per CPU and per job by the kernel side. */
enum bs_counter {
	BS_CNT_RINGBUF_FULL = 0,  /* records dropped: ring buffer full */
	BS_CNT_UNTRACKED = 1,     /* a new thread or process could not be tracked */
	BS_CNT_TOO_BIG = 2,       /* strings left out: record would exceed BS_EVENT_MAX */
	BS_CNT_COUNT = 3
};

/*
 * Limits of the kernel side. A string is appended only while the record is
 * shorter than BS_APPEND_LIMIT, and no string is longer than BS_STR_MAX, which
 * bounds a record by BS_EVENT_MAX.
 */
#define BS_APPEND_LIMIT 32768
/* Jobs traced at once by one loaded copy of the programs (bsandboxd). */
#define BS_JOBS_MAX 64
#define BS_STR_MAX 32767      /* longest walked path or argv */
#define BS_USER_PATH_MAX 4096 /* PATH_MAX: the kernel refuses longer path arguments */
#define BS_EVENT_MAX (BS_APPEND_LIMIT + 8 + BS_STR_MAX + 8)

#endif /* BSANDBOX_BPF_EVENTS_H */
