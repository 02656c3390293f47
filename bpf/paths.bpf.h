/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * paths.bpf.h: appending strings and paths to a record (defined in
 * paths.bpf.c), and the cwd and root a record's relative names need.
 *
 * Paths are produced by walking d_parent up to the root of each mount and
 * crossing to the parent mount through struct mount, as d_path() does, with
 * bpf_loop() so that the verifier sees one iteration, not thousands.
 */
#ifndef BSANDBOX_PATHS_BPF_H
#define BSANDBOX_PATHS_BPF_H

#include "state.bpf.h"

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
/* The path of a struct file; kind | BS_WANT_INFO also fills s->f_mode,
 * s->i_mode and s->s_magic. */
__u32 bs_append_file(struct bs_scratch *s, __u32 off, __u32 kind, __u64 file);

/*
 * Appends the task's cwd (want_cwd) and root (want_root) if they differ from what
 * its earlier records told user space (bt). Per thread, so two threads
 * sharing a cwd never race over which record carried the news. Keyed on the
 * (dentry, mount) pairs plus bs_gen: a rename anywhere in the tree can change
 * a directory's name without changing its dentry. The comparison reads
 * through BTF pointers; only a change costs a read and a walk.
 */
static __always_inline __u32 bs_append_cwd_root(struct bs_scratch *s, __u32 off,
						struct bs_task_view *v, struct bs_task *bt,
						bool want_cwd, bool want_root)
{
	struct fs_struct *fs = v->fs;
	struct mount *nsroot = v->ns_root;
	__u32 gen = bs_current_gen();
	if (bt->gen != gen || !bt->root_mnt) {
		/* Nothing valid was sent: user space assumes the namespace root. */
		bt->gen = gen;
		bt->pwd_dentry = 0;
		bt->pwd_mnt = 0;
		bt->root_dentry = (__u64)nsroot->mnt.mnt_root;
		bt->root_mnt = (__u64)&nsroot->mnt;
	}
	bool need_cwd = want_cwd && (bt->pwd_dentry != (__u64)fs->pwd.dentry ||
				     bt->pwd_mnt != (__u64)fs->pwd.mnt);
	bool need_root = want_root && (bt->root_dentry != (__u64)fs->root.dentry ||
				       bt->root_mnt != (__u64)fs->root.mnt);
	if (!need_cwd && !need_root)
		return off;

	/* root and pwd are adjacent in fs_struct: one read gives both as scalars. */
	__u8 buf[BS_SPAN_MAX];
	__u32 lo = bs_align8(bs_min(bs_off(struct fs_struct, root), bs_off(struct fs_struct, pwd)));
	__u32 hi = bs_max(bs_end(struct fs_struct, root), bs_end(struct fs_struct, pwd));
	if (hi - lo > BS_SPAN_MAX || bpf_probe_read_kernel(buf, hi - lo, (void *)((__u64)fs + lo)))
		return off;
	struct bs_hdr *h = (struct bs_hdr *)s->ev;
	if (need_cwd) {
		__u64 d = bs_at(buf, lo, __u64, struct fs_struct, pwd.dentry);
		__u64 m = bs_at(buf, lo, __u64, struct fs_struct, pwd.mnt);
		__u8 nstr = h->nstr;
		off = bs_append_walk(s, off, BS_STR_CWD, d, m);
		if (h->nstr != nstr) {
			bt->pwd_dentry = d;
			bt->pwd_mnt = m;
		}
	}
	if (need_root) {
		__u64 d = bs_at(buf, lo, __u64, struct fs_struct, root.dentry);
		__u64 m = bs_at(buf, lo, __u64, struct fs_struct, root.mnt);
		__u8 nstr = h->nstr;
		off = bs_append_walk(s, off, BS_STR_ROOT, d, m);
		if (h->nstr != nstr) {
			bt->root_dentry = d;
			bt->root_mnt = m;
		}
	}
	return off;
}

#endif /* BSANDBOX_PATHS_BPF_H */
