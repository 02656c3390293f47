/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * state.bpf.h: what the kernel programs share with each other (not with user
 * space): the maps defined in state.bpf.c, and the few operations every
 * program needs: identify the current process, build a record in per-CPU
 * scratch space, append strings to it, walk a dentry chain into a path, and
 * submit the record to the ring buffer.
 *
 * Records are built in scratch space rather than reserved in the ring buffer
 * because their size is only known at the end (paths vary from a few bytes to
 * 32 KiB); bpf_ringbuf_output() then copies exactly the bytes used.
 *
 * Paths are produced by walking d_parent up to the root of each mount and
 * crossing to the parent mount through struct mount, as d_path() does, with
 * bpf_loop() so that the verifier sees one iteration, not thousands.
 */
#ifndef BSANDBOX_STATE_BPF_H
#define BSANDBOX_STATE_BPF_H

#include "common.bpf.h"

/* Tunables, set by user space before load. */
extern const volatile struct bs_sc_desc bs_sc_table[BS_SC_TABLE_SIZE];
extern const volatile __u64 bs_wakeup_bytes;
extern const volatile __u32 bs_fmode_created;

extern BS_MAP_EVENTS bs_events SEC(".maps");
extern BS_MAP_PROCS bs_procs SEC(".maps");
/* Per thread: the cwd and root its records last told user space. */
extern BS_MAP_CWD bs_cwd SEC(".maps");
/* Per CPU and slot: space to build a record and walk a path. */
extern BS_MAP_SCRATCH bs_scratch SEC(".maps");
extern BS_MAP_COUNTERS bs_counters SEC(".maps");
/* bs_gen[0]: bumped when a traced process renames something, which can move
 * any directory and so invalidates every cached cwd path. */
extern BS_MAP_GEN bs_gen SEC(".maps");

static __always_inline void bs_count(__u32 counter)
{
	__u64 *v = bpf_map_lookup_elem(&bs_counters, &counter);
	if (v)
		*v += 1;
}

static __always_inline __u32 bs_current_gen(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&bs_gen, &zero);
	return g ? *g : 0;
}

/* The root mount of the current task's mount namespace. */
static __always_inline __u64 bs_ns_root_mount(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	return (__u64)BPF_CORE_READ(t, nsproxy, mnt_ns, root);
}

static __always_inline struct bs_scratch *bs_get_scratch(__u32 slot)
{
	__u32 key = bpf_get_smp_processor_id() * BS_SLOTS + slot;
	struct bs_scratch *s = bpf_map_lookup_elem(&bs_scratch, &key);
	if (s)
		s->ns_root = 0;
	return s;
}

/* Fills the common header; the caller owns the fixed part after it. */
static __always_inline void bs_fill_hdr(struct bs_hdr *h, __u8 type, __u32 tgid, __u32 tid,
					__u64 start)
{
	h->abi = BS_ABI_VERSION;
	h->type = type;
	h->nstr = 0;
	h->flags = 0;
	h->size = 0;
	h->tgid = tgid;
	h->tid = tid;
	h->start = start;
	h->time = bpf_ktime_get_boot_ns();
}

/*
 * Appending strings to a record (paths.bpf.c). These are global functions so
 * that the verifier checks each once, on its own, instead of once per call
 * site and per combination of the caller's branches. Each takes the record
 * length so far and returns the new one; a string that would not fit is left
 * out and the record marked BS_HF_STRING_DROPPED.
 */
/* A NUL-terminated path from user memory; *first gets its first byte. */
__u32 bs_append_user_str(struct bs_scratch *s, __u32 off, __u32 kind, __u64 uptr, char *first);
/* A NUL-terminated string from kernel memory. */
__u32 bs_append_kernel_str(struct bs_scratch *s, __u32 off, __u32 kind, __u64 kptr);
/* len bytes of user memory (argv). */
__u32 bs_append_user_bytes(struct bs_scratch *s, __u32 off, __u32 kind, __u64 uptr, __u64 len);
/* The path of (dentry, vfsmount) as the kernel names it, from the root of
 * the mount namespace s->ns_root (a struct mount *; 0: the current task's). */
__u32 bs_append_walk(struct bs_scratch *s, __u32 off, __u32 kind, __u64 dentry, __u64 vfsmnt);
/* The path of a struct file. */
__u32 bs_append_file(struct bs_scratch *s, __u32 off, __u32 kind, __u64 file);
/* The current thread's cwd and/or root, if they changed since its last record. */
__u32 bs_append_cwd_root(struct bs_scratch *s, __u32 off, __u32 tid, __u32 want_cwd,
			 __u32 want_root);
/* The struct file behind fd in the current task, or 0. */
__u64 bs_fd_file(__s64 fd);

/*
 * Sends the record. Wakes the reader only once the buffer holds
 * bs_wakeup_bytes, so that a busy tree costs one wakeup per batch rather than
 * one per record; the reader also polls on a short timer for the tail.
 * Returns false if the record was dropped.
 */
static __always_inline bool bs_submit(struct bs_scratch *s, __u32 size)
{
	if (size > BS_EVENT_MAX)
		return false;
	((struct bs_hdr *)s->ev)->size = size;
	__u64 avail = bpf_ringbuf_query(&bs_events, BPF_RB_AVAIL_DATA);
	__u64 flags = avail + size >= bs_wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&bs_events, s->ev, size, flags)) {
		bs_count(BS_CNT_RINGBUF_FULL);
		return false;
	}
	return true;
}

/* Identity of the current process: (tgid, start time of its group leader). */
static __always_inline __u64 bs_task_start(struct task_struct *t)
{
	return BPF_CORE_READ(t, group_leader, start_boottime);
}

#endif /* BSANDBOX_STATE_BPF_H */
