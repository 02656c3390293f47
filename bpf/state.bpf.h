/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * state.bpf.h: what the kernel programs share with each other (not with user
 * space): the maps defined in state.bpf.c, and the few operations every
 * program needs: identify the current process, build a record in per-CPU
 * scratch space, and submit the record to the ring buffer. Appending strings
 * and paths to a record is paths.bpf.h's.
 *
 * Records are built in scratch space rather than reserved in the ring buffer
 * because their size is only known at the end (paths vary from a few bytes to
 * 32 KiB); bpf_ringbuf_output() then copies exactly the bytes used.
 */
#ifndef BSANDBOX_STATE_BPF_H
#define BSANDBOX_STATE_BPF_H

#include "common.bpf.h"

/* Tunables, set by user space before load. */
extern const volatile struct bs_sc_desc bs_sc_table[BS_SC_TABLE_SIZE];
extern const volatile __u64 bs_wakeup_bytes;
extern const volatile __u32 bs_fmode_created;

/* Per job: its ring buffer (slot = bs_task.job). */
extern BS_MAP_RINGS bs_rings SEC(".maps");
extern BS_MAP_PROCS bs_procs SEC(".maps");
/* Per traced thread: struct bs_task. */
extern BS_MAP_TASKS bs_tasks SEC(".maps");
/* Per CPU and slot: space to build a record and walk a path. */
extern BS_MAP_SCRATCH bs_scratch SEC(".maps");
extern BS_MAP_COUNTERS bs_counters SEC(".maps");
/* bs_gen[0]: bumped when a traced process renames something, which can move
 * any directory and so invalidates every cached cwd path. */
extern BS_MAP_GEN bs_gen SEC(".maps");

/* Counters are kept per job: slot job * BS_CNT_COUNT + counter. */
static __always_inline void bs_count(__u32 job, __u32 counter)
{
	__u32 key = job * BS_CNT_COUNT + counter;
	__u64 *v = bpf_map_lookup_elem(&bs_counters, &key);
	if (v)
		*v += 1;
}

static __always_inline __u32 bs_current_gen(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&bs_gen, &zero);
	return g ? *g : 0;
}

/*
 * The inline helpers below read through task pointers the verifier knows as
 * BTF-typed (from bpf_get_current_task_btf() or a tp_btf argument): those
 * loads are plain memory loads, not helper calls. Values handed to the
 * global functions are scalars, so those go through bpf_probe_read_kernel.
 */

/* This CPU's scratch space for slot, set up to build a record of job and
 * to name paths from the namespace whose root mount is ns_root. */
static __always_inline struct bs_scratch *bs_get_scratch(__u32 slot, __u64 ns_root, __u32 job)
{
	__u32 key = bpf_get_smp_processor_id() * BS_SLOTS + slot;
	struct bs_scratch *s = bpf_map_lookup_elem(&bs_scratch, &key);
	if (s) {
		s->ns_root = ns_root;
		s->job = job;
	}
	return s;
}

/*
 * What the programs need of a task, read once at the top: the verifier walks
 * task_struct's BTF for each dereference it checks, and task_struct is
 * large, so dereferencing it inside branches multiplies load time.
 */
struct bs_task_view {
	struct fs_struct *fs;
	struct fdtable *fdt;
	struct mount *ns_root;
	__u64 start; /* identity: the thread group's start time */
};

static __always_inline void bs_view_task(struct task_struct *t, struct bs_task_view *v)
{
	v->fs = t->fs;
	v->fdt = t->files->fdt;
	v->ns_root = t->nsproxy->mnt_ns->root;
	v->start = t->group_leader->start_boottime;
}

/* The struct file behind fd in the fd table fdt, or 0. */
static __always_inline __u64 bs_fd_file(struct fdtable *fdt, __s64 fd)
{
	if (fd < 0 || !fdt || fd >= fdt->max_fds)
		return 0;
	__u64 fds = (__u64)fdt->fd;
	__u64 f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), (void *)(fds + fd * sizeof(void *)));
	return f;
}

/* The traced-thread state of t, or NULL if t is not traced. */
static __always_inline struct bs_task *bs_task_of(struct task_struct *t)
{
	return bpf_task_storage_get(&bs_tasks, t, 0, 0);
}

/* Forget what bt told user space: its next relative name resends the cwd. */
static __always_inline void bs_task_forget(struct bs_task *bt)
{
	bt->gen = 0;
	bt->root_mnt = 0;
}

/* Fills the common header; the caller owns the fixed part after it. */
static __always_inline void bs_fill_hdr(struct bs_hdr *h, __u8 type, __u32 tgid, __u32 tid,
					__u64 start, __u64 time)
{
	h->abi = BS_ABI_VERSION;
	h->type = type;
	h->nstr = 0;
	h->flags = 0;
	h->size = 0;
	h->tgid = tgid;
	h->tid = tid;
	h->start = start;
	h->time = time;
}

/*
 * Sends the record to its job's ring. Wakes the reader only once that ring holds
 * bs_wakeup_bytes, so that a busy tree costs one wakeup per batch rather than
 * one per record; the reader also polls on a short timer for the tail.
 * Returns false if the record was dropped.
 */
static __always_inline bool bs_submit(struct bs_scratch *s, __u32 size)
{
	__u32 job = s->job;
	void *ring = bpf_map_lookup_elem(&bs_rings, &job);
	if (!ring) {
		bs_count(job, BS_CNT_RINGBUF_FULL); /* the job's ring is gone */
		return false;
	}
	/* Bounded here, next to its use, so the verifier still knows it there. */
	barrier_var(size);
	if (size > BS_EVENT_MAX)
		return false;
	((struct bs_hdr *)s->ev)->size = size;
	__u64 avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	__u64 flags = avail + size >= bs_wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(ring, s->ev, size, flags)) {
		bs_count(job, BS_CNT_RINGBUF_FULL);
		return false;
	}
	return true;
}


#endif /* BSANDBOX_STATE_BPF_H */
