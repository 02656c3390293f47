/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * process.bpf.c: the life of the traced tree's processes.
 *
 * A thread is traced when it has a bs_task in task storage. User space gives
 * the top process one before it runs its first instruction; fork gives one to
 * every thread and process a traced thread creates, before the child can run
 * (the tracepoint fires before wake_up_new_task), so no child escapes.
 * bs_procs holds the traced thread groups, so that exit reports each once.
 *
 * exec reports what the kernel actually ran: the file it opened (symlinks
 * resolved, from bprm->file), the #! interpreter as named (bprm->interp), the
 * ELF interpreter (the file mapped at the new entry point, which is ld.so's
 * when the program has PT_INTERP), and argv from the new mm.
 *
 * exit reports a thread group once, when its last thread leaves, with the
 * status wait(2) would return, and forgets it, so a reused pid is not traced.
 */
#include "paths.bpf.h"

SEC("tp_btf/sched_process_fork")
int BPF_PROG(bs_fork, struct task_struct *parent, struct task_struct *child)
{
	struct bs_task *pt = bs_task_of(parent);
	if (!pt)
		return 0;
	__u32 job = pt->job;
	/* Every thread of a traced process is traced: give the new one its state. */
	struct bs_task *ct =
		bpf_task_storage_get(&bs_tasks, child, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ct) {
		bs_count(job, BS_CNT_UNTRACKED);
		return 0;
	}
	ct->job = job; /* a child belongs to its parent's job */
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	if (ptgid == ctgid)
		return 0; /* a thread, not a process */
	struct bs_proc fresh = {};
	if (bpf_map_update_elem(&bs_procs, &ctgid, &fresh, BPF_ANY)) {
		bs_count(job, BS_CNT_UNTRACKED);
		bpf_task_storage_delete(&bs_tasks, child);
		return 0;
	}
	struct bs_task_view cv;
	bs_view_task(child, &cv);
	struct bs_scratch *s = bs_get_scratch(BS_SLOT_PROC, (__u64)cv.ns_root, job);
	if (!s)
		return 0;
	struct bs_fork *e = (struct bs_fork *)s->ev;
	bs_fill_hdr(&e->hdr, BS_EV_FORK, ctgid, child->pid, child->start_boottime,
		    bpf_ktime_get_boot_ns());
	e->parent_tgid = ptgid;
	e->pad = 0;
	e->parent_start = parent->group_leader->start_boottime;

	/* The child may be in a new mount namespace (clone(CLONE_NEWNS)): the
	 * scratch names paths from the child's namespace root. */
	struct path pwd = {};
	bpf_probe_read_kernel(&pwd, sizeof(pwd), &cv.fs->pwd);
	__u32 off = bs_append_walk(s, sizeof(*e), BS_STR_CWD, (__u64)pwd.dentry, (__u64)pwd.mnt);
	if (!bs_submit(s, off))
		return 0;

	/* The child's first thread now knows its cwd; its root is assumed to be
	 * the namespace root until a record says otherwise. */
	struct mount *nsroot = cv.ns_root;
	ct->pwd_dentry = (__u64)pwd.dentry;
	ct->pwd_mnt = (__u64)pwd.mnt;
	ct->root_mnt = (__u64)&nsroot->mnt;
	ct->root_dentry = (__u64)nsroot->mnt.mnt_root;
	ct->gen = bs_current_gen();
	return 0;
}

struct bs_vma_ctx {
	__u64 file;
};

static long bs_vma_file(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	((struct bs_vma_ctx *)data)->file = (__u64)BPF_CORE_READ(vma, vm_file);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(bs_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct bs_task *bt = bs_task_of(p);
	if (!bt)
		return 0;
	__u32 tgid = p->tgid;
	__u32 tid = p->pid;
	/* A non-leader thread that exec'd took the leader's pid, and user space
	 * keeps cwds by thread id: send this thread's cwd afresh. */
	bs_task_forget(bt);
	struct bs_task_view v;
	bs_view_task(p, &v);
	struct bs_scratch *s = bs_get_scratch(BS_SLOT_PROC, (__u64)v.ns_root, bt->job);
	if (!s)
		return 0;
	struct bs_exec *e = (struct bs_exec *)s->ev;
	bs_fill_hdr(&e->hdr, BS_EV_EXEC, tgid, tid, v.start, bpf_ktime_get_boot_ns());
	e->old_tid = old_pid;
	e->flags = 0;
	if (bprm->buf[0] == 0x7f && bprm->buf[1] == 'E' && bprm->buf[2] == 'L' &&
	    bprm->buf[3] == 'F' && bprm->buf[4] == 1 /* ELFCLASS32 */)
		e->flags |= BS_EXEC_ELF32;

	const char *filename = BPF_CORE_READ(bprm, filename);
	char first = 0;
	bpf_probe_read_kernel(&first, 1, filename);
	__u32 off = sizeof(*e);
	off = bs_append_kernel_str(s, off, BS_STR_FILENAME, (__u64)filename);
	off = bs_append_kernel_str(s, off, BS_STR_INTERP, (__u64)BPF_CORE_READ(bprm, interp));
	__u64 exe = (__u64)BPF_CORE_READ(bprm, file);
	off = bs_append_file(s, off, BS_STR_EXE, exe);

	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct bs_vma_ctx vc = {};
	bpf_find_vma(task, BPF_CORE_READ(regs, ip), bs_vma_file, &vc, 0);
	if (vc.file && vc.file != exe)
		off = bs_append_file(s, off, BS_STR_LDSO, vc.file);

	struct mm_struct *mm = p->mm;
	__u64 arg_start = BPF_CORE_READ(mm, arg_start);
	__u64 arg_end = BPF_CORE_READ(mm, arg_end);
	if (arg_end > arg_start) {
		if (arg_end - arg_start > BS_STR_MAX)
			e->flags |= BS_EXEC_ARGV_TRUNCATED;
		off = bs_append_user_bytes(s, off, BS_STR_ARGV, arg_start, arg_end - arg_start);
	}
	off = bs_append_cwd_root(s, off, &v, bt, first != '/', first == '/');
	if (!bs_submit(s, off))
		bs_task_forget(bt);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(bs_exit, struct task_struct *t)
{
	struct bs_task *bt = bs_task_of(t);
	if (!bt)
		return 0;
	__u32 job = bt->job;
	__u32 tgid = t->tgid;
	__u32 tid = t->pid;
	/* Each exiting thread has already left signal->live; only once it is 0
	 * is the group gone, and the delete below lets exactly one thread report. */
	if (t->signal->live.counter != 0)
		return 0;
	if (bpf_map_delete_elem(&bs_procs, &tgid))
		return 0;

	struct bs_scratch *s = bs_get_scratch(BS_SLOT_PROC, 0, job);
	if (!s)
		return 0;
	struct bs_exit *e = (struct bs_exit *)s->ev;
	bs_fill_hdr(&e->hdr, BS_EV_EXIT, tgid, tid, t->group_leader->start_boottime,
		    bpf_ktime_get_boot_ns());
	if (t->signal->flags & SIGNAL_GROUP_EXIT)
		e->status = t->signal->group_exit_code;
	else
		e->status = t->group_leader->exit_code;
	e->pad = 0;
	bs_submit(s, sizeof(*e));
	return 0;
}
