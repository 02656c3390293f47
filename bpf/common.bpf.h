/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * common.bpf.h: kernel-only types and constants shared by the BPF objects
 * (the map value layouts, scratch layout, a few kernel constants that BTF does
 * not carry). state.bpf.c defines the maps with these types; state.bpf.h
 * declares them extern for the programs.
 */
#ifndef BSANDBOX_COMMON_BPF_H
#define BSANDBOX_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "events.h"

#define AT_FDCWD -100
#define SIGNAL_GROUP_EXIT 0x00000004
#define S_IFMT 00170000
#define S_IFDIR 0040000

/* Scratch slots per CPU: one for syscall programs, one for process programs,
 * so that the two never share a buffer even if one could preempt the other. */
#define BS_SLOT_FILES 0
#define BS_SLOT_PROC 1
#define BS_SLOTS 2

struct bs_scratch {
	__u64 ns_root;  /* root mount of the namespace walks end at (struct mount *) */
	__u32 f_mode;   /* bs_append_file(BS_WANT_INFO): the file's f_mode, */
	__u32 i_mode;   /* its inode's mode, */
	__u32 s_magic;  /* and its file system's magic */
	__u32 job;      /* the job whose record is being built (its ring, its counters) */
	__u8 ev[BS_EVENT_MAX + 64];
	__u8 walk[2 * (BS_STR_MAX + 1)];
};

/* Value of bs_procs: one entry per traced thread group (fork and exit only). */
struct bs_proc {
	__u64 unused;
};

/* struct bs_task (per traced thread, in task storage) is in events.h: user
 * space creates the top process's. */

/* bs_append_file(): also fill f_mode, i_mode and s_magic of the scratch. */
#define BS_WANT_INFO 0x100

/*
 * Reading several fields of a kernel object with one bpf_probe_read_kernel:
 * the span [lo, hi) of the object that holds them, located with CO-RE, is
 * copied to a stack buffer and the fields are taken from there. Each helper
 * call costs tens of nanoseconds, and a path walk makes several per
 * component, so this is where the per-event cost goes.
 */
#define BS_SPAN_MAX 128
#define bs_off(type, field) ((__u32)bpf_core_field_offset(type, field))
#define bs_end(type, field) (bs_off(type, field) + (__u32)bpf_core_field_size(type, field))
#define bs_min(a, b) ((a) < (b) ? (a) : (b))
#define bs_max(a, b) ((a) > (b) ? (a) : (b))
/* Spans start 8-aligned, so that 8-byte fields are aligned on the stack. */
#define bs_align8(x) ((x) & ~7U)
/* The field at its CO-RE offset within a span read from lo. */
#define bs_at(buf, lo, T, type, field) (*(T *)((__u8 *)(buf) + (bs_off(type, field) - (lo))))

/*
 * Map shapes, written once: state.bpf.c defines each map with its shape,
 * state.bpf.h declares it extern with the same shape. Sizes that depend on
 * the machine (ring size, CPU count) are set by the loader before load.
 */
/* One ring buffer per job, created by user space when the job starts: a
 * job's storm of events fills its own ring only. */
#define BS_MAP_RINGS                                               \
	struct {                                                   \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);           \
		__uint(max_entries, BS_JOBS_MAX);                  \
		__type(key, __u32);                                \
		__array(values, struct {                           \
			__uint(type, BPF_MAP_TYPE_RINGBUF);         \
			__uint(max_entries, 1 << 16);              \
		});                                                \
	}
#define BS_MAP_PROCS                            \
	struct {                                \
		__uint(type, BPF_MAP_TYPE_HASH); \
		__uint(max_entries, 65536);     \
		__type(key, __u32);             \
		__type(value, struct bs_proc);  \
	}
#define BS_MAP_TASKS                                   \
	struct {                                       \
		__uint(type, BPF_MAP_TYPE_TASK_STORAGE); \
		__uint(map_flags, BPF_F_NO_PREALLOC);   \
		__type(key, int);                      \
		__type(value, struct bs_task);         \
	}
#define BS_MAP_SCRATCH                            \
	struct {                                  \
		__uint(type, BPF_MAP_TYPE_ARRAY);  \
		__uint(max_entries, 2 * BS_SLOTS); \
		__type(key, __u32);               \
		__type(value, struct bs_scratch); \
	}
#define BS_MAP_COUNTERS                                \
	struct {                                       \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, BS_JOBS_MAX * BS_CNT_COUNT); \
		__type(key, __u32);                    \
		__type(value, __u64);                  \
	}
#define BS_MAP_GEN                               \
	struct {                                 \
		__uint(type, BPF_MAP_TYPE_ARRAY); \
		__uint(max_entries, 1);          \
		__type(key, __u32);              \
		__type(value, __u32);            \
	}

#endif /* BSANDBOX_COMMON_BPF_H */
