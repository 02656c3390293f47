/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * process.bpf.c: the life of the traced tree's processes.
 *
 * bs_procs holds the thread groups of the tree. User space seeds it with the
 * top process before that process runs its first instruction; fork adds each
 * new thread group whose creator is in it, before the child can run (the
 * tracepoint fires before wake_up_new_task), so no child escapes. Threads need
 * no entry: filtering is by thread group.
 *
 * exec reports what the kernel actually ran: the file it opened (symlinks
 * resolved, from bprm->file), the #! interpreter as named (bprm->interp), the
 * ELF interpreter (the file mapped at the new entry point, which is ld.so's
 * when the program has PT_INTERP), and argv from the new mm.
 *
 * exit reports a thread group once, when its last thread leaves, with the
 * status wait(2) would return, and forgets it, so a reused pid is not traced.
 */
#include "state.bpf.h"

SEC("tp_btf/sched_process_fork")
int BPF_PROG(bs_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	if (ptgid == ctgid || !bpf_map_lookup_elem(&bs_procs, &ptgid))
		return 0;
	struct bs_proc fresh = {};
	if (bpf_map_update_elem(&bs_procs, &ctgid, &fresh, BPF_ANY)) {
		bs_count(BS_CNT_PROC_MAP_FULL);
		return 0;
	}
	struct bs_scratch *s = bs_get_scratch(BS_SLOT_PROC, child);
	if (!s)
		return 0;
	struct bs_fork *e = (struct bs_fork *)s->ev;
	bs_fill_hdr(&e->hdr, BS_EV_FORK, ctgid, child->pid, child->start_boottime);
	e->parent_tgid = ptgid;
	e->pad = 0;
	e->parent_start = bs_task_start(parent);

	/* The child may be in a new mount namespace (clone(CLONE_NEWNS)): the
	 * scratch names paths from the child's namespace root. */
	struct path pwd = {};
	bpf_probe_read_kernel(&pwd, sizeof(pwd), &child->fs->pwd);
	__u32 off = bs_append_walk(s, sizeof(*e), BS_STR_CWD, (__u64)pwd.dentry, (__u64)pwd.mnt);
	if (!bs_submit(s, off))
		return 0;

	/* The child's first thread now knows its cwd; its root is assumed to be
	 * the namespace root until a record says otherwise. */
	struct mount *nsroot = child->nsproxy->mnt_ns->root;
	struct bs_cwd c = {};
	c.pwd_dentry = (__u64)pwd.dentry;
	c.pwd_mnt = (__u64)pwd.mnt;
	c.root_mnt = (__u64)&nsroot->mnt;
	c.root_dentry = (__u64)nsroot->mnt.mnt_root;
	c.gen = bs_current_gen();
	__u32 ctid = child->pid;
	bpf_map_update_elem(&bs_cwd, &ctid, &c, BPF_ANY);
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
	__u32 tgid = p->tgid;
	if (!bpf_map_lookup_elem(&bs_procs, &tgid))
		return 0;
	__u32 tid = p->pid;
	if ((__u32)old_pid != tid) {
		/* A non-leader thread exec'd and took the leader's pid. */
		__u32 old = old_pid;
		bpf_map_delete_elem(&bs_cwd, &old);
	}
	struct bs_scratch *s = bs_get_scratch(BS_SLOT_PROC, p);
	if (!s)
		return 0;
	struct bs_exec *e = (struct bs_exec *)s->ev;
	bs_fill_hdr(&e->hdr, BS_EV_EXEC, tgid, tid, bs_task_start(p));
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
	off = bs_append_cwd_root(s, off, p, tid, first != '/', first == '/');
	if (!bs_submit(s, off))
		bpf_map_delete_elem(&bs_cwd, &tid);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(bs_exit, struct task_struct *t)
{
	__u32 tgid = t->tgid;
	if (!bpf_map_lookup_elem(&bs_procs, &tgid))
		return 0;
	__u32 tid = t->pid;
	bpf_map_delete_elem(&bs_cwd, &tid);
	/* Each exiting thread has already left signal->live; only once it is 0
	 * is the group gone, and the delete below lets exactly one thread report. */
	if (t->signal->live.counter != 0)
		return 0;
	if (bpf_map_delete_elem(&bs_procs, &tgid))
		return 0;

	struct bs_scratch *s = bs_get_scratch(BS_SLOT_PROC, t);
	if (!s)
		return 0;
	struct bs_exit *e = (struct bs_exit *)s->ev;
	bs_fill_hdr(&e->hdr, BS_EV_EXIT, tgid, tid, bs_task_start(t));
	if (t->signal->flags & SIGNAL_GROUP_EXIT)
		e->status = t->signal->group_exit_code;
	else
		e->status = t->group_leader->exit_code;
	e->pad = 0;
	bs_submit(s, sizeof(*e));
	return 0;
}
