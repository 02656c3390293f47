/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * paths.bpf.c: turning kernel objects and user pointers into strings of a
 * record.
 *
 * A path is produced by walking d_parent up to the root of each mount and
 * crossing to the parent mount through struct mount (mnt_parent,
 * mnt_mountpoint), as d_path() does, into a per-CPU buffer from its end
 * backwards. bpf_loop() runs the walk, so the verifier checks one step rather
 * than thousands. The walk ends at the root mount of the namespace (a normal
 * path), at another root mount (a pipe, socket or anonymous inode, or a
 * detached mount: BS_SF_UNREACHABLE), or out of room (BS_SF_TRUNCATED).
 *
 * Every function here is global (not static): the verifier checks it once, on
 * its own terms, so each one re-checks its bounds instead of trusting the
 * caller's. That keeps the syscall program's verification small and fast.
 */
#include "paths.bpf.h"

#define BS_WALK_END BS_STR_MAX
/* One step per component or mount crossing; a 32 KiB path has at most 16384
 * components of one byte. */
#define BS_WALK_STEPS 16448

/* v & mask, applied to the register that is used afterwards: without the
 * barrier clang drops a mask it can prove redundant from an earlier compare,
 * but the verifier tracked that compare on a different copy of the value. */
static __always_inline __u64 bs_bound(__u64 v, __u64 mask)
{
	barrier_var(v);
	return v & mask;
}

/* Room for one more string at off? If not, the record is marked. */
static __always_inline bool bs_str_room(struct bs_scratch *s, __u32 off)
{
	if (off < BS_APPEND_LIMIT)
		return true;
	((struct bs_hdr *)s->ev)->flags |= BS_HF_STRING_DROPPED;
	bs_count(s->job, BS_CNT_TOO_BIG);
	return false;
}

/* Writes the string header at off for len bytes already in place after it. */
static __always_inline __u32 bs_str_finish(struct bs_scratch *s, __u32 off, __u32 kind,
					   __u32 flags, __u32 len)
{
	off = bs_bound(off, BS_APPEND_LIMIT - 1);
	len = bs_bound(len, BS_STR_MAX);
	struct bs_str *h = (struct bs_str *)&s->ev[off];
	h->kind = kind;
	h->flags = flags;
	h->pad = 0;
	h->len = len;
	((struct bs_hdr *)s->ev)->nstr += 1;
	return off + sizeof(struct bs_str) + ((len + 7) & ~7U);
}

__u32 bs_append_user_str(struct bs_scratch *s, __u32 off, __u32 kind, __u64 uptr, char *first)
{
	if (!s || !first)
		return off;
	*first = 0;
	if (!bs_str_room(s, off))
		return off;
	off = bs_bound(off, BS_APPEND_LIMIT - 1);
	char *dst = (char *)&s->ev[off + sizeof(struct bs_str)];
	long n = bpf_probe_read_user_str(dst, BS_USER_PATH_MAX, (const void *)uptr);
	if (n <= 0)
		return bs_str_finish(s, off, kind, BS_SF_FAULT, 0);
	*first = dst[0];
	return bs_str_finish(s, off, kind, 0, n - 1);
}

__u32 bs_append_kernel_str(struct bs_scratch *s, __u32 off, __u32 kind, __u64 kptr)
{
	if (!s)
		return off;
	if (!bs_str_room(s, off))
		return off;
	off = bs_bound(off, BS_APPEND_LIMIT - 1);
	long n = bpf_probe_read_kernel_str(&s->ev[off + sizeof(struct bs_str)], BS_USER_PATH_MAX,
					   (const void *)kptr);
	if (n <= 0)
		return bs_str_finish(s, off, kind, BS_SF_FAULT, 0);
	return bs_str_finish(s, off, kind, 0, n - 1);
}

__u32 bs_append_user_bytes(struct bs_scratch *s, __u32 off, __u32 kind, __u64 uptr, __u64 len)
{
	__u32 flags = 0;
	if (!s)
		return off;
	if (!bs_str_room(s, off))
		return off;
	off = bs_bound(off, BS_APPEND_LIMIT - 1);
	if (len > BS_STR_MAX) {
		len = BS_STR_MAX;
		flags |= BS_SF_TRUNCATED;
	}
	len = bs_bound(len, BS_STR_MAX);
	if (bpf_probe_read_user(&s->ev[off + sizeof(struct bs_str)], len, (const void *)uptr))
		return bs_str_finish(s, off, kind, BS_SF_FAULT, 0);
	return bs_str_finish(s, off, kind, flags, len);
}

struct bs_walk {
	struct bs_scratch *s;
	__u64 dentry;   /* struct dentry * being named */
	__u64 mnt;      /* struct mount * it belongs to */
	__u64 mnt_root; /* that mount's root dentry */
	__u32 pos;      /* the path so far is walk[pos, BS_WALK_END) */
	__u32 end;      /* 0 walking, 1 reached a root mount, 2 disconnected, 3 out of room */
	__u32 deleted;  /* the first dentry is unlinked */
	__u32 steps;
};

/* One mount crossing: from the root of w->mnt to where it is mounted. */
static __always_inline long bs_walk_cross(struct bs_walk *w)
{
	__u8 buf[BS_SPAN_MAX];
	__u32 lo = bs_align8(bs_min(bs_off(struct mount, mnt_parent), bs_off(struct mount, mnt_mountpoint)));
	__u32 hi = bs_max(bs_end(struct mount, mnt_parent), bs_end(struct mount, mnt_mountpoint));
	if (hi - lo > BS_SPAN_MAX || bpf_probe_read_kernel(buf, hi - lo, (void *)(w->mnt + lo))) {
		w->end = 2;
		return 1;
	}
	__u64 parent = bs_at(buf, lo, __u64, struct mount, mnt_parent);
	if (!parent || parent == w->mnt) {
		w->end = 1;
		return 1;
	}
	w->dentry = bs_at(buf, lo, __u64, struct mount, mnt_mountpoint);
	w->mnt = parent;
	w->mnt_root = 0;
	bpf_probe_read_kernel(&w->mnt_root, sizeof(w->mnt_root),
			      (void *)(parent + bs_off(struct mount, mnt.mnt_root)));
	return 0;
}

static long bs_walk_step(__u32 i, void *data)
{
	struct bs_walk *w = data;

	if (w->dentry == w->mnt_root)
		return bs_walk_cross(w);

	/* d_hash (for d_unlinked()), d_parent and d_name in one read. */
	__u8 buf[BS_SPAN_MAX];
	__u32 lo = bs_align8(bs_off(struct dentry, d_hash));
	__u32 hi = bs_max(bs_end(struct dentry, d_name), bs_end(struct dentry, d_parent));
	if (hi <= lo || hi - lo > BS_SPAN_MAX ||
	    bpf_probe_read_kernel(buf, hi - lo, (void *)(w->dentry + lo))) {
		w->end = 2;
		return 1;
	}
	__u64 parent = bs_at(buf, lo, __u64, struct dentry, d_parent);
	if (!parent || parent == w->dentry) {
		w->end = 2;
		return 1;
	}
	if (w->steps++ == 0 && !bs_at(buf, lo, __u64, struct dentry, d_hash.pprev))
		w->deleted = 1; /* unhashed and not a root: d_unlinked() */
	struct qstr name = bs_at(buf, lo, struct qstr, struct dentry, d_name);
	__u32 len = name.len;
	if (len > 255 || w->pos < 256 + 1) {
		w->end = 3;
		return 1;
	}
	w->pos -= len;
	bpf_probe_read_kernel(&w->s->walk[bs_bound(w->pos, BS_STR_MAX)], bs_bound(len, 255),
			      name.name);
	w->pos -= 1;
	w->s->walk[bs_bound(w->pos, BS_STR_MAX)] = '/';
	w->dentry = parent;
	return 0;
}

__u32 bs_append_walk(struct bs_scratch *s, __u32 off, __u32 kind, __u64 dentry, __u64 vfsmnt)
{
	if (!s)
		return off;
	if (!bs_str_room(s, off))
		return off;
	off = bs_bound(off, BS_APPEND_LIMIT - 1);

	struct bs_walk w = {};
	w.s = s;
	w.dentry = dentry;
	w.mnt = vfsmnt - bs_off(struct mount, mnt);
	w.pos = BS_WALK_END;
	bpf_probe_read_kernel(&w.mnt_root, sizeof(w.mnt_root),
			      (void *)(vfsmnt + bs_off(struct vfsmount, mnt_root)));
	if (dentry && vfsmnt)
		bpf_loop(BS_WALK_STEPS, bs_walk_step, &w, 0);
	else
		w.end = 2;

	__u32 flags = 0;
	if (w.end == 3 || w.end == 0)
		flags |= BS_SF_TRUNCATED;
	if (w.end == 2 || (w.end == 1 && w.mnt != s->ns_root))
		flags |= BS_SF_UNREACHABLE;
	if (w.deleted)
		flags |= BS_SF_DELETED;

	__u32 pos = bs_bound(w.pos, BS_STR_MAX);
	__u32 len = bs_bound(BS_WALK_END - pos, BS_STR_MAX);
	char *dst = (char *)&s->ev[off + sizeof(struct bs_str)];
	if (len == 0) {
		dst[0] = '/';
		len = 1;
	} else {
		bpf_probe_read_kernel(dst, len, &s->walk[pos]);
	}
	return bs_str_finish(s, off, kind, flags, len);
}

/* kind | BS_WANT_INFO also fills s->f_mode, s->i_mode and s->s_magic. */
__u32 bs_append_file(struct bs_scratch *s, __u32 off, __u32 kind, __u64 file)
{
	if (!s)
		return off;
	/* f_mode, f_inode and f_path in one read. */
	__u8 buf[BS_SPAN_MAX];
	__u32 lo = bs_align8(bs_min(bs_off(struct file, f_mode),
			  bs_min(bs_off(struct file, f_inode), bs_off(struct file, f_path))));
	__u32 hi = bs_max(bs_end(struct file, f_mode),
			  bs_max(bs_end(struct file, f_inode), bs_end(struct file, f_path)));
	if (hi - lo > BS_SPAN_MAX || bpf_probe_read_kernel(buf, hi - lo, (void *)(file + lo)))
		return bs_append_walk(s, off, kind & 0xff, 0, 0);
	if (kind & BS_WANT_INFO) {
		s->f_mode = bs_at(buf, lo, __u32, struct file, f_mode);
		__u64 inode = bs_at(buf, lo, __u64, struct file, f_inode);
		__u8 ib[BS_SPAN_MAX];
		__u32 ilo = bs_align8(bs_min(bs_off(struct inode, i_mode), bs_off(struct inode, i_sb)));
		__u32 ihi = bs_max(bs_end(struct inode, i_mode), bs_end(struct inode, i_sb));
		s->i_mode = 0;
		s->s_magic = 0;
		if (ihi - ilo <= BS_SPAN_MAX && !bpf_probe_read_kernel(ib, ihi - ilo, (void *)(inode + ilo))) {
			s->i_mode = bs_at(ib, ilo, __u16, struct inode, i_mode);
			__u64 sb = bs_at(ib, ilo, __u64, struct inode, i_sb);
			__u64 magic = 0;
			bpf_probe_read_kernel(&magic, bpf_core_field_size(struct super_block, s_magic),
					      (void *)(sb + bs_off(struct super_block, s_magic)));
			s->s_magic = magic;
		}
	}
	return bs_append_walk(s, off, kind & 0xff, bs_at(buf, lo, __u64, struct file, f_path.dentry),
			      bs_at(buf, lo, __u64, struct file, f_path.mnt));
}
