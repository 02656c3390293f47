/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * files.bpf.c: file syscalls of the traced tree, captured at syscall exit.
 *
 * One program on the sys_exit tracepoint sees every syscall of the machine;
 * it looks the syscall number up in bs_sc_table (filled by user space from
 * the architecture's numbering) and leaves at once unless the syscall is a
 * file syscall made by a thread group in bs_procs. That is the whole cost for
 * processes outside the tree.
 *
 * Capturing at exit alone (no enter program) halves the work: the arguments
 * are still in the saved user registers, the path strings are resident
 * because the kernel has just copied them, and the result is known, so the
 * kernel can name what the call reached (the file behind a returned fd, the
 * new cwd) while it still exists. The one syscall whose arguments do not
 * survive is a successful execve; sched_process_exec reports that instead.
 *
 * Relative names are sent as given, with the path of the dirfd or cwd they are
 * relative to; the cwd is sent only when it changed since this thread's last
 * record (bs_append_cwd_root), which keeps most records to a few dozen bytes.
 *
 * Per event the cost is a handful of bpf_probe_read_kernel calls (one per
 * path component, one per object described): everything else is read
 * through BTF-typed pointers, which are plain loads.
 */
#include "paths.bpf.h"

#if defined(__TARGET_ARCH_x86)
#define BS_SC_NR(regs) ((regs)->orig_ax)
static __always_inline __u64 bs_sc_arg(struct pt_regs *r, __u32 i)
{
	switch (i) {
	case 1: return r->di;
	case 2: return r->si;
	case 3: return r->dx;
	case 4: return r->r10;
	case 5: return r->r8;
	case 6: return r->r9;
	}
	return 0;
}
#else
#error "bsandbox's eBPF backend decodes x86_64 syscalls only so far"
#endif

/* Appends the object at file as the record's RESULT and describes it:
 * created by this open, a directory, and its file system's magic (so user
 * space can leave out /proc, sysfs...). */
static __always_inline __u32 bs_append_result(struct bs_scratch *s, struct bs_file *e, __u32 off,
					      __u64 file, bool from_open)
{
	off = bs_append_file(s, off, BS_STR_RESULT | BS_WANT_INFO, file);
	e->result_flags |= BS_RF_RESOLVED;
	if (from_open && (s->f_mode & bs_fmode_created))
		e->result_flags |= BS_RF_CREATED;
	if ((s->i_mode & S_IFMT) == S_IFDIR)
		e->result_flags |= BS_RF_DIR;
	e->result_magic = s->s_magic;
	return off;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(bs_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = BS_SC_NR(regs);
	if (nr < 0 || nr >= BS_SC_TABLE_SIZE)
		return 0;
	__u8 sys = bs_sc_table[nr].sys;
	if (sys == BS_SYS_NONE)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct bs_task *bt = bs_task_of(task);
	if (!bt)
		return 0;
	if ((sys == BS_SYS_EXECVE || sys == BS_SYS_EXECVEAT) && ret == 0)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;

	__u8 a_path1 = bs_sc_table[nr].path1;
	__u8 a_dirfd1 = bs_sc_table[nr].dirfd1;
	__u8 a_path2 = bs_sc_table[nr].path2;
	__u8 a_dirfd2 = bs_sc_table[nr].dirfd2;
	__u8 a_fd = bs_sc_table[nr].fd;
	__u8 a_flags = bs_sc_table[nr].flags;
	__u8 resolve = bs_sc_table[nr].resolve;
	__u8 dflags = bs_sc_table[nr].desc_flags;

	__u64 sa_addr = 0, sa_len = 0;
	if (dflags & (BS_DESC_SOCKADDR | BS_DESC_MSGHDR)) {
		sa_addr = bs_sc_arg(regs, a_path1);
		sa_len = a_path2 ? bs_sc_arg(regs, a_path2) : 0;
		if ((dflags & BS_DESC_MSGHDR) && sa_addr) {
			struct { __u64 name; __u32 namelen; } mh = {};
			bpf_probe_read_user(&mh, sizeof(mh), (void *)sa_addr);
			sa_addr = mh.name;
			sa_len = mh.namelen;
		}
		if (!sa_addr || !sa_len)
			return 0; /* a send on a connected socket: connect said where */
		if (sa_len > BS_SOCKADDR_MAX)
			sa_len = BS_SOCKADDR_MAX;
	}

	struct bs_task_view v;
	bs_view_task(task, &v);
	__u64 fd_file = 0;
	if (a_fd)
		fd_file = bs_fd_file(v.fdt, (int)bs_sc_arg(regs, a_fd));
	if (dflags & BS_DESC_ONCE_PER_FILE) {
		/* getdents is called until it returns 0; one listing is one
		 * record. A call continues the listing being read only on the
		 * same open file of the same directory: a closed directory's
		 * struct file is often reused at once for the next one opened
		 * (make lists "." then ".."). A listing that has ended (0 or an
		 * error) is forgotten, so the next is recorded even if the
		 * kernel reused both the file and a freed dentry for it. */
		struct path dir = {};
		if (!fd_file || bpf_probe_read_kernel(&dir, sizeof(dir), (void *)(fd_file + bs_off(struct file, f_path))))
			return 0;
		int same = bt->last_dir_file == fd_file && bt->last_dir_dentry == (__u64)dir.dentry &&
			   bt->last_dir_mnt == (__u64)dir.mnt;
		if (same && ret <= 0)
			bt->last_dir_file = bt->last_dir_dentry = bt->last_dir_mnt = 0;
		if (same)
			return 0;
		bt->last_dir_file = ret > 0 ? fd_file : 0;
		bt->last_dir_dentry = ret > 0 ? (__u64)dir.dentry : 0;
		bt->last_dir_mnt = ret > 0 ? (__u64)dir.mnt : 0;
	}

	struct bs_scratch *s = bs_get_scratch(BS_SLOT_FILES, (__u64)v.ns_root, bt->job);
	if (!s)
		return 0;
	struct bs_file *e = (struct bs_file *)s->ev;
	/* No clock read: nothing uses a file event's time, and reading the
	 * clock is among the dearest things an event does on a VM. */
	bs_fill_hdr(&e->hdr, BS_EV_FILE, tgid, tid, v.start, 0);
	e->ret = ret;
	e->sys = sys;
	e->result_flags = 0;
	e->result_magic = 0;
	e->pad = 0;
	e->fd = a_fd ? (__u32)bs_sc_arg(regs, a_fd) : (__u32)-1;
	e->dirfd1 = a_dirfd1 ? (int)bs_sc_arg(regs, a_dirfd1) : AT_FDCWD;
	e->dirfd2 = a_dirfd2 ? (int)bs_sc_arg(regs, a_dirfd2) : AT_FDCWD;
	e->flags = 0;
	if (a_flags) {
		__u64 v = bs_sc_arg(regs, a_flags);
		if (dflags & BS_DESC_FLAGS_IN_OPEN_HOW) {
			__u64 how_flags = 0;
			bpf_probe_read_user(&how_flags, sizeof(how_flags), (void *)v);
			v = how_flags;
		}
		e->flags = v;
	}

	__u32 off = sizeof(*e);
	if (dflags & (BS_DESC_SOCKADDR | BS_DESC_MSGHDR)) {
		/* A socket address, not a name: copied whole, with the cwd (a
		 * relative AF_UNIX name is relative to it). */
		off = bs_append_user_bytes(s, off, BS_STR_PATH1, sa_addr, sa_len);
		off = bs_append_cwd_root(s, off, &v, bt, true, false);
		if (!bs_submit(s, off))
			bs_task_forget(bt);
		return 0;
	}
	char c1 = 0, c2 = 0;
	bool has1 = false, has2 = false;
	if (a_path1) {
		__u64 u = bs_sc_arg(regs, a_path1);
		if (u) {
			off = bs_append_user_str(s, off, BS_STR_PATH1, u, &c1);
			has1 = true;
		}
	}
	if ((dflags & BS_DESC_SKIP_EMPTY_PATH) && has1 && c1 == 0)
		return 0;
	if (a_path2) {
		__u64 u = bs_sc_arg(regs, a_path2);
		if (u) {
			off = bs_append_user_str(s, off, BS_STR_PATH2, u, &c2);
			has2 = true;
		}
	}
	/* A NULL or empty path with a dirfd names the dirfd itself (utimensat,
	 * AT_EMPTY_PATH); a relative one is relative to it. */
	bool rel1 = a_path1 && c1 != '/';
	bool rel2 = has2 && c2 != '/' && !(dflags & BS_DESC_PATH2_IS_TEXT);
	bool abs1 = has1 && c1 == '/';
	bool abs2 = has2 && c2 == '/' && !(dflags & BS_DESC_PATH2_IS_TEXT);

	if (rel1 && e->dirfd1 != AT_FDCWD) {
		__u64 df = bs_fd_file(v.fdt, e->dirfd1);
		if (df)
			off = bs_append_file(s, off, BS_STR_DIR1, df);
	}
	if (rel2 && e->dirfd2 != AT_FDCWD) {
		__u64 df = bs_fd_file(v.fdt, e->dirfd2);
		if (df)
			off = bs_append_file(s, off, BS_STR_DIR2, df);
	}
	bool need_cwd = (rel1 && has1 && e->dirfd1 == AT_FDCWD) ||
			(rel2 && e->dirfd2 == AT_FDCWD);
	if (need_cwd || abs1 || abs2)
		off = bs_append_cwd_root(s, off, &v, bt, need_cwd, abs1 || abs2);

	if (resolve == BS_RESOLVE_RETFD && ret >= 0) {
		__u64 f = bs_fd_file(v.fdt, ret);
		if (f)
			off = bs_append_result(s, e, off, f, true);
	} else if (resolve == BS_RESOLVE_FDARG && fd_file) {
		off = bs_append_result(s, e, off, fd_file, false);
	} else if ((resolve == BS_RESOLVE_PWD || resolve == BS_RESOLVE_ROOT) && ret == 0) {
		struct path p = {};
		if (resolve == BS_RESOLVE_PWD)
			bpf_probe_read_kernel(&p, sizeof(p), &v.fs->pwd);
		else
			bpf_probe_read_kernel(&p, sizeof(p), &v.fs->root);
		__u32 gen = bs_current_gen();
		struct bs_hdr *h = (struct bs_hdr *)s->ev;
		__u8 nstr = h->nstr;
		off = bs_append_walk(s, off, BS_STR_RESULT, (__u64)p.dentry, (__u64)p.mnt);
		e->result_flags |= BS_RF_RESOLVED | BS_RF_DIR;
		if (resolve == BS_RESOLVE_PWD && h->nstr != nstr && bt->gen == gen && bt->root_mnt) {
			/* User space takes a chdir's result as the thread's cwd
			 * (ProcessTree): the walk just sent is the cwd's news,
			 * and the next relative name need not walk it again. */
			bt->pwd_dentry = (__u64)p.dentry;
			bt->pwd_mnt = (__u64)p.mnt;
		} else {
			/* The next relative name resends the cwd and root. */
			bs_task_forget(bt);
		}
	}
	if ((dflags & BS_DESC_BUMP_GEN) && ret == 0) {
		__u32 zero = 0;
		__u32 *gen = bpf_map_lookup_elem(&bs_gen, &zero);
		if (gen)
			__sync_fetch_and_add(gen, 1);
	}
	if (!bs_submit(s, off))
		bs_task_forget(bt); /* what this record told user space is lost */
	return 0;
}
