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
#include "state.bpf.h"

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
	bs_count(BS_CNT_TOO_BIG);
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
};

static long bs_walk_step(__u32 i, void *data)
{
	struct bs_walk *w = data;

	if (w->dentry == w->mnt_root) {
		struct mount *m = (struct mount *)w->mnt;
		struct mount *parent = BPF_CORE_READ(m, mnt_parent);
		if (!parent || (__u64)parent == w->mnt) {
			w->end = 1;
			return 1;
		}
		w->dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->mnt = (__u64)parent;
		w->mnt_root = (__u64)BPF_CORE_READ(parent, mnt.mnt_root);
		return 0;
	}
	struct dentry *d = (struct dentry *)w->dentry;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (!parent || (__u64)parent == w->dentry) {
		w->end = 2;
		return 1;
	}
	struct qstr name;
	BPF_CORE_READ_INTO(&name, d, d_name);
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
	w->dentry = (__u64)parent;
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
	w.mnt = vfsmnt - bpf_core_field_offset(struct mount, mnt);
	w.mnt_root = (__u64)BPF_CORE_READ((struct vfsmount *)vfsmnt, mnt_root);
	w.pos = BS_WALK_END;
	if (dentry && vfsmnt)
		bpf_loop(BS_WALK_STEPS, bs_walk_step, &w, 0);
	else
		w.end = 2;

	__u32 flags = 0;
	if (w.end == 3 || w.end == 0)
		flags |= BS_SF_TRUNCATED;
	__u64 ns_root = s->ns_root ? s->ns_root : bs_ns_root_mount();
	if (w.end == 2 || (w.end == 1 && w.mnt != ns_root))
		flags |= BS_SF_UNREACHABLE;
	/* d_unlinked(): unhashed and not a root. */
	struct dentry *d = (struct dentry *)dentry;
	if (d && !BPF_CORE_READ(d, d_hash.pprev) && (__u64)BPF_CORE_READ(d, d_parent) != dentry)
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

__u32 bs_append_file(struct bs_scratch *s, __u32 off, __u32 kind, __u64 file)
{
	struct file *f = (struct file *)file;
	return bs_append_walk(s, off, kind, (__u64)BPF_CORE_READ(f, f_path.dentry),
			      (__u64)BPF_CORE_READ(f, f_path.mnt));
}

__u64 bs_fd_file(__s64 fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (fd < 0 || !fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return (__u64)f;
}

/* Appends p as kind unless it is the cached (*dentry, *mnt); on success the
 * cache takes p and *changed is set. */
static __always_inline __u32 bs_append_if_changed(struct bs_scratch *s, __u32 off, __u32 kind,
						  struct path *p, __u64 *dentry, __u64 *mnt,
						  bool *changed)
{
	if (*dentry == (__u64)p->dentry && *mnt == (__u64)p->mnt)
		return off;
	struct bs_hdr *h = (struct bs_hdr *)s->ev;
	__u8 nstr = h->nstr;
	off = bs_append_walk(s, off, kind, (__u64)p->dentry, (__u64)p->mnt);
	if (h->nstr != nstr) {
		*dentry = (__u64)p->dentry;
		*mnt = (__u64)p->mnt;
		*changed = true;
	}
	return off;
}

/*
 * The cache is per thread, so two threads sharing a cwd never race over which
 * record carried the news. It is keyed on the (dentry, mount) pair user space
 * was last told, plus bs_gen: a rename anywhere in the tree can change the
 * name of a directory without changing its dentry.
 */
__u32 bs_append_cwd_root(struct bs_scratch *s, __u32 off, __u32 tid, __u32 want_cwd,
			 __u32 want_root)
{
	if (!s)
		return off;
	struct task_struct *t = bpf_get_current_task_btf();
	struct path pwd, root;
	BPF_CORE_READ_INTO(&pwd, t, fs, pwd);
	BPF_CORE_READ_INTO(&root, t, fs, root);
	__u32 gen = bs_current_gen();

	struct bs_cwd fresh = {};
	struct bs_cwd *c = bpf_map_lookup_elem(&bs_cwd, &tid);
	if (c && c->gen == gen) {
		fresh = *c;
	} else {
		/* Nothing valid was sent: user space assumes the namespace root. */
		struct mount *nsroot = (struct mount *)bs_ns_root_mount();
		fresh.root_mnt = (__u64)nsroot + bpf_core_field_offset(struct mount, mnt);
		fresh.root_dentry = (__u64)BPF_CORE_READ(nsroot, mnt.mnt_root);
		fresh.gen = gen;
	}
	bool changed = false;
	if (want_cwd)
		off = bs_append_if_changed(s, off, BS_STR_CWD, &pwd, &fresh.pwd_dentry,
					   &fresh.pwd_mnt, &changed);
	if (want_root)
		off = bs_append_if_changed(s, off, BS_STR_ROOT, &root, &fresh.root_dentry,
					   &fresh.root_mnt, &changed);
	if (changed || !c || c->gen != gen)
		bpf_map_update_elem(&bs_cwd, &tid, &fresh, BPF_ANY);
	return off;
}
