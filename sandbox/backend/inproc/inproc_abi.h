/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * inproc_abi.h: what the in-process runtime (runtime/, a library preloaded
 * into every dynamically linked program of the traced tree) and the
 * supervisor share. C, fixed-width types, nothing else included but
 * <linux/types.h> and bpf/events.h (struct bs_sc_desc).
 *
 * The supervisor creates one shared area (a memfd, struct bs_ip_area at
 * offset 0) and names it to the runtime with the environment variable
 * BS_IP_ENV (the value is a path the runtime opens, maps whole, and closes).
 * The tree runs under a seccomp filter that lets file syscalls through
 * untouched only when they are made from the gate page at BS_IP_GATE_ADDR;
 * from anywhere else they stop for the tracer (ptrace). The runtime maps
 * the gate, sends the file syscalls it handles through it, and appends one
 * record per call to its thread's ring in the area.
 *
 * Rings: one per thread, single producer (the thread, and signal handlers
 * that interrupt it), single consumer (the supervisor). A thread finds its
 * ring through tids[tid] (ring index + 1, 0: none yet). The supervisor
 * gives one to each thread as it marks it traced; a thread that has none
 * claims a free ring itself. Either claims the same way: owner 0 -> tid
 * (compare-and-swap), high_water raised to index + 1 if lower, index + 1
 * stored in tids[tid]. The supervisor, after the thread is dead and its
 * ring drained, clears tids[tid], resets the ring and stores owner 0
 * (release) last. A ring's data may hold an earlier owner's bytes: only
 * what lies between tail and head is ever read.
 *
 * Records in a ring: 8-byte aligned, never split by the end of the ring
 * (a record that would not fit before the end is preceded by a PAD record
 * up to the end). head and tail count bytes since the ring was claimed;
 * a record is at data[pos % ring_bytes]. The producer reserves by moving
 * head with a compare-and-swap (a nested signal handler may reserve too),
 * fills the record, and stores its state COMMITTED (release) last. The
 * consumer reads records from tail in order, stops at the first that is
 * not committed, and moves tail (release) past what it consumed. A
 * producer that finds no room does not wait: it makes the call from a
 * syscall instruction outside the gate, so the tracer sees it.
 *
 * Change any layout and bump BS_IP_VERSION; both sides check it.
 */
#ifndef BSANDBOX_INPROC_ABI_H
#define BSANDBOX_INPROC_ABI_H

#include <linux/types.h>

#include "bpf/events.h"

#define BS_IP_MAGIC 0x31504942u /* "BIP1" */
#define BS_IP_VERSION 1
#define BS_IP_ENV "BSANDBOX_INPROC"
/* The gate: one page at a fixed address, mapped by the runtime
 * (MAP_FIXED_NOREPLACE); above AddressSanitizer's shadow (which ends at
 * 0x10007fff7fff), below where libraries and stacks go (0x7f..). */
#define BS_IP_GATE_ADDR 0x00006a5a00000000ULL
#define BS_IP_GATE_SIZE 0x1000ULL
/* A page the runtime maps read-write just after the gate. While its first
 * __u32 is nonzero the runtime leaves every call to the tracer: the
 * supervisor writes it (process_vm_writev) into a process whose names the
 * runtime could no longer give as the tracer does, after chroot, unshare,
 * setns or pivot_root, or in another pid namespace. Forks inherit it. */
#define BS_IP_FLAGS_ADDR (BS_IP_GATE_ADDR + BS_IP_GATE_SIZE)
/* In tids[tid]: the supervisor traces this thread (set before the thread
 * runs). The runtime handles calls only in threads so marked: one the
 * tracer does not know (cloned with CLONE_UNTRACED) leaves every call to
 * the filter, as under the ptrace backend. The ring index + 1 is in the
 * low bits. */
#define BS_IP_TID_TRACED 0x80000000u
#define BS_IP_MAX_NR 512    /* syscall numbers the tables cover */
#define BS_IP_MAX_PLANS 8
#define BS_IP_MAX_SITES 512
#define BS_IP_MAGIC_CACHE 16

/* A patch plan for one shared object (libc.so.6, ld.so): its sites, each
 * "mov $nr,%eax", up to three register set-up instructions, "syscall",
 * with handled[nr], onto whose set-up instructions and syscall no direct
 * jump or call in the object lands. An entry is the site's offset from
 * the object's load base (dl_phdr_info.dlpi_addr), below 2^24, with the
 * set-up instructions' length in bytes in its top 8 bits. Built by the
 * first process that maps the object, used by every later one. */
struct bs_ip_plan {
	__u32 state; /* 0 empty, 1 being built (by one process), 2 ready, 3 failed */
	__u32 nsites;
	__u64 dev, ino, size, mtime_ns; /* the object file, as stat says */
	__u32 site[BS_IP_MAX_SITES];
};

struct bs_ip_area {
	__u32 magic;       /* BS_IP_MAGIC */
	__u32 version;     /* BS_IP_VERSION */
	__u64 size;        /* bytes of the whole area */
	__u32 nrings;
	__u32 ring_bytes;  /* data bytes per ring, a power of two */
	__u64 rings_offset; /* ring i is at rings_offset + i * ring_stride */
	__u64 ring_stride;
	__u64 tids_offset; /* __u32 tids[max_tid] */
	__u32 max_tid;
	__u32 high_water;  /* rings [0, high_water) may have been claimed */
	__u32 supervisor;  /* tgid of the supervisor */
	__u32 disabled;    /* nonzero: new images do not start the runtime */
	__u32 all_traced;  /* nonzero: every thread counts as marked BS_IP_TID_TRACED (the
			      runtime alone, without a tracer: its tests, measurements) */
	__u32 pad1;
	/* handled[nr]: the runtime may handle syscall nr in process; desc[nr]
	 * says how to read it (bpf/events.h). Written before the tree starts. */
	__u8 handled[BS_IP_MAX_NR];
	struct bs_sc_desc desc[BS_IP_MAX_NR];
	/* Counters the runtime bumps (atomically), shown with -v. */
	__u64 images;      /* images that started the runtime */
	__u64 sites;       /* sites patched, summed over images */
	__u64 handled_calls; /* calls recorded in process */
	__u64 fallbacks;   /* calls made outside the gate (ring full, nested) */
	__u64 refused;     /* images where the runtime could not start */
	/* The supervisor's root directory (stat "/"): an image whose root is
	 * another (chroot) leaves every call to the tracer. */
	__u64 root_dev, root_ino;
	__u64 init_ns;     /* time the runtime spent starting, summed over images (CLOCK_MONOTONIC) */
	/* (mount id << 32 | fs magic), filled by the runtime as it learns them */
	__u64 magic_cache[BS_IP_MAGIC_CACHE];
	struct bs_ip_plan plans[BS_IP_MAX_PLANS];
};

struct bs_ip_ring {
	__u32 owner;   /* tid of the thread that claimed it, 0: free */
	__u32 pad0;
	__u64 head;    /* bytes reserved by the producer */
	__u64 tail;    /* bytes consumed by the supervisor */
	__u64 pad1[5]; /* to 64 bytes; data starts at the next page */
};
#define BS_IP_RING_DATA 4096 /* offset of the data from the ring header */

enum bs_ip_rec_type {
	BS_IP_REC_PAD = 1,  /* skip size bytes */
	BS_IP_REC_FILE = 2, /* struct bs_ip_file: a file syscall that returned */
	BS_IP_REC_EXEC = 3, /* struct bs_ip_file, ret 0: an execve about to be made
			       (if it fails, a FILE record follows) */
};

enum bs_ip_rec_state {
	BS_IP_WRITING = 0,
	BS_IP_COMMITTED = 1,
};

struct bs_ip_rec {
	__u32 size;   /* whole record, multiple of 8 */
	__u16 state;  /* enum bs_ip_rec_state, stored last */
	__u16 type;   /* enum bs_ip_rec_type */
};

/* The strings of a file record, in this order after the fixed part: each
 * len[i] bytes and a NUL, the whole padded to 8 at the end. */
enum bs_ip_str {
	BS_IP_PATH1 = 0, /* the first path argument, as given */
	BS_IP_PATH2 = 1, /* the second (rename, link, symlink text) */
	BS_IP_DIR1 = 2,  /* readlink /proc/self/fd/DIRFD1, when path1 is relative to a dirfd */
	BS_IP_DIR2 = 3,
	BS_IP_RESULT = 4, /* readlink /proc/self/fd/N of the result fd (RETFD) or fd argument (FDARG) */
	BS_IP_NSTR = 5,
};

struct bs_ip_file {
	struct bs_ip_rec rec;
	__u32 tid;      /* gettid() of the caller */
	__s32 nr;       /* native syscall number */
	__s64 ret;      /* the result, -errno on failure */
	__u64 args[6];
	__u64 flags;    /* the open flags (open_how.flags for openat2) or flags argument, as desc.flags says */
	__s8 created;   /* open with O_CREAT, no O_EXCL: 1 the name did not exist before, 0 it did, -1 unknown */
	__u8 present;   /* bit i: string i is present (the pointer was not NULL / the name was read) */
	__u16 result_rflags; /* BS_RF_DIR */
	__u32 result_magic;  /* statfs f_type of the result's file system, 0 unknown */
	__u64 result_ino, result_mnt; /* statx of the result (mnt: stx_mnt_id) */
	__u8 sflags[BS_IP_NSTR]; /* BS_SF_* per string */
	__u8 pad0[3];
	__u32 len[BS_IP_NSTR];   /* bytes of each string, without its NUL */
	__u32 pad1;
};

#endif
